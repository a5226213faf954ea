"""Audio in an object store (issue 19): a manifest and a folder given as s3:// URIs, read in
the workers, against a real S3-compatible server started here (moto's ThreadedMotoServer);
the store in another bucket; train from it and predict on an s3:// URI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest

from albsent.audio.manifest import plan_inputs
from albsent.cli import main
from albsent.errors import InputError
from albsent.store import Store
from albsent.testing.synth import make_corpus

moto_server = pytest.importorskip("moto.server")
pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A local S3 server with bucket `corpus` (a 12-clip corpus under emo/ plus its manifest,
    which also lists one missing object) and an empty bucket `stores`; AWS_* point at it."""
    import boto3

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    client = boto3.client("s3")
    for bucket in ("corpus", "stores"):
        client.create_bucket(Bucket=bucket)
    manifest = make_corpus(tmp_path_factory.mktemp("s3corpus"), n_per_class=2, speakers=2, seed=2)
    m = pd.read_csv(manifest)
    for rel in m["path"]:
        client.upload_file(str(manifest.parent / rel), "corpus", f"emo/{rel}")
    m = pd.concat([m, pd.DataFrame([{"path": "wav/gone.wav", "label": "neutral", "speaker": "s0"}])])
    client.put_object(Bucket="corpus", Key="emo/manifest.csv", Body=m.to_csv(index=False).encode())
    yield env
    server.stop()
    for k, v in old.items():
        os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def test_manifest_and_folder_uris_are_planned_with_sizes_and_one_line_errors(s3):
    items = plan_inputs("s3://corpus/emo/manifest.csv")
    assert len(items) == 13 and items["path"].str.startswith("s3://corpus/emo/wav/").all()
    assert items["key"].iloc[0].startswith("wav/") and items["source_bytes"].iloc[:12].gt(1000).all()
    assert items["source_bytes"].iloc[12] is pd.NA  # the missing object: quarantined by the worker
    folder = plan_inputs("s3://corpus/emo/wav/")
    assert len(folder) == 12 and set(folder["utterance_id"]) == set(items["utterance_id"].iloc[:12])
    with pytest.raises(InputError, match="s3://nobucket/m.csv: cannot reach it.*bucket"):
        plan_inputs("s3://nobucket/m.csv")
    with pytest.raises(InputError, match="no such manifest CSV or audio folder"):
        plan_inputs("s3://corpus/nothing-here.csv")


def test_unreachable_endpoint_is_one_line_not_a_hang(s3, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    t = time.perf_counter()
    with pytest.raises(InputError, match="s3://elsewhere/m.csv: cannot reach it"):
        plan_inputs("s3://elsewhere/m.csv")
    assert time.perf_counter() - t < 60


@pytest.mark.slow
def test_bucket_to_bucket_extract_then_train_and_predict_on_a_uri(s3, tmp_path, capsys):
    """`albsent extract` in its own process (its own local Ray cluster inherits AWS_*), then
    train and predict here."""
    out = "s3://stores/emo"
    proc = subprocess.run([sys.executable, "-m", "albsent.cli", "-q", "extract", "s3://corpus/emo/manifest.csv",
                           "--out", out, "--set", "features=[mfcc]", "--set", "batch_size=4", "--json"],
                          capture_output=True, text=True, timeout=600, env={**os.environ, **s3})
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (summary["stored"], summary["quarantined"], summary["reasons"]) == (12, 1, {"missing_file": 1})
    store = Store(out)
    assert store.num_rows() == 12 and store.quarantine()["path"].tolist() == ["s3://corpus/emo/wav/gone.wav"]
    assert main(["verify", out, "--manifest", "s3://corpus/emo/manifest.csv"]) == 0

    run = tmp_path / "run"
    assert main(["-q", "train", "--store", out, "--out", str(run), "--model", "logreg", "--split", "utterance"]) == 0
    capsys.readouterr()
    uri = "s3://corpus/emo/wav/s0_positive_0.wav"
    assert main(["predict", str(run), uri, "s3://corpus/emo/wav/gone.wav", "--json"]) == 1  # one missing object
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines[0]["path"] == uri and lines[0]["label"] in {"positive", "neutral", "negative"}
    assert "gone.wav" in lines[1]["error"]
