"""The streaming engine: frames in, per-frame valence/arousal of every tracked face out.

    frames -> FaceTracker (full MTCNN every `detect_every` frames or when a face is lost, O-Net
    refinement between) -> eye-aligned crops -> batched backbone (its own `preprocess`) ->
    a per-track head -> FramePrediction per frame (one entry per tracked face)

Two heads (`inference_heads.py`): with an AST-Net checkpoint, `TemporalHead` runs the trained
stacked LSTM over a per-track window of the last N frames Δt apart (same sampling as training;
see its docstring); without one, `ZeroShotHead` maps the embedded FER2013 CNN's 7 emotion
probabilities to valence/arousal (`va_mapping`) and smooths them causally.

Speed (DESIGN section 6): full detection only every `detect_every` frames; O-Net refinement
only every `refine_every` frames (the box and eye landmarks are held in between and the crop is
cut from the new frame: cheaper, at the cost of some eye drift when the head moves, measured by
benchmarks/realtime.py); the CNN runs once per batch of up to `batch_frames` frames, on all of
their faces together; the LSTM windows of a batch run in one call per window length. `run()`
overlaps the stages: the caller's frame iterator (e.g. `video.iter_frames(prefetch=...)`, which
decodes in its own thread) feeds a face thread (the tracker) and the calling thread runs the
alignment (`FaceCrop.crop`, cut on first read) and the networks, so decode, detection and the
CNN use both cores (TF and OpenCV release the GIL; TF's inter-op pool has a thread for each of
the two stages that call it, `set_tf_threads`).

Results come out in frame order, delayed by at most one batch. Frames without a face are never
dropped: they come out with `faces == []`. Each face's prediction also carries the detector's
confidence and 5 landmarks and, when the CNN has a 7-class FER2013 head, its emotion
probabilities for that crop (`inference_heads.with_emotions`: from the same CNN pass).
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Iterable, Iterator, Optional

import numpy as np

from ast_net import contract as contract_lib
from ast_net import engine_options, errors, inference_heads, threads, training_run, windows
from ast_net.faces import align as align_lib
from ast_net.faces import detector as detector_lib
from ast_net.faces import video_faces
from ast_net.models import backbones


@dataclasses.dataclass
class FaceCrop:
    """One tracked face of one frame (the face stage's output); `crop` is its aligned S x S
    uint8 image.

    The crop is cut from `source` (the frame) on its first read and kept; the frame reference
    is then dropped. In a threaded run that first read is the network stage's
    (`Engine.predict_batch`), so the alignment runs beside the tracking of later frames
    instead of after it in the face thread, the pipeline's critical path.
    """

    track_id: int
    box: tuple[float, float, float, float]
    landmarks: dict[str, tuple[float, float]]
    size: int
    source: Optional[np.ndarray] = dataclasses.field(repr=False)
    detected: bool
    refreshed: bool  # False when box and landmarks were held from an earlier frame.
    confidence: float = float("nan")  # The detector's (MTCNN O-Net) face probability.
    _crop: Optional[np.ndarray] = dataclasses.field(default=None, repr=False)

    @property
    def crop(self) -> np.ndarray:
        if self._crop is None:
            self._crop = align_lib.align_face(self.source, self.landmarks["left_eye"],
                                              self.landmarks["right_eye"], self.size).crop
            self.source = None
        return self._crop


@dataclasses.dataclass
class FaceFrame:
    """A frame after the face stage."""

    index: int
    timestamp: float
    faces: list[FaceCrop]
    image: Optional[np.ndarray] = None
    t_capture: float = 0.0


@dataclasses.dataclass
class FacePrediction:
    """Valence/arousal of one face on one frame (values may be NaN only if the head says so)."""

    track_id: int
    box: tuple[float, float, float, float]
    valence: float
    arousal: float
    landmarks: dict[str, tuple[float, float]]
    detected: bool
    feature: Optional[np.ndarray] = None  # The CNN output, when `keep_features`.
    confidence: float = float("nan")  # MTCNN O-Net face probability (held like the box).
    # The CNN's 7 FER2013 probabilities (`backbones.EMOTIONS` order) of this frame's crop,
    # before any smoothing; None when the backbone has no 7-class head.
    emotions: Optional[np.ndarray] = None


@dataclasses.dataclass
class FramePrediction:
    """All faces of one frame; `image` is the RGB frame when the engine keeps images."""

    index: int
    timestamp: float
    faces: list[FacePrediction]
    image: Optional[np.ndarray] = None
    t_capture: float = 0.0
    t_done: float = 0.0

    @property
    def face_present(self) -> bool:
        return bool(self.faces)


class StageTimes:
    """Wall seconds spent per stage (thread-safe enough: each stage has one writer)."""

    def __init__(self):
        self.seconds = {"track": 0.0, "align": 0.0, "cnn": 0.0, "head": 0.0}
        self.frames = 0
        self.faces = 0
        self.cnn_calls = 0

    def ms_per_frame(self) -> dict:
        n = max(self.frames, 1)
        return {k: 1000.0 * v / n for k, v in self.seconds.items()}


class Engine:
    """Frames -> `FramePrediction`s; see the module docstring.

    Args:
      backbone: a `backbones.Backbone` (the CNN the head's features or probabilities come from).
      head: a `heads.TemporalHead` or `heads.ZeroShotHead`.
      detector: an `MtcnnDetector` (default: one with `min_face_size`).
      face_size: side of the aligned crops (default: the backbone's input size).
      detect_every: frames between periodic full MTCNN detections.
      refine_every: frames between O-Net refinements; the box is held in between (1 = every).
      min_face_size: smallest face, in pixels, the detector looks for.
      max_faces: at most this many faces tracked at once (None = all).
      batch_frames: frames whose faces go through the CNN together (latency, in frames).
      max_cnn_batch: cap on faces per CNN call.
      keep_images: attach the RGB frame to each prediction (for drawing).
      keep_features: attach each face's CNN output to its prediction (for tests / debugging).
    """

    def __init__(self, backbone, head, *, detector=None, face_size: int = 0,
                 detect_every: int = contract_lib.DEFAULT_DETECT_EVERY,
                 refine_every: int = contract_lib.DEFAULT_REFINE_EVERY,
                 min_face_size: float = contract_lib.DEFAULT_MIN_FACE_SIZE,
                 max_faces: Optional[int] = None, batch_frames: int = 32,
                 max_cnn_batch: int = 128, keep_images: bool = False,
                 keep_features: bool = False):
        if detect_every < 1 or refine_every < 1 or batch_frames < 1 or max_cnn_batch < 1:
            raise ValueError("detect_every, refine_every, batch_frames and max_cnn_batch must "
                             "be >= 1")
        self.backbone = backbone
        self.head = head
        self.detector = detector or detector_lib.MtcnnDetector(min_face_size=min_face_size)
        self.face_size = int(face_size or backbone.input_size)
        self.detect_every = int(detect_every)
        self.refine_every = int(refine_every)
        self.max_faces = max_faces
        self.batch_frames = int(batch_frames)
        self.max_cnn_batch = int(max_cnn_batch)
        self.keep_images = keep_images
        self.keep_features = keep_features
        self.cnn_fn = head.cnn_function(backbone)
        # crops -> (the head's CNN outputs, the 7 emotion probabilities or None).
        self.cnn_emotions_fn = inference_heads.with_emotions(head, backbone, self.cnn_fn)
        self.contract = None  # The resolved `contract.Contract`, set by `load_engine`.
        # What the values come from (zero-shot or a checkpoint and its step), for the
        # outputs' sidecar and labels; set by `load_engine`.
        self.model_info: dict = {"kind": "zero-shot" if isinstance(
            head, inference_heads.ZeroShotHead) else "checkpoint", "backbone": backbone.name}
        self.times = StageTimes()
        self.reset()

    def reset(self) -> None:
        """Starts a new video: new tracker (ids from 0 again), per-track head state cleared."""
        # The same tracking as prepare-videos (`video_faces.HeldTracker`): same settings, same
        # crops.
        self.tracker = video_faces.HeldTracker(
            self.detector, detect_every=self.detect_every, refine_every=self.refine_every,
            max_faces=self.max_faces)
        self.head.reset()

    def warmup(self, height: int = 360, width: int = 640) -> None:
        """Traces and runs every graph once (detector, O-Net, CNN, head) on a blank frame, so
        the first real frames are not seconds late (matters for a live source)."""
        blank = np.zeros((int(height), int(width), 3), np.uint8)
        self.detector.detect(blank)
        self.detector.refine_many(blank, [(width / 4, height / 4, width / 2, height / 2)])
        crops = np.zeros((2, self.face_size, self.face_size, 3), np.uint8)
        outputs = [self.cnn_emotions_fn(crops[:n])[0] for n in (1, 2)]  # Shape-generic trace.
        self.head.step_batch([(0, 0.0, [0], outputs[0][:1])])
        self.head.reset()

    # ----- stage 1: tracking -----------------------------------------------------------

    def faces(self, index: int, timestamp: float, rgb, t_capture: float = 0.0, *,
              keep_image: Optional[bool] = None) -> FaceFrame:
        """Tracks the faces of one frame (call in frame order); each `FaceCrop` aligns its
        crop from `rgb` when first read, so `rgb` must not be overwritten before then.
        `keep_image` overrides `keep_images` for this frame."""
        t0 = time.perf_counter()
        held, refresh = self.tracker.update(rgb)
        self.times.seconds["track"] += time.perf_counter() - t0
        crops = [FaceCrop(track_id=t.track_id, box=t.face.box, landmarks=t.face.landmarks,
                          size=self.face_size, source=rgb, detected=t.detected and refresh,
                          refreshed=refresh, confidence=float(t.face.confidence))
                 for t in held]
        return FaceFrame(index=int(index), timestamp=float(timestamp), faces=crops,
                         image=rgb if (self.keep_images if keep_image is None
                                       else keep_image) else None,
                         t_capture=t_capture or t0)

    # ----- stage 2: networks -------------------------------------------------------------

    def predict_batch(self, frames: list[FaceFrame]) -> list[FramePrediction]:
        """CNN on every face of `frames` at once, then the head frame by frame, in order."""
        t_align = time.perf_counter()
        crops = [f.crop for frame in frames for f in frame.faces]  # Aligned here (`FaceCrop`).
        t0 = time.perf_counter()
        self.times.seconds["align"] += t0 - t_align
        outputs, emotions = np.zeros((0, 0), np.float32), None
        if crops:
            stacked = np.stack(crops)
            parts = [self.cnn_emotions_fn(stacked[i:i + self.max_cnn_batch])
                     for i in range(0, len(stacked), self.max_cnn_batch)]
            outputs = np.concatenate([p[0] for p in parts])
            if parts[0][1] is not None:
                emotions = np.concatenate([p[1] for p in parts])
            self.times.cnn_calls += len(parts)
        t1 = time.perf_counter()
        per_frame, k = [], 0
        for frame in frames:
            n = len(frame.faces)
            per_frame.append((frame.index, frame.timestamp,
                              [f.track_id for f in frame.faces], outputs[k:k + n]))
            k += n
        values = self.head.step_batch(per_frame)
        t2 = time.perf_counter()
        results, k = [], 0
        for frame, va in zip(frames, values):
            faces = []
            for j, f in enumerate(frame.faces):
                faces.append(FacePrediction(
                    track_id=f.track_id, box=f.box, valence=float(va[j, 0]),
                    arousal=float(va[j, 1]), landmarks=f.landmarks, detected=f.detected,
                    feature=outputs[k + j].copy() if self.keep_features else None,
                    confidence=f.confidence,
                    emotions=None if emotions is None else emotions[k + j].copy()))
            k += len(frame.faces)
            results.append(FramePrediction(index=frame.index, timestamp=frame.timestamp,
                                           faces=faces, image=frame.image,
                                           t_capture=frame.t_capture, t_done=t2))
        self.times.seconds["cnn"] += t1 - t0
        self.times.seconds["head"] += t2 - t1
        self.times.frames += len(frames)
        self.times.faces += len(crops)
        return results

    # ----- the loop ----------------------------------------------------------------------

    def run(self, frames: Iterable, *, threaded: bool = True, greedy: bool = False,
            keep_images: Optional[bool] = None) -> Iterator[FramePrediction]:
        """Predictions for an iterable of `(index, timestamp_s, rgb[, t_capture])`, in order.

        Args:
          frames: frames in order (a `video.FrameReader`, a live source, a list ...); each
            RGB array is read again by the network stage (alignment), so a source must yield
            a new array per frame, not refill one buffer.
          threaded: run the face stage in its own thread, overlapped with the networks.
          greedy: live mode: run the networks on whatever frames are ready (at most
            `batch_frames`) instead of waiting for a full batch; lowest latency.
          keep_images: attach the RGB frames to this run's predictions (None: the engine's
            `keep_images`); the engine itself is left as it is.
        """
        if not threaded:
            batch: list[FaceFrame] = []
            for item in frames:
                batch.append(self.faces(*item, keep_image=keep_images))
                if len(batch) >= self.batch_frames:
                    yield from self.predict_batch(batch)
                    batch = []
            if batch:
                yield from self.predict_batch(batch)
            return
        yield from _ThreadedRun(self, frames, greedy, keep_images)


class _ThreadedRun:
    """Face stage in a worker thread feeding a bounded queue (`threads.Producer`); networks in
    the caller's thread.

    The worker stops, and is joined, when the iteration ends: normally, by an error inside
    it, or when the caller closes the generator (`Engine.run(...).close()`). A caller whose own
    code raises in the middle of the loop (a CSV write on a full disk) must close it before
    the error goes on (`predict_lib.predict_video` does): a generator suspended at its yield
    runs no `finally` until it is closed or collected, and a worker still inside OpenCV or
    TensorFlow when the interpreter exits aborts it (`Fatal Python error: Aborted`).
    """

    def __init__(self, engine: Engine, frames: Iterable, greedy: bool,
                 keep_images: Optional[bool] = None):
        self.engine = engine
        self.frames = frames
        self.greedy = greedy
        self.keep_images = keep_images
        self.worker = threads.Producer(self._faces(), maxsize=2 * engine.batch_frames,
                                       name="ast_net-faces")

    def _faces(self) -> Iterator[FaceFrame]:
        for item in self.frames:
            if self.worker.stopped.is_set():  # Before the work, not after it.
                return
            yield self.engine.faces(*item, keep_image=self.keep_images)

    def __iter__(self) -> Iterator[FramePrediction]:
        self.worker.start()
        limit = self.engine.batch_frames
        try:
            done = False
            while not done:
                item = self.worker.get(block=True)
                if item is threads.END:
                    break
                batch = [item]
                while len(batch) < limit:
                    item = self.worker.get(block=not self.greedy)
                    if item is None:
                        break
                    if item is threads.END:
                        done = True
                        break
                    batch.append(item)
                yield from self.engine.predict_batch(batch)
            if self.worker.error is not None:
                raise self.worker.error
        finally:
            self.worker.stop(timeout=10)


DEFAULT_SMOOTHING_S = 0.5  # Zero-shot EMA time constant.


def load_head(checkpoint: Optional[str] = None, backbone_name: Optional[str] = None,
              smoothing_s: Optional[float] = None, jit_compile: bool = False, step=None):
    """(head, backbone name) for a checkpoint work directory, or the zero-shot default.

    Raises:
      errors.UserError: not a work directory, no checkpoint, or a checkpoint from another
        config (features of an unknown backbone, another feature size, or a `backbone_name`
        other than the one its features came from).
    """
    if not checkpoint:
        if smoothing_s is not None and smoothing_s < 0:
            raise errors.UserError(f"--smoothing_s must be >= 0, got {smoothing_s}")
        head = inference_heads.ZeroShotHead(
            DEFAULT_SMOOTHING_S if smoothing_s is None else smoothing_s)
        return head, backbone_name or backbones.DEFAULT
    model, config, info, restored = training_run.load_temporal(checkpoint, step)  # latest/best/N
    # The one compatibility check (`contract.resolve`): known backbone, the same one.
    trained_on = contract_lib.resolve(contract_lib.of_model_info(info, config), checkpoint,
                                      backbone=backbone_name).backbone
    if smoothing_s:
        raise errors.UserError("--smoothing_s applies to the zero-shot default only; the "
                               "checkpoint's LSTM does its own temporal modelling")
    merge, value_range = windows.output_options(config)  # config.output, as in evaluate.
    head = inference_heads.TemporalHead(
        model, clip_length=int(config.data.clip_length), frame_step=int(config.data.frame_step),
        feature_scale=float(config.data.get("feature_scale", 1.0)), jit_compile=jit_compile,
        merge=merge, value_range=value_range)
    head.step = restored  # The checkpoint step restored (for the outputs' sidecar).
    return head, trained_on


# Threads of the engine that run TensorFlow graphs at the same time: the face stage (MTCNN,
# O-Net) and the network stage (CNN, LSTM). Each graph call runs on TF's inter-op pool, so a
# pool of one thread makes an O-Net refinement wait behind a whole CNN batch.
TF_CALLING_STAGES = 2


def set_tf_threads(threads: int) -> bool:
    """TensorFlow op threads: `threads` per op (intra-op), and an inter-op pool of at least
    `TF_CALLING_STAGES` so the engine's two TF-calling stages never queue behind each other
    (0 = TF's defaults); False if TF already started.

    The engine runs its stages in parallel threads, so single-threaded ops waste less CPU on
    thread-pool hand-offs: about 15% less CPU per frame with the mini-Xception on our 2-core
    machine; an inter-op pool of 2 instead of 1 then gives 11-17% more frames/s
    (benchmarks/realtime.py, docs/predict.md). A large CNN (VGG16) prefers TF's default.
    """
    import tensorflow as tf

    if threads <= 0:
        return True
    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(max(int(threads),
                                                                 TF_CALLING_STAGES))
    except RuntimeError:  # TF has already run ops in this process: keep its pools.
        return False
    return True


def load_engine(checkpoint: Optional[str] = None,
                options: Optional[engine_options.EngineOptions] = None, *,
                jit_compile_lstm: bool = True, tf_threads: Optional[int] = None,
                **engine_kwargs) -> Engine:
    """An `Engine` for a checkpoint work directory (or the zero-shot default).

    Args:
      checkpoint: an `ast-net-train` work directory, or None for the zero-shot default.
      options: the user's settings (`engine_options.EngineOptions`: backbone, its weights,
        smoothing, step, face and tracker settings, max_faces, batch_frames); fields given as
        keyword arguments override it (validated once, there).
      jit_compile_lstm: XLA for the LSTM's full-length windows (see `TemporalHead`).
      tf_threads: TF op threads if TF has not started yet (`set_tf_threads`); None = the
        backbone module's TF_THREADS (1 for mini_xception, TF's default for vgg16).
      **engine_kwargs: `EngineOptions` fields, then the rest passed to `Engine`
        (keep_images, keep_features, ...). face_size, detect_every, refine_every and
        min_face_size (None or 0 = not given) default to the checkpoint's preprocessing
        contract (`ast_net.contract`) and must agree with it.

    Raises:
      errors.UserError: a bad option, a bad checkpoint, or a flag that contradicts its
        contract (one line).
    """
    options = engine_options.EngineOptions.split(options, engine_kwargs)
    # The preprocessing contract decides the face stage: the checkpoint's values, the flags
    # only where they agree with it (`contract.resolve`: one error line otherwise).
    where = checkpoint or "zero-shot default"
    expected = contract_lib.of_workdir(checkpoint) if checkpoint else contract_lib.Contract()
    run = contract_lib.resolve(expected, where, backbone=options.backbone,
                               weights=options.backbone_weights,
                               **{k: getattr(options, k) for k in contract_lib.TRACKED})
    if tf_threads is None:
        tf_threads = backbones.get(run.backbone).TF_THREADS
    set_tf_threads(tf_threads)
    head, _ = load_head(checkpoint, run.backbone, options.smoothing_s, jit_compile_lstm,
                        step=options.step)
    net = contract_lib.load_backbone(run, options.backbone_weights, where)
    engine = Engine(net, head, face_size=run.face_size, detect_every=run.detect_every,
                    refine_every=run.refine_every, min_face_size=run.min_face_size,
                    max_faces=options.max_faces, batch_frames=options.batch_frames,
                    **engine_kwargs)
    engine.contract = run
    if checkpoint:
        engine.model_info.update(checkpoint=os.path.abspath(checkpoint), step=head.step,
                                 step_requested=str(options.step or "latest"),
                                 clip_length=head.clip_length, frame_step=head.frame_step)
    else:
        engine.model_info.update(mapping="Russell circumplex (ast_net/va_mapping.py)",
                                 smoothing_s=head.smoothing_s)
    engine.model_info["backbone_weights"] = options.backbone_weights or "default"
    return engine
