"""FER2013 TFDS builder on small fer2013.csv files written by hand in the Kaggle format
(quoted and unquoted pixels, CRLF line ends), plus the ICML variant header and bad files."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from ast_net import errors
from ast_net.data import fer2013


def _pixels(seed):
    return (np.arange(2304) * 7 + seed * 13) % 256


def _write(path, lines, newline="\r\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((newline.join(lines) + newline).encode())


ROWS = [  # (emotion, usage, quoted)
    (0, "Training", False), (3, "Training", True), (6, "Training", False),
    (5, "PublicTest", True), (2, "PublicTest", False), (4, "PrivateTest", True),
]


def _kaggle_lines():
    lines = ["emotion,pixels,Usage"]
    for seed, (emotion, usage, quoted) in enumerate(ROWS):
        px = " ".join(str(v) for v in _pixels(seed))
        lines.append(f'{emotion},"{px}",{usage}' if quoted else f"{emotion},{px},{usage}")
    return lines


def _build(tmp_path, lines, name="a"):
    manual = tmp_path / name / "manual"
    _write(manual / "fer2013.csv", lines)
    builder = fer2013.Builder(data_dir=str(tmp_path / name / "tfds"))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
    return builder


def _split(builder, split):
    items = [(ex["image"], int(ex["label"]))
             for ex in tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False))]
    return sorted(items, key=lambda item: int(item[0][0, 1, 0]))  # Order by the seed's pixel.


def test_kaggle_csv_builds_three_splits_with_exact_pixels_and_labels(tmp_path):
    builder = _build(tmp_path, _kaggle_lines())
    assert builder.name == "fer2013"
    assert {k: v.num_examples for k, v in builder.info.splits.items()} == {
        "train": 3, "public_test": 2, "private_test": 1}
    assert builder.info.features["label"].names == list(fer2013.LABELS)
    expected = {"train": [0, 1, 2], "public_test": [3, 4], "private_test": [5]}
    for split, seeds in expected.items():
        items = _split(builder, split)
        seeds = sorted(seeds, key=lambda s: _pixels(s)[1])
        for (image, label), seed in zip(items, seeds):
            assert image.shape == (48, 48, 1) and image.dtype == np.uint8
            np.testing.assert_array_equal(image[..., 0], _pixels(seed).reshape(48, 48))
            assert label == ROWS[seed][0]
    ds = fer2013.load("public_test", data_dir=str(tmp_path / "a" / "tfds"))  # Reused, no csv.
    assert sorted(int(label) for _, label in ds) == [2, 5]


def test_icml_variant_header_with_spaces_and_lf_lines(tmp_path):
    lines = ["emotion, Usage, pixels"]
    for seed, (emotion, usage, _) in enumerate(ROWS):
        lines.append(f"{emotion},{usage},{' '.join(str(v) for v in _pixels(seed))}")
    manual = tmp_path / "manual"
    _write(manual / "fer2013.csv", lines, newline="\n")
    labels = sorted(int(label) for _, label in fer2013.load(
        "train", data_dir=str(tmp_path / "tfds"), manual_dir=str(manual)))
    assert labels == [0, 3, 6]


@pytest.mark.parametrize("bad_row, message", [
    ('1,"1 2 3",Training', r"fer2013.csv:3: 3 pixels, expected 2304"),
    ("9,{px},Training", r"fer2013.csv:3: emotion 9, expected 0..6"),
    ("1,{px},Validation", r"fer2013.csv:3: Usage 'Validation'"),
])
def test_bad_rows_name_the_file_and_line(tmp_path, bad_row, message):
    lines = _kaggle_lines()[:2] + [bad_row.format(px=" ".join(["5"] * 2304))]
    with pytest.raises(errors.UserError, match=message):
        _build(tmp_path, lines)


def test_missing_csv_says_where_to_put_it(tmp_path):
    (tmp_path / "manual").mkdir()
    with pytest.raises(errors.UserError, match=r"manual/fer2013.csv: not found"):
        fer2013.load("train", data_dir=str(tmp_path / "tfds"), manual_dir=str(tmp_path / "manual"))
    with pytest.raises(errors.UserError, match=r"tfds/fer2013/1.0.0: FER2013 is not prepared"):
        fer2013.load("train", data_dir=str(tmp_path / "tfds"))
    with pytest.raises(errors.UserError, match="unknown FER2013 split 'test'"):
        fer2013.load("test", data_dir=str(tmp_path / "tfds"))
