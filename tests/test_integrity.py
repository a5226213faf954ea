"""Store identity and integrity (issue 18): a row is its resolved path plus its bytes; reruns
re-extract changed audio, relabel changed labels and retry fixed quarantined files; a store's
parts are checked against its metadata by `albsent verify`, whose --repair plus `extract`
restore an identical store. Each test failed on the code before."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from albsent.cli import main
from albsent.config import build
from albsent.errors import InputError, StoreError
from albsent.features.config import ExtractConfig
from albsent.pipeline.extract import extract
from albsent.store import Store
from albsent.testing.synth import make_corpus

pytestmark = pytest.mark.ray
CFG = ExtractConfig(features=["mfcc"], batch_size=4)


def rows(store) -> pd.DataFrame:
    """Every stored value, sorted by id (independent of how rows fall into parts)."""
    t = Store(str(store)).read().to_pandas().sort_values("id").reset_index(drop=True)
    return t.map(lambda v: v.tolist() if isinstance(v, np.ndarray) else v)


@pytest.fixture
def small(tmp_path):
    """A 12-clip corpus in its own folder (tests modify it)."""
    return make_corpus(tmp_path / "a", n_per_class=2, speakers=2, seed=0)


@pytest.fixture(scope="module")
def small_built(ray_local, tmp_path_factory):
    """`small` (read-only here) and its store, extracted once for the tests that damage only the store."""
    root = tmp_path_factory.mktemp("built")
    manifest = make_corpus(root / "a", n_per_class=2, speakers=2, seed=0)
    extract(str(manifest), str(root / "store"), CFG, progress=False)
    return manifest, root / "store"


@pytest.fixture
def small_stored(small_built, tmp_path):
    """(manifest of `small`, a fresh copy of its store at tmp_path/store): the test's own to damage."""
    manifest, store = small_built
    shutil.copytree(store, tmp_path / "store")
    return manifest, tmp_path / "store"


@pytest.mark.slow
def test_second_corpus_with_the_same_relative_names_is_stored(small, ray_local, tmp_path):
    other = make_corpus(tmp_path / "b", n_per_class=2, speakers=2, seed=1)
    assert pd.read_csv(small)["path"].tolist() == pd.read_csv(other)["path"].tolist()  # colliding names
    out = str(tmp_path / "store")
    assert extract(str(small), out, CFG, progress=False).stored == 12
    second = extract(str(other), out, CFG, progress=False)
    assert (second.stored, second.skipped) == (12, 0)
    t = Store(out).read(["id", "key", "path"]).to_pandas()
    assert len(t) == 24 and t["id"].is_unique and t["key"].nunique() == 12 and t["path"].nunique() == 24


@pytest.mark.slow
def test_changed_label_is_relabelled_and_changed_audio_re_extracted(small, ray_local, tmp_path, capsys):
    out = str(tmp_path / "store")
    extract(str(small), out, CFG, progress=False)
    parts = sorted(p.name for p in Path(out).glob("part-*.parquet"))
    m = pd.read_csv(small)
    m.loc[0, "label"], m.loc[0, "speaker"] = "negative", "s9"
    m.to_csv(small, index=False)
    assert main(["-q", "extract", str(small), "--out", out, "--set", "features=[mfcc]", "--set", "batch_size=4"]) == 0
    assert "12 already done, 1 of them relabelled" in capsys.readouterr().out
    t = Store(out).read(["path", "label", "speaker"]).to_pandas().set_index("path")
    first = str((small.parent / m.loc[0, "path"]).resolve())
    assert tuple(t.loc[first]) == ("negative", "s9") and len(t) == 12
    assert sorted(p.name for p in Path(out).glob("part-*.parquet")) == parts  # rewritten in place, no new part

    # new bytes at the same path: the old rows go, the new audio is extracted
    target = small.parent / m.loc[1, "path"]
    sf.write(target, np.random.default_rng(5).normal(0, 0.1, 24000).astype(np.float32), 16000)
    before = rows(out)
    s = extract(str(small), out, CFG, progress=False)
    assert (s.changed, s.stored, s.skipped) == (1, 1, 11)
    after = rows(out)
    assert len(after) == 12 and after["id"].is_unique
    import hashlib

    row = after[after["path"] == str(target.resolve())].iloc[0]
    assert row["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest() and row["duration_s"] == 1.5
    assert (before["mfcc_mean"] != after["mfcc_mean"]).sum() == 1  # only that input's values changed
    # a touched but identical file is not re-extracted (its sha256 is the same)
    target.write_bytes(target.read_bytes())
    again = extract(str(small), out, CFG, progress=False)
    assert (again.changed, again.stored, again.skipped) == (0, 0, 12)


@pytest.mark.slow
def test_quarantined_file_is_retried_when_it_changed_or_when_asked(small, ray_local, tmp_path):
    m = pd.read_csv(small)
    bad = small.parent / "wav" / "late.wav"
    bad.write_bytes(b"not audio yet")
    pd.concat([m, pd.DataFrame([{"path": "wav/late.wav", "label": "neutral", "speaker": "s0"}])]).to_csv(small,
                                                                                                     index=False)
    out = str(tmp_path / "store")
    assert extract(str(small), out, CFG, progress=False).quarantined == 1
    asked = extract(str(small), out, CFG, progress=False, retry_quarantined=True)
    assert (asked.retried, asked.quarantined) == (1, 1) and len(Store(out).quarantine()) == 1
    assert extract(str(small), out, CFG, progress=False).retried == 0  # unchanged: stays quarantined
    shutil.copy(small.parent / m.loc[0, "path"], bad)  # fixed
    fixed = extract(str(small), out, CFG, progress=False)
    assert (fixed.retried, fixed.stored, fixed.quarantined) == (1, 1, 0)
    assert Store(out).quarantine().empty and Store(out).num_rows() == 13


@pytest.mark.slow
def test_lost_metadata_is_rebuilt_from_the_parts_never_from_a_new_config(small_stored, ray_local, tmp_path, caplog):
    small, out = small_stored  # = extract(str(small), str(tmp_path / "store"), CFG), copied
    meta = json.loads((out / "_albsent.json").read_text())
    (out / "_albsent.json").unlink()
    other = build(ExtractConfig, {"features": ["mfcc"], "mfcc": {"n_mfcc": 20}})
    with pytest.raises(StoreError, match="different config.*n_mfcc"):
        extract(str(small), str(out), other, progress=False)
    assert json.loads((out / "_albsent.json").read_text()) == meta and "rebuilt" in caplog.text
    assert extract(str(small), str(out), CFG, progress=False).skipped == 12


def corrupt(part: Path) -> None:
    """Flip 40 bytes in the middle of a part: inside a data page, the footer intact."""
    b = bytearray(part.read_bytes())
    for i in range(len(b) // 3, len(b) // 3 + 40):
        b[i] ^= 0xFF
    part.write_bytes(bytes(b))


@pytest.mark.slow
def test_corrupted_part_then_verify_repair_and_extract_restore_an_identical_store(small_stored, ray_local, tmp_path,
                                                                                  capsys):
    small, out = small_stored  # = extract(str(small), str(tmp_path / "store"), CFG), copied
    original = rows(out)
    assert main(["verify", str(out), "--manifest", str(small)]) == 0
    part = sorted(out.glob("part-*.parquet"))[1]
    lost = pq.read_table(part, columns=["utterance_id"]).num_rows
    corrupt(part)
    capsys.readouterr()
    # a reader of the damaged column refuses (pages are verified as they are read)
    with pytest.raises(StoreError, match="CRC.*`albsent verify"):
        Store(str(out)).read()
    assert main(["verify", str(out), "--manifest", str(small), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    kinds = {p["kind"]: p for p in report["problems"]}
    assert not report["ok"] and kinds["unreadable"]["where"] == part.name and "CRC" in kinds["unreadable"]["detail"]
    assert kinds["missing_inputs"]["count"] == lost
    assert main(["verify", str(out), "--repair"]) == 0
    assert (out / "_broken" / part.name).is_file() and not part.exists()
    s = extract(str(small), str(out), CFG, progress=False)
    assert (s.stored, s.skipped) == (lost, 12 - lost)
    assert main(["verify", str(out), "--manifest", str(small)]) == 0
    pd.testing.assert_frame_equal(rows(out), original)


@pytest.mark.slow
def test_truncated_part_is_one_line_for_readers_and_found_by_verify(small_stored, ray_local, tmp_path, capsys):
    small, out = small_stored  # = extract(str(small), str(tmp_path / "store"), CFG), copied
    part = sorted(out.glob("part-*.parquet"))[0]
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])  # a copy that stopped half-way
    capsys.readouterr()
    assert main(["inspect", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot read the store" in err and "albsent verify" in err and "Traceback" not in err
    assert main(["verify", str(out), "--json"]) == 1
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert [(p["kind"], p["where"]) for p in problems] == [("unreadable", part.name)]


@pytest.mark.slow
def test_non_finite_values_and_duplicate_rows_are_caught_on_read_and_by_verify(small_stored, ray_local, tmp_path,
                                                                               capsys):
    small, out = small_stored  # = extract(str(small), str(tmp_path / "store"), CFG), copied
    parts = sorted(out.glob("part-*.parquet"))
    # a part written with valid checksums but a NaN in a feature (bytes changed before writing)
    t = pq.read_table(parts[0])
    i = t.schema.get_field_index("mfcc_mean")
    values = t.column(i).to_pylist()
    values[0][3] = float("nan")
    t = t.set_column(i, t.schema.field(i), pa.array(values, type=t.schema.field(i).type))
    pq.write_table(t, parts[0], write_page_checksum=True)
    with pytest.raises(StoreError, match="'mfcc_mean' holds 1 NaN"):
        Store(str(out)).read(["id", "mfcc_mean"])
    assert main(["verify", str(out)]) == 1 and "non_finite" in capsys.readouterr().out
    assert main(["verify", str(out), "--repair"]) == 0
    capsys.readouterr()
    # the same rows in two parts (e.g. two writers): readers refuse, verify --repair keeps one copy
    shutil.copy(parts[1], out / "part-zzcopy.parquet")
    with pytest.raises(StoreError, match="more than once"):
        Store(str(out)).read(["id"])
    assert main(["verify", str(out), "--json"]) == 1
    dup = [p for p in json.loads(capsys.readouterr().out)["problems"] if p["kind"] == "duplicate_ids"]
    assert dup[0]["where"] == "part-zzcopy.parquet"
    n = pq.read_table(parts[1]).num_rows
    assert dup[0]["count"] == n
    assert main(["verify", str(out), "--repair"]) == 0 and not (out / "part-zzcopy.parquet").exists()
    assert Store(str(out)).read(["id"]).num_rows == 12 - pq.read_table(out / "_broken" / parts[0].name).num_rows


@pytest.mark.slow
def test_two_extracts_racing_on_one_store_never_duplicate_a_row(small, ray_local, tmp_path):
    """Two CLI processes with different batch sizes (outside the config hash) start together on
    one --out, joined to one cluster: one writes, the other fails naming it (or, if it starts
    after the first finished, finds everything done); every input is stored exactly once."""
    address = ray_local.get_runtime_context().gcs_address
    out = tmp_path / "store"
    procs = [subprocess.Popen([sys.executable, "-m", "albsent.cli", "-q", "extract", str(small), "--out", str(out),
                               "--set", "features=[mfcc]", "--set", f"batch_size={b}", "--address", address],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for b in (3, 5)]
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]
    codes = sorted(c for c, _, _ in results)
    assert codes in ([0, 0], [0, 2]), results
    if codes == [0, 2]:
        assert "is being written by process" in next(err for c, _, err in results if c == 2)
    t = Store(str(out)).read(["id"]).to_pandas()
    assert len(t) == 12 and t["id"].is_unique


def test_folder_input_refuses_symlinks_out_of_the_folder(tmp_path):
    from albsent.audio.manifest import plan_inputs

    outside = make_corpus(tmp_path / "outside", n_per_class=1, speakers=1).parent / "wav"
    folder = tmp_path / "in"
    folder.mkdir()
    src = sorted(outside.glob("*.wav"))[0]
    (folder / "link.wav").symlink_to(src)
    with pytest.raises(InputError, match="link.wav: a symlink to .*outside the input folder"):
        plan_inputs(folder)
    assert len(plan_inputs(folder, allowed_roots=[str(outside)])) == 1
