"""`albsent extract --dry-run`: planned clips, hours, store size per column and a measured
time estimate, printed before anything runs (no store is written, no Ray is started)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf


@pytest.fixture(scope="module")
def hubert(tmp_path_factory):
    from albsent.testing.tiny_ssl import save_model

    return str(save_model(tmp_path_factory.mktemp("ssl") / "hubert", "hubert", "group", do_normalize=True))


def test_plan_counts_sizes_and_time(corpus, hubert):
    import pandas as pd

    from albsent.features.config import ExtractConfig
    from albsent.features.ssl import SslConfig
    from albsent.pipeline.plan import format_plan, plan

    config = ExtractConfig(features=["mfcc", "ssl"], ssl=SslConfig(models=[hubert], std=True, sequence_layers=[2]))
    p = plan(str(corpus), config, sample_s=3.0)
    paths = [str(corpus.parent / q) for q in pd.read_csv(corpus)["path"]]
    infos = [sf.info(q) for q in paths]
    assert (p["inputs"], p["probed"], p["rows"]) == (24, 24, 24)
    assert p["audio_h"] == pytest.approx(sum(i.duration for i in infos) / 3600)
    frames = sum(1 + (i.frames - 400) // 320 for i in infos)  # 16 kHz files: samples = frames
    cols = p["columns"]
    assert cols["ssl_hubert_mean"] == cols["ssl_hubert_std"] == 24 * 3 * 32 * 4  # (layers, hidden) float32
    assert cols["ssl_hubert_l2"] == frames * 32 * 2  # (frames, hidden) float16
    assert p["ssl_all_layer_frames_bytes"]["hubert"] == frames * 3 * 32 * 2
    assert cols["mfcc"] == sum(1 + i.frames // 160 for i in infos) * 120 * 2
    s = p["sample"]
    assert s["clips"] >= 2 and s["audio_s"] >= 3.0 and s["extract_s"]["ssl"] > 0 and "ssl" in s["load_s"]
    assert np.isfinite(p["estimate_s"]) and p["estimate_s"] > 0 and p["workers"] == (config.num_actors or 1)
    text = format_plan(p)
    assert "24 clips" in text and "ssl_hubert_l2" in text and "frame sequences of all layers" in text and "time" in text


def test_cli_dry_run_writes_nothing(corpus, hubert, tmp_path, capsys):
    from albsent.cli import main

    out = tmp_path / "store"
    assert main(["extract", str(corpus), "--out", str(out), "--features", "mfcc", "--ssl-model", hubert,
                 "--dry-run", "--json"]) == 0
    p = json.loads(capsys.readouterr().out)
    assert p["features"] == ["mfcc", "ssl"] and p["inputs"] == 24 and "ssl_hubert_mean" in p["columns"]
    assert not out.exists()
    assert main(["extract", str(corpus), "--out", str(out), "--ssl-model", str(tmp_path / "missing"), "--dry-run"]) == 2
    assert "no such directory" in capsys.readouterr().err
