"""Tests of finding (video, labels) pairs in each data set layout (docs/datasets.md).

The trees are built in tmp_path with empty stand-in video files: discovery goes by names only.
"""

import numpy as np
import pytest

from ast_net import errors
from ast_net.data import layouts


def _touch(root, rel, text=""):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _avec_labels(root, split, num, dims=("arousal", "valence", "expectancy", "power")):
    for d in dims:
        _touch(root, f"{split}/FC_{split}_labels/labels_continuous_{split}{num}_{d}.dat",
               "0.1\n0.2\n")


def test_avec2012_canonical_layout(tmp_path):
    for split in ("train", "devel", "test"):
        _touch(tmp_path, f"{split}/videos/{split}001.avi")
        _avec_labels(tmp_path, split, "001")
    _touch(tmp_path, "devel/videos/devel002.avi")  # no labels: kept, unlabelled
    items = layouts.find_items("avec2012", tmp_path)
    ids = [(it.split, it.video_id) for it in items]
    assert ids == [("dev", "avec2012/devel001"), ("dev", "avec2012/devel002"),
                   ("test", "avec2012/test001"), ("train", "avec2012/train001")]
    dev1 = items[0]
    assert dev1.subject == "devel001" and dev1.problem == ""
    assert dev1.video_path.endswith("devel/videos/devel001.avi")
    assert set(dev1.label_paths) == {"arousal", "valence"}
    assert dev1.label_paths["valence"].endswith("labels_continuous_devel001_valence.dat")
    assert items[1].label_paths == {} and items[1].problem == ""
    track = layouts.read_labels(dev1)
    np.testing.assert_allclose(track.valence, [0.1, 0.2])
    assert layouts.read_labels(items[1]) is None


def test_avec2012_video_names_and_problems(tmp_path):
    _touch(tmp_path, "anywhere/deep/Video_Train_002.AVI")
    _avec_labels(tmp_path, "train", "002")
    _touch(tmp_path, "v/test-003.mp4")
    _avec_labels(tmp_path, "test", "003", dims=("arousal",))  # valence missing
    _avec_labels(tmp_path, "devel", "004")  # no video
    _touch(tmp_path, "v/train0051.avi")  # 4 digits: not a session
    _touch(tmp_path, "v/xtrain006.avi")  # preceded by a letter: not a session
    items = {it.video_id: it for it in layouts.find_items("avec2012", tmp_path)}
    assert sorted(items) == ["avec2012/devel004", "avec2012/test003", "avec2012/train002"]
    assert items["avec2012/train002"].problem == ""
    assert "no valence label file" in items["avec2012/test003"].problem
    assert items["avec2012/devel004"].video_path is None
    assert "no video file" in items["avec2012/devel004"].problem
    only_train = layouts.find_items("avec2012", tmp_path, splits=["train"])
    assert [it.video_id for it in only_train] == ["avec2012/train002"]
    assert [it.split for it in layouts.find_items("avec2012", tmp_path, ["devel"])] == ["dev"]


def test_avec2012_two_videos_for_one_session(tmp_path):
    _touch(tmp_path, "a/train001.avi")
    _touch(tmp_path, "b/train_001.mp4")
    with pytest.raises(errors.UserError, match="two for train001"):
        layouts.find_items("avec2012", tmp_path)


def test_avec2012_release_names_video_and_tests_prefix(tmp_path):
    """The release's names: words between split and session (`train_video001.avi`, as the
    audio's `train_audio001.wav`) and the `tests_` prefix of test videos, labelled `test`."""
    for split, video_split in (("train", "train"), ("devel", "devel"), ("test", "tests")):
        _touch(tmp_path, f"{split}/Video/{video_split}_video001.avi")
        _touch(tmp_path, f"{split}/Audio/{video_split}_audio001.wav")  # not a video
        _avec_labels(tmp_path, split, "001")
    _touch(tmp_path, "test/Video/tests_video002.avi")  # no labels: kept, unlabelled
    _touch(tmp_path, "devel/Video/Devel-Video-003.AVI")
    _avec_labels(tmp_path, "devel", "003")
    items = layouts.find_items("avec2012", tmp_path)
    got = [(it.split, it.video_id, it.subject, it.problem) for it in items]
    assert got == [("dev", "avec2012/devel001", "devel001", ""),
                   ("dev", "avec2012/devel003", "devel003", ""),
                   ("test", "avec2012/test001", "test001", ""),
                   ("test", "avec2012/test002", "test002", ""),
                   ("train", "avec2012/train001", "train001", "")]
    by_id = {it.video_id: it for it in items}
    assert by_id["avec2012/train001"].video_path == str(
        tmp_path / "train/Video/train_video001.avi")
    assert by_id["avec2012/devel003"].video_path == str(
        tmp_path / "devel/Video/Devel-Video-003.AVI")
    test1 = by_id["avec2012/test001"]
    assert test1.video_path == str(tmp_path / "test/Video/tests_video001.avi")
    assert test1.label_paths == {
        d: str(tmp_path / f"test/FC_test_labels/labels_continuous_test001_{d}.dat")
        for d in ("arousal", "valence")}
    assert by_id["avec2012/test002"].label_paths == {}
    assert [it.video_id for it in layouts.find_items("avec2012", tmp_path, ["test"])] == [
        "avec2012/test001", "avec2012/test002"]


def test_recola_gold_standard_and_original(tmp_path):
    arff = ("@relation GOLDSTANDARD\n@attribute Instance_name string\n@attribute frameTime "
            "numeric\n@attribute GoldStandard numeric\n@data\n{0},0.00,{1}\n{0},0.04,{1}\n")
    for stem in ("train_1", "dev_2"):
        _touch(tmp_path, f"recordings_video/{stem}.mp4")
        for d, v in (("arousal", 0.25), ("valence", -0.5)):
            _touch(tmp_path, f"ratings_gold_standard/{d}/{stem}.arff", arff.format(stem, v))
            _touch(tmp_path, f"ratings_individual/{d}/{stem}.csv")
    _touch(tmp_path, "recordings_video/P16.mp4")
    for d in ("arousal", "valence"):
        _touch(tmp_path, f"ratings_individual/{d}/P16.csv")
    _touch(tmp_path, "ratings_gold_standard/arousal/test_3.arff")  # no video, no valence
    items = {it.video_id: it for it in layouts.find_items("recola", tmp_path)}
    assert sorted(items) == ["recola/P16", "recola/dev_2", "recola/test_3", "recola/train_1"]
    assert items["recola/dev_2"].split == "dev"
    assert items["recola/train_1"].label_paths["valence"].endswith(
        "ratings_gold_standard/valence/train_1.arff")  # ARFF preferred over CSV
    assert items["recola/P16"].split == "all"
    assert items["recola/P16"].label_paths["arousal"].endswith("arousal/P16.csv")
    assert "no video file" in items["recola/test_3"].problem
    track = layouts.read_labels(items["recola/train_1"])
    np.testing.assert_allclose(track.arousal, [0.25, 0.25])
    np.testing.assert_allclose(track.valence, [-0.5, -0.5])


_INDIVIDUAL_ARFF = ("@relation INDIVIDUAL\n@attribute Instance_name string\n@attribute frameTime "
                    "numeric\n@attribute FM1 numeric\n@attribute FF1 numeric\n@data\n"
                    "{0},0.00,0.9,0.8\n{0},0.04,0.9,0.8\n")


def test_recola_avec2016_gold_standard_by_folder_name(tmp_path, caplog):
    """AVEC 2016: ratings_individual/ holds same-named ARFFs and sorts after
    ratings_gold_standard/; the gold standard is taken by folder name, the others ignored."""
    arff = ("@relation GOLDSTANDARD\n@attribute Instance_name string\n@attribute frameTime "
            "numeric\n@attribute GoldStandard numeric\n@data\n{0},0.00,{1}\n{0},0.04,{1}\n")
    _touch(tmp_path, "recordings_video/train_1.mp4")
    for d, v in (("arousal", 0.25), ("valence", -0.5)):
        _touch(tmp_path, f"ratings_gold_standard/{d}/train_1.arff", arff.format("train_1", v))
        _touch(tmp_path, f"ratings_individual/{d}/train_1.arff", _INDIVIDUAL_ARFF.format("train_1"))
    caplog.set_level("WARNING")
    items = layouts.find_items("recola", tmp_path)
    assert [(it.video_id, it.split, it.problem) for it in items] == [
        ("recola/train_1", "train", "")]
    assert items[0].label_paths == {
        d: str(tmp_path / f"ratings_gold_standard/{d}/train_1.arff")
        for d in ("arousal", "valence")}
    track = layouts.read_labels(items[0])
    np.testing.assert_allclose(track.arousal, [0.25, 0.25])
    np.testing.assert_allclose(track.valence, [-0.5, -0.5])
    warned = [r.getMessage() for r in caplog.records if "ignoring" in r.getMessage()]
    assert len(warned) == 2, caplog.text
    assert str(tmp_path / "ratings_individual/arousal/train_1.arff") in warned[0]


def test_recola_two_arff_outside_the_gold_standard_folder_fail_the_item(tmp_path):
    _touch(tmp_path, "video/dev_1.mp4")
    for folder in ("a", "b"):
        _touch(tmp_path, f"{folder}/arousal/dev_1.arff", _INDIVIDUAL_ARFF.format("dev_1"))
    _touch(tmp_path, "a/valence/dev_1.arff", _INDIVIDUAL_ARFF.format("dev_1"))
    items = layouts.find_items("recola", tmp_path)
    assert len(items) == 1 and items[0].label_paths == {}
    assert items[0].problem == (f"2 arousal ARFF files for dev_1, expected one: "
                                f"{tmp_path / 'a/arousal/dev_1.arff'}, "
                                f"{tmp_path / 'b/arousal/dev_1.arff'}")


def test_affwild2_left_right_share_a_video(tmp_path):
    ann = "annotations/VA_Estimation_Challenge"
    _touch(tmp_path, "videos/batch1/1-30-1280x720.mp4")
    _touch(tmp_path, "videos/batch2/10-60-1280x720.avi")
    _touch(tmp_path, f"{ann}/Train_Set/1-30-1280x720.txt", "valence,arousal\n0,0\n")
    _touch(tmp_path, f"{ann}/Validation_Set/10-60-1280x720_left.txt", "valence,arousal\n0,0\n")
    _touch(tmp_path, f"{ann}/Validation_Set/10-60-1280x720_right.txt", "valence,arousal\n0,0\n")
    _touch(tmp_path, f"{ann}/Train_Set/99-no-video.txt", "valence,arousal\n0,0\n")
    _touch(tmp_path, f"{ann}/README.txt", "Aff-Wild2 annotations\n")  # not a label file
    items = layouts.find_items("affwild2", tmp_path)
    got = [(it.split, it.video_id, it.face) for it in items]
    assert got == [("dev", "affwild2/10-60-1280x720_left", "left"),
                   ("dev", "affwild2/10-60-1280x720_right", "right"),
                   ("train", "affwild2/1-30-1280x720", ""),
                   ("train", "affwild2/99-no-video", "")]
    assert items[0].video_path == items[1].video_path
    assert items[0].video_path.endswith("10-60-1280x720.avi")
    assert "no video file" in items[3].problem


def test_affwild2_older_release_video_in_several_task_folders(tmp_path, caplog):
    """The older release holds one video in AU_Set / EXPR_Set / VA_Set folders, or in batch1
    and batch2: one video, the VA copy (else the first path) used, the choice logged."""
    for task in ("AU_Set", "EXPR_Set", "VA_Set"):
        _touch(tmp_path, f"{task}/videos/1-30-1280x720.mp4")
    _touch(tmp_path, "videos/batch2/2-30-640x360.mp4")
    _touch(tmp_path, "videos/batch1/2-30-640x360.avi")
    ann = "annotations/VA_Set"
    _touch(tmp_path, f"{ann}/Train_Set/1-30-1280x720.txt", "valence,arousal\n0.5,-0.5\n")
    _touch(tmp_path, f"{ann}/Validation_Set/2-30-640x360.txt", "valence,arousal\n0,0\n")
    _touch(tmp_path, "annotations/AU_Set/Train_Set/1-30-1280x720.txt", "AU1,AU2\n0,1\n")
    from absl import logging as absl_logging

    caplog.set_level("INFO")
    caplog.set_level("INFO", logger="absl")
    verbosity = absl_logging.get_verbosity()  # An earlier in-process binary may have lowered it.
    absl_logging.set_verbosity(absl_logging.INFO)
    try:
        items = layouts.find_items("affwild2", tmp_path)
    finally:
        absl_logging.set_verbosity(verbosity)
    assert [(it.split, it.video_id, it.video_path, it.problem) for it in items] == [
        ("dev", "affwild2/2-30-640x360", str(tmp_path / "videos/batch1/2-30-640x360.avi"), ""),
        ("train", "affwild2/1-30-1280x720", str(tmp_path / "VA_Set/videos/1-30-1280x720.mp4"),
         "")]
    logged = [r.getMessage() for r in caplog.records if "folders; using" in r.getMessage()]
    assert sorted(logged) == sorted([
        f"affwild2: video 1-30-1280x720 is in 3 folders; using "
        f"{tmp_path / 'VA_Set/videos/1-30-1280x720.mp4'}, not "
        f"{tmp_path / 'AU_Set/videos/1-30-1280x720.mp4'}, "
        f"{tmp_path / 'EXPR_Set/videos/1-30-1280x720.mp4'}",
        f"affwild2: video 2-30-640x360 is in 2 folders; using "
        f"{tmp_path / 'videos/batch1/2-30-640x360.avi'}, not "
        f"{tmp_path / 'videos/batch2/2-30-640x360.mp4'}"])


def test_sewa(tmp_path):
    _touch(tmp_path, "labels/Train_01.csv", "Train_01;0.0;0.1;0.2;0.3\nTrain_01;0.1;0.4;0.5;0.6\n")
    _touch(tmp_path, "labels/Devel_02.csv")
    _touch(tmp_path, "video/Train_01.avi")
    _touch(tmp_path, "video/Devel_02.mp4")
    _touch(tmp_path, "features/Train_01.csv")  # not in a labels folder: ignored
    items = layouts.find_items("sewa", tmp_path)
    assert [(it.split, it.video_id) for it in items] == [("dev", "sewa/Devel_02"),
                                                         ("train", "sewa/Train_01")]
    assert items[1].video_path.endswith("video/Train_01.avi")
    np.testing.assert_allclose(layouts.read_labels(items[1]).arousal, [0.1, 0.4])


def test_generic_csv(tmp_path):
    _touch(tmp_path, "train/a.mp4")
    _touch(tmp_path, "train/a.csv")
    _touch(tmp_path, "val/b.MOV")
    _touch(tmp_path, "val/b.csv")
    _touch(tmp_path, "misc/c.mp4")
    items = layouts.find_items("csv", tmp_path)
    assert [(it.split, it.video_id, bool(it.label_paths)) for it in items] == [
        ("all", "csv/misc/c", False), ("dev", "csv/val/b", True), ("train", "csv/train/a", True)]


def test_generic_csv_header_written_as_a_comment_by_numpy_savetxt(tmp_path):
    _touch(tmp_path, "train/clip.mp4")
    data = np.array([[0.0, 0.1, -0.2], [0.5, 0.3, -0.4]])  # timestamp, arousal, valence
    (tmp_path / "train").mkdir(exist_ok=True)
    np.savetxt(tmp_path / "train/clip.csv", data, header="timestamp,arousal,valence",
               delimiter=",")
    assert (tmp_path / "train/clip.csv").read_text().startswith("# timestamp,arousal,valence\n")
    items = layouts.find_items("csv", tmp_path)
    assert [(it.split, it.video_id, it.label_paths) for it in items] == [
        ("train", "csv/train/clip", {"va": str(tmp_path / "train/clip.csv")})]
    track = layouts.read_labels(items[0])
    assert not track.frame_indexed
    np.testing.assert_allclose(track.times_s, [0.0, 0.5])
    np.testing.assert_allclose(track.arousal, [0.1, 0.3])
    np.testing.assert_allclose(track.valence, [-0.2, -0.4])


def test_user_errors(tmp_path):
    with pytest.raises(errors.UserError, match="does not exist"):
        layouts.find_items("csv", tmp_path / "nope")
    with pytest.raises(errors.UserError, match="--dataset: expected one of"):
        layouts.find_items("semaine", tmp_path)
    with pytest.raises(errors.UserError, match="found no sewa videos"):
        layouts.find_items("sewa", tmp_path)
    _touch(tmp_path, "train/a.mp4")
    with pytest.raises(errors.UserError, match="--splits: expected"):
        layouts.find_items("csv", tmp_path, splits=["holdout"])
    with pytest.raises(errors.UserError, match="in splits test"):
        layouts.find_items("csv", tmp_path, splits=["test"])
