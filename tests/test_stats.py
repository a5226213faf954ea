import json

import numpy as np
import pandas as pd
import pytest

from albsent.cli import main
from albsent.report.stats import band, mean_pairwise_distance


def test_bands_follow_the_paper():
    assert [band(d) for d in (0, 99.9, 100, 279.9, 280, 1e6)] == [
        "similar", "similar", "some_similarities", "some_similarities", "heterogeneous", "heterogeneous"]


def test_mean_pairwise_distance_by_hand():
    v = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 8.0]])
    assert mean_pairwise_distance(v) == pytest.approx((5 + 8 + 5) / 3)


@pytest.mark.ray
@pytest.mark.slow
def test_stats_from_a_manifest_writes_tables_and_figures(corpus, ray_local, tmp_path, capsys):
    assert main(["-q", "stats", str(corpus), "--out", str(tmp_path / "st"), "--set", "audio.segment_s=0.5"]) == 0
    out = capsys.readouterr().out
    assert "Durations per class (Table 1)" in out and "Segment heterogeneity (Table 2)" in out
    stats = json.loads((tmp_path / "st" / "stats.json").read_text())
    durations = {r["label"]: r for r in stats["durations"]}
    manifest = pd.read_csv(corpus)
    assert {k: v["files"] for k, v in durations.items() if k != "all"} == manifest["label"].value_counts().to_dict()
    assert durations["all"]["max_s"] >= durations["all"]["median_s"] >= durations["all"]["min_s"] > 0.5
    counts = stats["heterogeneity"]["counts"]
    assert sum(sum(c.values()) for c in counts.values()) == stats["heterogeneity"]["segmented_utterances"] == 24
    assert set(stats["figures"]) == {"zcr_flatness.png", "zcr_profile.png"}
    for fig in stats["figures"]:
        assert (tmp_path / "st" / fig).stat().st_size > 10_000
