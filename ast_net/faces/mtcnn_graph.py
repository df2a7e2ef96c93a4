"""The MTCNN cascade as TensorFlow graphs: mtcnn 1.0.0's weights, plain `tf.nn` forward passes.

The `mtcnn` package's Keras models are built only to load the weights that ship in its wheel;
the forward passes are re-written with `tf.nn` ops (conv, PReLU, max-pool, dense), which is about
1.5x faster per call than calling the Keras models inside a `tf.function` and gives the same
outputs (tests/faces/test_detector.py compares them). On top of the networks:

* `Networks.cascade_fn(...)`: the whole P-Net pyramid -> R-Net -> O-Net cascade as ONE traced
  graph for any image size (a graph loop over the pyramid scales; per level an area resize,
  P-Net, proposals and NMS; then cross-level NMS, squaring, patch cropping, R-Net, O-Net). One
  graph call per detection instead of ~10 keeps the Python/TF call overhead out of the per-frame
  budget. The final O-Net threshold, landmark
  decoding and "min" NMS are numpy, in `detector.py`.
* `Networks.run_onet(patches)`: O-Net on uint8 48 x 48 patches the caller cut (traced once),
  the tracker's cheap refinement. Cutting the few patches with OpenCV and handing TF only them
  is ~0.3 ms cheaper per call than passing the whole frame into the graph.

Box conventions follow mtcnn 1.0.0 (see `boxes.apply_regression`); patches are cut with
`tf.image.crop_and_resize` from the uint8 image, black outside the image, as the original MTCNN.
"""

from __future__ import annotations

import functools

import tensorflow as tf

PNET_CELL = 12  # P-Net's receptive field, in pixels of the pyramid level.
PNET_STRIDE = 2
_MAX_BOXES = 2000  # Cap on proposals per NMS call (a 1080p frame gives a few hundred).


def _normalise(x):
    return (tf.cast(x, tf.float32) - 127.5) * (1.0 / 128.0)


def _to_square(corners):
    w = corners[:, 2] - corners[:, 0]
    h = corners[:, 3] - corners[:, 1]
    half = 0.5 * tf.maximum(w, h)
    cx = corners[:, 0] + 0.5 * w
    cy = corners[:, 1] + 0.5 * h
    return tf.stack([cx - half, cy - half, cx + half, cy + half], axis=1)


def _regress(corners, offsets):
    w = corners[:, 2] - corners[:, 0] + 1.0
    h = corners[:, 3] - corners[:, 1] + 1.0
    return corners + offsets * tf.stack([w, h, w, h], axis=1)


def _nms(corners, scores, threshold):
    keep = tf.image.non_max_suppression(corners, scores, _MAX_BOXES, iou_threshold=threshold)
    return tf.gather(corners, keep), tf.gather(scores, keep)


def patches(image, corners, size):
    """Square `size` patches of `corners` [N, 4] (pixels) from a uint8 image, as float32."""
    hw = tf.cast(tf.shape(image)[:2] - 1, tf.float32)
    hw = tf.maximum(hw, 1.0)
    scale = tf.stack([hw[0], hw[1], hw[0], hw[1]])
    yx = tf.gather(corners, [1, 0, 3, 2], axis=1) / scale  # crop_and_resize: pixel centres.
    n = tf.shape(corners)[0]
    return tf.image.crop_and_resize(image[None], yx, tf.zeros([n], tf.int32), [size, size])


class Networks:
    """P-Net, R-Net and O-Net of mtcnn 1.0.0 with its shipped weights, as tf.nn functions."""

    def __init__(self):
        from mtcnn.network import onet, pnet, rnet  # Imported lazily: heavy.
        from mtcnn.utils import tensorflow as mtcnn_tf

        self.weights = {}
        for name, model in (("pnet", pnet.PNet()), ("rnet", rnet.RNet()), ("onet", onet.ONet())):
            model.build()
            model.set_weights(mtcnn_tf.load_weights(f"{name}.lz4"))
            for v in model.weights:  # Paths like "o_net/conv1/kernel".
                layer, kind = v.path.split("/")[-2:]
                self.weights[f"{name}/{layer}/{kind}"] = tf.constant(v.numpy())
        self.run_onet = tf.function(self._onet, input_signature=[
            tf.TensorSpec([None, 48, 48, 3], tf.uint8)]).get_concrete_function()

    # Layers ----------------------------------------------------------------------------------

    def _conv(self, x, name):
        k, b = self.weights[f"{name}/kernel"], self.weights[f"{name}/bias"]
        return tf.nn.bias_add(tf.nn.conv2d(x, k, 1, "VALID"), b)

    def _prelu(self, x, name):
        alpha = self.weights[f"{name}/alpha"]
        return tf.maximum(x, 0.0) + alpha * tf.minimum(x, 0.0)

    def _dense(self, x, name):
        return tf.matmul(x, self.weights[f"{name}/kernel"]) + self.weights[f"{name}/bias"]

    @staticmethod
    def _flatten_hw_swapped(x):
        # The Caffe-converted weights expect Keras' Permute((2, 1, 3)) before Flatten.
        x = tf.transpose(x, [0, 2, 1, 3])
        return tf.reshape(x, [tf.shape(x)[0], -1])

    # Networks (inputs normalised to [-1, 1]) -------------------------------------------------

    def pnet(self, x):
        """[B, H, W, 3] -> box offsets [B, h, w, 4], face probability [B, h, w]."""
        x = tf.nn.max_pool2d(self._prelu(self._conv(x, "pnet/conv1"), "pnet/prelu1"), 2, 2, "SAME")
        x = self._prelu(self._conv(x, "pnet/conv2"), "pnet/prelu2")
        x = self._prelu(self._conv(x, "pnet/conv3"), "pnet/prelu3")
        return self._conv(x, "pnet/conv4-1"), tf.nn.softmax(self._conv(x, "pnet/conv4-2"))[..., 1]

    def rnet(self, x):
        """[N, 24, 24, 3] -> box offsets [N, 4], face probability [N]."""
        x = tf.nn.max_pool2d(self._prelu(self._conv(x, "rnet/conv1"), "rnet/prelu1"), 3, 2, "SAME")
        x = tf.nn.max_pool2d(self._prelu(self._conv(x, "rnet/conv2"), "rnet/prelu2"), 3, 2,
                             "VALID")
        x = self._prelu(self._conv(x, "rnet/conv3"), "rnet/prelu3")
        x = self._prelu(self._dense(self._flatten_hw_swapped(x), "rnet/fc4"), "rnet/prelu4")
        return self._dense(x, "rnet/fc5-1"), tf.nn.softmax(self._dense(x, "rnet/fc5-2"))[:, 1]

    def onet(self, x):
        """[N, 48, 48, 3] -> box offsets [N, 4], landmarks [N, 10] (x1..x5, y1..y5), prob [N]."""
        x = tf.nn.max_pool2d(self._prelu(self._conv(x, "onet/conv1"), "onet/prelu1"), 3, 2, "SAME")
        x = tf.nn.max_pool2d(self._prelu(self._conv(x, "onet/conv2"), "onet/prelu2"), 3, 2,
                             "VALID")
        x = tf.nn.max_pool2d(self._prelu(self._conv(x, "onet/conv3"), "onet/prelu3"), 2, 2, "SAME")
        x = self._prelu(self._conv(x, "onet/conv4"), "onet/prelu4")
        x = self._prelu(self._dense(self._flatten_hw_swapped(x), "onet/fc5"), "onet/prelu5")
        return (self._dense(x, "onet/fc6-1"), self._dense(x, "onet/fc6-2"),
                tf.nn.softmax(self._dense(x, "onet/fc6-3"))[:, 1])

    def _onet(self, patches_uint8):
        return self._if_any(lambda p: self.onet(_normalise(p)), patches_uint8,
                            (tf.zeros([0, 4]), tf.zeros([0, 10]), tf.zeros([0])))

    # The cascade -----------------------------------------------------------------------------

    def _if_any(self, fn, x, empty):
        """fn(x), or `empty` when x has no rows (oneDNN convs mis-shape an empty batch)."""
        return tf.cond(tf.shape(x)[0] > 0, lambda: fn(x), lambda: empty)

    @functools.lru_cache(maxsize=None)
    def cascade_fn(self, pnet_threshold, rnet_threshold):
        """A concrete function (image uint8 [H, W, 3], scales float32 [L]) -> O-Net results.

        Traced once for every image size: the pyramid is a graph loop over `scales`. Returns
        `(corners, offsets, landmarks, prob)`: the square boxes given to O-Net [N, 4] and
        O-Net's raw outputs for them; no O-Net threshold is applied yet.
        """

        def pyramid_level(normalised, scale):
            hw = tf.cast(tf.shape(normalised)[1:3], tf.float32)
            size = tf.maximum(tf.cast(tf.round(hw * scale), tf.int32), 1)
            offsets, prob = self.pnet(tf.image.resize(normalised, size, method="area"))
            where = tf.where(prob[0] > pnet_threshold)  # [K, 2] as (y, x)
            scores = tf.gather_nd(prob[0], where)
            offsets = tf.gather_nd(offsets[0], where)
            yx = tf.cast(where, tf.float32) * PNET_STRIDE
            cells = tf.stack([yx[:, 1], yx[:, 0], yx[:, 1] + PNET_CELL, yx[:, 0] + PNET_CELL], 1)
            return _nms((cells + offsets * PNET_CELL) / scale, scores, 0.5)

        def cascade(image, scales):
            normalised = _normalise(image)[None]
            all_corners = tf.zeros([0, 4])
            all_scores = tf.zeros([0])
            for i in tf.range(tf.shape(scales)[0]):  # A graph loop (autograph).
                tf.autograph.experimental.set_loop_options(shape_invariants=[
                    (all_corners, tf.TensorShape([None, 4])),
                    (all_scores, tf.TensorShape([None]))])
                corners, scores = pyramid_level(normalised, scales[i])
                all_corners = tf.concat([all_corners, corners], 0)
                all_scores = tf.concat([all_scores, scores], 0)
            corners, _ = _nms(all_corners, all_scores, 0.7)
            corners = _to_square(corners)

            offsets, prob = self._if_any(
                lambda c: self.rnet(_normalise(patches(image, c, 24))), corners,
                (tf.zeros([0, 4]), tf.zeros([0])))
            keep = prob > rnet_threshold
            corners = _regress(tf.boolean_mask(corners, keep), tf.boolean_mask(offsets, keep))
            corners, _ = _nms(corners, tf.boolean_mask(prob, keep), 0.7)
            corners = _to_square(corners)

            offsets, landmarks, prob = self._if_any(
                lambda c: self.onet(_normalise(patches(image, c, 48))), corners,
                (tf.zeros([0, 4]), tf.zeros([0, 10]), tf.zeros([0])))
            return corners, offsets, landmarks, prob

        return tf.function(cascade).get_concrete_function(
            tf.TensorSpec([None, None, 3], tf.uint8), tf.TensorSpec([None], tf.float32))


@functools.lru_cache(maxsize=None)
def networks() -> Networks:
    """One set of networks per process, shared by every detector (they hold no state)."""
    return Networks()
