"""Bad inputs never stop the job: each one is quarantined with its reason, every valid file is
stored, and every input is accounted for exactly once."""

import json

import pandas as pd
import pytest

from albsent.cli import main
from albsent.features.config import ExtractConfig
from albsent.pipeline.extract import extract
from albsent.store import Store
from albsent.testing.broken import make_broken_files
from albsent.testing.synth import make_corpus

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def mixed_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    good = pd.read_csv(make_corpus(root, n_per_class=1, speakers=2, seed=3))
    expected = make_broken_files(root / "bad")
    bad = pd.DataFrame({"path": [f"bad/{n}" for n in expected], "label": "negative", "speaker": "x"})
    manifest = root / "all.csv"
    pd.concat([good, bad]).sample(frac=1, random_state=0).to_csv(manifest, index=False)
    return manifest, len(good), {f"bad/{k}": v for k, v in expected.items()}


@pytest.mark.slow
def test_every_broken_kind_is_quarantined_with_its_reason(mixed_corpus, ray_local, tmp_path, capsys):
    manifest, n_good, expected = mixed_corpus
    assert len(set(expected.values())) >= 10
    cfg = ExtractConfig(batch_size=4)
    summary = extract(str(manifest), str(tmp_path / "s"), cfg, progress=False)
    assert summary.stored == n_good and summary.quarantined == len(expected)

    store = Store(str(tmp_path / "s"))
    q = store.quarantine()
    assert dict(zip(q["key"], q["reason"])) == expected
    assert all(key.split("/")[-1] in err for key, err in zip(q["key"], q["error"]))  # the message names the file
    stored = pd.read_parquet(tmp_path / "s", columns=["key"])["key"]
    inputs = set(pd.read_csv(manifest)["path"])
    assert set(stored) | set(q["key"]) == inputs and len(stored) + len(q) == len(inputs)

    assert main(["inspect", str(tmp_path / "s"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["rows"] == n_good and isinstance(info["rows"], int)
    assert {q["reason"] for q in info["quarantined"]} == set(expected.values())
    assert info["features"]["mfcc_mean"] == [120] and info["features"]["shortterm"] == [None, 24]
    assert info["metadata"]["config_hash"] == cfg.config_hash()

    again = extract(str(manifest), str(tmp_path / "s"), cfg, progress=False)  # quarantined inputs are not retried
    assert (again.stored, again.quarantined, again.skipped) == (0, 0, len(inputs))
