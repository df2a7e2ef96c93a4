"""TFDS builder of FER2013 from the manually downloaded `fer2013.csv`.

The file (Kaggle "Challenges in Representation Learning: Facial Expression Recognition") has the
header `emotion,pixels,Usage`; `emotion` is 0..6 = Angry, Disgust, Fear, Happy, Sad, Surprise,
Neutral; `pixels` is 2304 space-separated ints (a 48x48 gray face), quoted or not; `Usage` is
Training (28,709 rows), PublicTest (3,589) or PrivateTest (3,589), which become the splits
`train`, `public_test` and `private_test`. The ICML variant `icml_face_data.csv` (header
`emotion, Usage, pixels`) is read too: columns are found by name, spaces and CRLF ignored.
A malformed row stops the build with one line naming the file, the line and what was expected.
"""

from __future__ import annotations

import csv
import os

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from tensorflow_datasets.core import utils as tfds_utils

from ast_net import errors

CSV_NAME = "fer2013.csv"
LABELS = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
SPLITS = {"train": "Training", "public_test": "PublicTest", "private_test": "PrivateTest"}
SIDE = 48

_INSTRUCTIONS = f"""\
FER2013 cannot be downloaded automatically. Get `{CSV_NAME}` (about 300 MB) from the Kaggle
challenge "Challenges in Representation Learning: Facial Expression Recognition Challenge"
(https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge/data,
inside fer2013.tar.gz) and put it in the manual directory, e.g.
`--manual_dir=~/data/fer2013` so that `~/data/fer2013/{CSV_NAME}` exists.
"""


class Builder(tfds.core.GeneratorBasedBuilder):
    """FER2013: 48x48 gray faces with 7 emotion labels."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Built from fer2013.csv (train / public_test / private_test)."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS

    @tfds_utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        # TFDS 4.9.10's own lookup needs the `importlib_resources` backport, which is not a
        # dependency on Python 3.11; the path of this file is all it wants.
        return epath.Path(__file__)

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description="FER2013 facial expressions: 48x48 gray faces, 7 emotions.",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(SIDE, SIDE, 1)),
                "label": tfds.features.ClassLabel(names=list(LABELS)),
            }),
            supervised_keys=("image", "label"),
            homepage="https://www.kaggle.com/c/challenges-in-representation-learning-facial-"
                     "expression-recognition-challenge",
            citation="Goodfellow et al., Challenges in Representation Learning: A report on "
                     "three machine learning contests, ICONIP 2013.",
        )

    def _split_generators(self, dl_manager):
        path = os.path.join(os.fspath(dl_manager.manual_dir), CSV_NAME)
        if not os.path.isfile(path):
            raise errors.UserError(
                f"{path}: not found; put the Kaggle {CSV_NAME} in the manual directory "
                "(see the FER2013 download instructions in docs/attribute_cnn.md)")
        counts = _check_header_and_count(path)
        return {split: self._generate_examples(path, usage)
                for split, usage in SPLITS.items() if counts.get(usage)}

    def _generate_examples(self, path, usage):
        for line_no, label, pixels in read_rows(path, usage):
            yield line_no, {"image": pixels.reshape(SIDE, SIDE, 1), "label": label}


def _columns(path: str, header) -> tuple:
    names = [h.strip().lstrip("\ufeff").lower() for h in header or []]
    try:
        return names.index("emotion"), names.index("pixels"), names.index("usage")
    except ValueError:
        raise errors.UserError(
            f"{path}: header is {header}, expected the columns emotion,pixels,Usage") from None


def _check_header_and_count(path: str) -> dict:
    """Rows per Usage value (a fast pass that does not parse pixels)."""
    counts: dict = {}
    with open(path, newline="") as f:
        reader = csv.reader(f)
        _, _, u = _columns(path, next(reader, None))
        for row in reader:
            if row and len(row) > u:
                usage = row[u].strip()
                counts[usage] = counts.get(usage, 0) + 1
    if not counts:
        raise errors.UserError(f"{path}: no data rows after the header")
    return counts


def read_rows(path: str, usage: str | None = None):
    """Yields (line number, label, uint8 pixels [2304]) for the rows of `usage` (None: all)."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        e, p, u = _columns(path, next(reader, None))
        for row in reader:
            line_no = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) <= max(e, p, u):
                raise errors.UserError(f"{path}:{line_no}: expected 3 columns, got {len(row)}")
            row_usage = row[u].strip()
            if row_usage not in SPLITS.values():
                raise errors.UserError(
                    f"{path}:{line_no}: Usage {row_usage!r}, expected one of "
                    f"{sorted(SPLITS.values())}")
            if usage is not None and row_usage != usage:
                continue
            try:
                label = int(row[e])
                values = np.array(row[p].split(), dtype=np.int64)
            except ValueError:
                raise errors.UserError(
                    f"{path}:{line_no}: emotion must be an int and pixels space-separated "
                    "ints") from None
            if not 0 <= label < len(LABELS):
                raise errors.UserError(f"{path}:{line_no}: emotion {label}, expected 0..6")
            if values.size != SIDE * SIDE or values.min() < 0 or values.max() > 255:
                raise errors.UserError(
                    f"{path}:{line_no}: {values.size} pixels, expected {SIDE * SIDE} ints "
                    "in 0..255")
            yield line_no, label, values.astype(np.uint8)


def load(split: str, *, data_dir: str | None = None, manual_dir: str | None = None):
    """Prepares FER2013 once (from `manual_dir`/fer2013.csv) and returns `split` as tf.data.

    Elements are (image uint8 [48, 48, 1], label int64). `data_dir` is where TFDS keeps the
    prepared dataset (default ~/tensorflow_datasets); a prepared dataset is reused as is.
    """
    if split not in SPLITS:
        raise errors.UserError(f"unknown FER2013 split {split!r}; expected one of {list(SPLITS)}")
    builder = Builder(data_dir=data_dir or None)
    if not builder.is_prepared():
        if not manual_dir:
            raise errors.UserError(
                f"{builder.data_dir}: FER2013 is not prepared there yet; give the directory "
                f"holding {CSV_NAME} as --manual_dir (config.data.manual_dir)")
        manual_dir = os.path.expanduser(manual_dir)
        if not os.path.isfile(os.path.join(manual_dir, CSV_NAME)):
            raise errors.UserError(
                f"{os.path.join(manual_dir, CSV_NAME)}: not found; put the Kaggle {CSV_NAME} "
                "there (see docs/attribute_cnn.md)")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir or None))
    if split not in builder.info.splits:
        raise errors.UserError(
            f"{builder.data_dir}: FER2013 was built without a {split} split (no "
            f"{SPLITS[split]} rows in the csv)")
    return builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)


def write_synthetic_csv(path: str, rows_per_split=(70, 21, 14), seed: int = 0) -> str:
    """Writes a small fer2013.csv in the Kaggle format whose labels are learnable.

    A face of class k is horizontal stripes of k + 1 periods over the 48 rows plus noise
    (flip-invariant, so augmentation keeps the label). Odd rows quote the pixels, lines end in
    CRLF, as in the real file. For tests and smoke runs of the CNN stage only.
    """
    rng = np.random.default_rng(seed)
    y = np.arange(SIDE, dtype=np.float64)[:, None]
    lines = ["emotion,pixels,Usage"]
    for usage, count in zip(SPLITS.values(), rows_per_split):
        for i in range(count):
            label = int(rng.integers(len(LABELS)))
            phase = rng.uniform(0, 2 * np.pi)
            img = 128 + 90 * np.sin(2 * np.pi * (label + 1) * y / SIDE + phase)
            img = img + rng.normal(0, 20, (SIDE, SIDE))
            pixels = " ".join(str(int(v)) for v in np.clip(np.round(img), 0, 255).ravel())
            lines.append(f'{label},"{pixels}",{usage}' if i % 2 else f"{label},{pixels},{usage}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        f.write("\r\n".join(lines) + "\r\n")
    return path
