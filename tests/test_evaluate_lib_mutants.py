"""Direct, fast tests of `ast_net.evaluate_lib` (the mutation target `evaluate_lib`): what it
draws and writes per video (`video_figure`, `plot_video_png`, `_write_predictions`), and how
`evaluate_workdir` resolves the workdir, its output folder, `merge_phases` and the config's
feature scale and label range, on real TFRecords with a per-frame fake net. Expected CCs come
from scipy; expected predictions and CSV text are worked out by hand."""

import csv

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib import pyplot as plt
from scipy import stats

from ast_net import evaluate_lib
from ast_net.data.records import Video

matplotlib.use("Agg")


def _video(video_id="clip/A", constant_valence=False):
    t = np.arange(8) / 4.0  # 4 fps
    labels = np.array([[0.1, -0.3], [0.4, 0.2], [-0.2, 0.5], [0.3, -0.1],
                       [0.0, 0.0], [0.6, 0.3], [-0.5, -0.4], [0.2, 0.1]], np.float32)
    if constant_valence:
        labels[:, 0] = 0.25
    mask = np.array([1, 1, 1, 1, 0, 1, 1, 0], np.float32)  # frames 4 and 7 do not count
    preds = np.array([[0.2, 0.1], [0.3, 0.0], [-0.1, 0.6], [0.1, 0.2],
                      [0.9, -0.9], [0.4, -0.2], [-0.3, 0.1], [-0.9, 0.9]], np.float32)
    return Video(video_id=video_id, fps=4.0, features=np.zeros((8, 3), np.float32),
                 labels=labels, mask=mask, timestamp=t), preds


@pytest.fixture
def figure():
    video, preds = _video()
    fig = evaluate_lib.video_figure(video, preds)
    yield fig, video, preds
    plt.close(fig)


def test_figure_draws_truth_with_gaps_and_the_right_prediction_column(figure):
    fig, video, preds = figure
    axes = fig.get_axes()
    assert len(axes) == 2
    gap = np.array([0, 0, 0, 0, 1, 0, 0, 1], bool)
    for d, (ax, name) in enumerate(zip(axes, ["valence", "arousal"])):
        assert ax.get_ylabel() == name
        truth, pred = ax.get_lines()
        assert truth.get_label() == "ground truth" and pred.get_label() == "AST-Net"
        np.testing.assert_array_equal(truth.get_xdata(), [0, .25, .5, .75, 1, 1.25, 1.5, 1.75])
        np.testing.assert_array_equal(pred.get_xdata(), truth.get_xdata())
        y = np.asarray(truth.get_ydata(), float)
        np.testing.assert_array_equal(np.isnan(y), gap)
        np.testing.assert_allclose(y[~gap], video.labels[~gap, d])
        np.testing.assert_allclose(pred.get_ydata(), preds[:, d])  # all frames, gaps too
        assert truth.get_color() == "black" and pred.get_color() == "tab:red"
        assert truth.get_linewidth() > pred.get_linewidth()  # the truth drawn heavier
        grid = ax.yaxis.get_gridlines()[0]
        assert grid.get_visible() and grid.get_alpha() == pytest.approx(0.3)
    assert axes[0].get_shared_x_axes().joined(axes[0], axes[1])
    assert axes[1].get_xlabel() == "time (s)" and axes[0].get_xlabel() == ""
    legend = axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["ground truth", "AST-Net"]
    assert axes[1].get_legend() is None


def test_title_gives_each_dimensions_cc_over_counted_frames(figure):
    fig, video, preds = figure
    keep = video.mask > 0
    cv = stats.pearsonr(video.labels[keep, 0], preds[keep, 0])[0]
    ca = stats.pearsonr(video.labels[keep, 1], preds[keep, 1])[0]
    assert fig.get_axes()[0].get_title() == f"clip/A: valence CC {cv:.3f}, arousal CC {ca:.3f}"
    assert fig.get_axes()[1].get_title() == ""
    # The masked frames 4 and 7 would change both CCs if they were counted.
    cv_all = stats.pearsonr(video.labels[:, 0], preds[:, 0])[0]
    assert f"{cv_all:.3f}" != f"{cv:.3f}"


def test_title_says_undefined_for_constant_labels():
    video, preds = _video(constant_valence=True)
    fig = evaluate_lib.video_figure(video, preds)
    keep = video.mask > 0
    ca = stats.pearsonr(video.labels[keep, 1], preds[keep, 1])[0]
    assert fig.get_axes()[0].get_title() == (
        f"clip/A: valence CC undefined, arousal CC {ca:.3f}")
    plt.close(fig)


def test_figure_size_and_tight_layout(figure):
    fig, _, _ = figure
    assert tuple(fig.get_size_inches()) == (9, 4.5)
    # tight_layout: the axes span most of the width (matplotlib's default margins leave 77.5%)
    # and every label and the title stay inside the figure.
    for ax in fig.get_axes():
        assert ax.get_position().width > 0.85
    renderer = fig.canvas.get_renderer()
    box = fig.get_tightbbox(renderer)
    assert box.x0 >= 0 and box.y0 >= 0
    assert box.x1 <= 9 + 1e-6 and box.y1 <= 4.5 + 1e-6


def test_png_is_the_figure_at_90_dpi_and_closes_it():
    video, preds = _video()
    before = plt.get_fignums()
    png = evaluate_lib.plot_video_png(video, preds)
    assert plt.get_fignums() == before
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import cv2
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (405, 810, 3)  # 9 x 4.5 in at 90 dpi
    b, g, r = (img[..., k].astype(int) for k in range(3))
    assert ((r > 180) & (g < 80) & (b < 80)).sum() > 200  # tab:red prediction lines
    assert ((r < 40) & (g < 40) & (b < 40)).sum() > 200   # black truth lines and text


def test_prediction_csv_text(tmp_path):
    video, preds = _video()
    preds = preds.copy()
    preds[0, 0] = 0.123456  # rounds to 5 decimals
    evaluate_lib._write_predictions(str(tmp_path), video, preds)
    assert [p.name for p in tmp_path.iterdir()] == ["clip_A.csv"]  # "/" cannot be a name
    with open(tmp_path / "clip_A.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["frame", "timestamp_s", "valence", "arousal", "valence_true",
                       "arousal_true"]
    assert len(rows) == 9
    assert rows[1] == ["0", "0.00000", "0.12346", "0.10000", "0.10000", "-0.30000"]
    assert rows[5] == ["4", "1.00000", "0.90000", "-0.90000", "", ""]  # masked: no truth
    assert rows[8] == ["7", "1.75000", "-0.90000", "0.90000", "", ""]
    assert rows[6] == ["5", "1.25000", "0.40000", "-0.20000", "0.60000", "0.30000"]


# --- evaluate_workdir / evaluate_model / predict_videos on real TFRecords, with a fake net ---

def _record_videos():
    """Two 6-frame videos; feature 0 alternates 0.1 / 0.3, feature 1 is 0.8, so with
    feature_scale 2 a per-frame net gives 0.2 / 0.6 (valence) and 1.6 (arousal)."""
    rng = np.random.default_rng(3)
    out = []
    for vid in ("v0", "v1"):
        feats = np.zeros((6, 4), np.float32)
        feats[:, 0] = [0.1, 0.3] * 3
        feats[:, 1] = 0.8
        out.append({"id": vid, "features": feats,
                    "labels": rng.uniform(-0.5, 0.5, (6, 2)).astype(np.float32)})
    return out


@pytest.fixture
def workdir_run(fake_checkpoint, tmp_path, monkeypatch):
    """evaluate_workdir's inputs: a recording fake checkpoint (`fake_checkpoint`) whose
    config scales features by 2, merges phases and clips to [-1, 1]; HOME is `tmp_path`."""
    config, calls = fake_checkpoint(_record_videos())
    config.data.feature_scale = 2.0
    config.output.merge_phases, config.output.label_range = True, (-1.0, 1.0)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path, config, calls


def _predictions(out_dir, vid):
    return pd.read_csv(out_dir / "test_predictions" / f"{vid}.csv")


def test_evaluate_workdir_resolves_the_workdir_and_writes_under_its_eval_dir(workdir_run):
    tmp_path, config, calls = workdir_run
    wd = tmp_path / "wd"
    (wd / "eval" / "test_predictions").mkdir(parents=True)  # a re-run: the folders exist
    per_video, summary, csv_path = evaluate_lib.evaluate_workdir("~/wd", "test", step="best")
    assert calls["load"] == (str(wd), "best")
    assert calls["check"] == (str(wd), config, 4)
    assert csv_path == str(wd / "eval" / "test_per_video.csv")
    names = sorted(p.name for p in (wd / "eval").iterdir())
    assert names == ["test_first_video.png", "test_per_video.csv", "test_predictions",
                     "test_summary.csv"]
    assert sorted(p.name for p in (wd / "eval" / "test_predictions").iterdir()) == [
        "v0.csv", "v1.csv"]
    assert sorted(per_video["video"].unique()) == ["v0", "v1"]
    assert list(summary.index) == ["valence", "arousal"]


def test_predictions_are_scaled_merged_over_dt_and_clipped(workdir_run):
    tmp_path, _, _ = workdir_run
    evaluate_lib.evaluate_workdir(str(tmp_path / "wd"), "test", out_dir=str(tmp_path / "o"))
    for vid in ("v0", "v1"):
        f = _predictions(tmp_path / "o", vid)
        # Per frame 2 x (0.1, 0.3, ...) = 0.2, 0.6, ...; the causal mean over Δt = 2 frames
        # gives 0.2 on frame 0 (one frame so far), then 0.4.
        np.testing.assert_allclose(f["valence"], [0.2, 0.4, 0.4, 0.4, 0.4, 0.4], atol=1e-5)
        np.testing.assert_allclose(f["arousal"], [1.0] * 6)  # 2 x 0.8 = 1.6, clipped to 1


def test_merge_phases_override_keeps_the_other_output_options(workdir_run):
    tmp_path, config, calls = workdir_run
    evaluate_lib.evaluate_workdir(str(tmp_path / "wd"), "test", out_dir=str(tmp_path / "o"),
                                  merge_phases=False)
    assert dict(calls["check"][1].output) == {"merge_phases": False,
                                              "label_range": (-1.0, 1.0)}
    f = _predictions(tmp_path / "o", "v0")
    np.testing.assert_allclose(f["valence"], [0.2, 0.6] * 3, atol=1e-5)
    np.testing.assert_allclose(f["arousal"], [1.0] * 6)  # still clipped


def test_no_override_keeps_the_workdirs_merge_setting(workdir_run):
    tmp_path, config, calls = workdir_run
    config.output.merge_phases = False  # as trained
    evaluate_lib.evaluate_workdir(str(tmp_path / "wd"), "test", out_dir=str(tmp_path / "o"))
    assert calls["check"][1].output.merge_phases is False
    np.testing.assert_allclose(_predictions(tmp_path / "o", "v1")["valence"], [0.2, 0.6] * 3,
                               atol=1e-5)


def test_no_label_range_means_no_clipping(workdir_run):
    tmp_path, config, _ = workdir_run
    config.output.label_range = None
    evaluate_lib.evaluate_workdir(str(tmp_path / "wd"), "test", out_dir=str(tmp_path / "o"))
    np.testing.assert_allclose(_predictions(tmp_path / "o", "v0")["arousal"], [1.6] * 6,
                               atol=1e-5)


def test_table_csvs_have_four_decimals(workdir_run):
    import re

    tmp_path, _, _ = workdir_run
    evaluate_lib.evaluate_workdir(str(tmp_path / "wd"), "test", out_dir=str(tmp_path / "o"))
    for name in ("test_per_video.csv", "test_summary.csv"):
        text = (tmp_path / "o" / name).read_text()
        numbers = re.findall(r"-?\d+\.\d+", text)
        assert numbers and all(re.fullmatch(r"-?\d+\.\d{4}", n) for n in numbers), name
    header = (tmp_path / "o" / "test_per_video.csv").read_text().splitlines()[0]
    assert header.startswith("video,")  # no index column


def test_evaluate_model_keeps_only_the_first_videos_for_plots(workdir_run):
    tmp_path, config, _ = workdir_run
    from ast_net.data import records

    files = records.list_files(config.data.data_dir, "test")
    temporal = lambda x, training=False: x[..., :2]  # noqa: E731
    _, _, kept = evaluate_lib.evaluate_model(temporal, files, 4, config)
    assert [v.video_id for v, _ in kept] == ["v0"]
    _, _, kept = evaluate_lib.evaluate_model(temporal, files, 4, config, plot_videos=2)
    assert [v.video_id for v, _ in kept] == ["v0", "v1"]


def test_merge_phases_override_true_merges_a_workdir_trained_without(workdir_run):
    tmp_path, config, calls = workdir_run
    config.output.merge_phases = False
    evaluate_lib.evaluate_workdir(str(tmp_path / "wd"), "test", out_dir=str(tmp_path / "o"),
                                  merge_phases=True)
    assert calls["check"][1].output.merge_phases is True
    np.testing.assert_allclose(_predictions(tmp_path / "o", "v0")["valence"],
                               [0.2, 0.4, 0.4, 0.4, 0.4, 0.4], atol=1e-5)


def test_predict_fn_leaves_features_unscaled_by_default():
    x = np.arange(12, dtype=np.float32).reshape(1, 4, 3)
    fn = evaluate_lib.make_predict_fn(lambda t, training=False: t[..., :2], 3)
    np.testing.assert_array_equal(fn(x), x[..., :2])
