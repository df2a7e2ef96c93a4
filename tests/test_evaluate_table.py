"""`ast-net-evaluate`'s files and table (ast_net.evaluate_lib on ast_net.metrics), checked against
scipy / numpy on the per-frame predictions it writes; videos with an undefined CC are named."""

import glob
import math
import os

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ast_net import evaluate_lib, metrics


def _videos():
    """Four videos whose first two features are what the fake model predicts."""
    rng = np.random.default_rng(5)
    out = []
    for k, t in enumerate([90, 70, 80, 60]):
        labels = rng.uniform(-0.8, 0.8, size=(t, 2)).astype(np.float32)
        preds = (0.6 * labels + rng.normal(0, 0.2, size=(t, 2))).astype(np.float32)
        out.append({"id": f"test{k:03d}", "labels": labels,
                    "features": np.concatenate([preds, np.zeros((t, 2), np.float32)], 1)})
    out[1]["labels"][:, 0] = 0.25  # constant valence labels -> no valence CC
    out[2]["mask"] = np.zeros(80, int)
    out[2]["mask"][7] = 1  # one labelled frame -> no CC at all
    out[3]["face"] = np.ones(60, int)
    out[3]["face"][:20] = 0  # frames without a face do not count
    return out


@pytest.fixture
def evaluated(fake_checkpoint, tmp_path):
    fake_checkpoint(_videos())  # prediction = features[..., :2], N = 4, Δt = 2
    per_video, summary, csv_path = evaluate_lib.evaluate_workdir(
        str(tmp_path / "wd"), "test", out_dir=str(tmp_path / "eval"))
    return tmp_path / "eval", per_video, summary, csv_path


def test_csvs_and_table_match_scipy_on_written_predictions(evaluated):
    out, per_video, summary, csv_path = evaluated
    frames = {os.path.basename(p)[:-4]: pd.read_csv(p)
              for p in glob.glob(str(out / "test_predictions" / "*.csv"))}
    assert sorted(frames) == ["test000", "test001", "test002", "test003"]
    rows = pd.read_csv(csv_path, keep_default_na=False, na_values=[""])
    assert list(rows.columns) == list(metrics.PER_VIDEO_COLUMNS)
    assert len(rows) == 4 * 2
    rows = rows.set_index(["video", "dimension"])
    pooled = {"valence": ([], []), "arousal": ([], [])}
    for vid, f in frames.items():
        for dim in ("valence", "arousal"):
            ok = f[f"{dim}_true"].notna().to_numpy()  # written as NaN where not counted
            g, y = f[f"{dim}_true"].to_numpy()[ok], f[dim].to_numpy()[ok]
            pooled[dim][0].append(g)
            pooled[dim][1].append(y)
            r = rows.loc[(vid, dim)]
            assert r["frames"] == ok.sum()
            assert r["RMSE"] == pytest.approx(np.sqrt(np.mean((g - y) ** 2)), abs=1e-4)
            if ok.sum() >= 2 and np.ptp(g) > 0:
                assert r["CC"] == pytest.approx(stats.pearsonr(g, y)[0], abs=1e-4)
                assert r["CC undefined"] == "" or pd.isna(r["CC undefined"])
            else:
                assert math.isnan(r["CC"])
    assert rows.loc[("test003", "valence"), "frames"] == 40
    assert rows.loc[("test001", "valence"), "CC undefined"] == "constant labels"
    assert rows.loc[("test002", "arousal"), "CC undefined"] == "1 labelled frame"

    written = pd.read_csv(out / "test_summary.csv", index_col="dimension")
    assert list(written.columns) == list(metrics.SUMMARY_COLUMNS)
    for dim in ("valence", "arousal"):
        g, y = np.concatenate(pooled[dim][0]), np.concatenate(pooled[dim][1])
        c = np.cov(g, y, bias=True)
        ccc = 2 * c[0, 1] / (c[0, 0] + c[1, 1] + (g.mean() - y.mean()) ** 2)
        for table in (summary, written):
            assert table.loc[dim, "Pooled CCC"] == pytest.approx(ccc, abs=1e-4)
            assert table.loc[dim, "RMSE"] == pytest.approx(
                np.sqrt(np.mean((g - y) ** 2)), abs=1e-4)
            assert table.loc[dim, "frames"] == len(g) == 90 + 70 + 1 + 40
        cc = rows.xs(dim, level="dimension")["CC"].dropna()
        assert summary.loc[dim, "Mean CC"] == pytest.approx(cc.mean(), abs=1e-4)
        assert summary.loc[dim, "Max CC"] == pytest.approx(cc.max(), abs=1e-4)
        assert summary.loc[dim, "Min CC"] == pytest.approx(cc.min(), abs=1e-4)
    assert written.loc["valence", "CC undefined"] == 2
    assert written.loc["valence", "CC undefined videos"] == (
        "test001 (constant labels); test002 (1 labelled frame)")
    assert written.loc["arousal", "CC undefined videos"] == "test002 (1 labelled frame)"

    table = evaluate_lib.format_table(summary, title="AST-Net on split 'test'")
    assert ("valence: CC undefined for 2 videos: test001 (constant labels); test002 "
            "(1 labelled frame)" in table)
    assert "arousal: CC undefined for 1 video: test002 (1 labelled frame)" in table
    # Every file written atomically: no temporary file is left beside them.
    assert (out / "test_first_video.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in glob.glob(str(out / "**" / ".*"), recursive=True)]
