from dataclasses import dataclass, field

import pytest

from albsent.config import build, diff, load, parse_overrides, read_yaml, stable_hash
from albsent.errors import ConfigError
from albsent.features.config import ExtractConfig
from albsent.features.mfcc import MfccConfig


def test_overrides_are_parsed_as_yaml_literals():
    assert parse_overrides(["a.b=1", "a.c=0.5", "d=[x, y]", "e=true", "f=null", "g=text"]) == {
        "a": {"b": 1, "c": 0.5}, "d": ["x", "y"], "e": True, "f": None, "g": "text",
    }


def test_set_overrides_file_and_flags(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("mfcc:\n  n_mfcc: 13\nfeatures: [mfcc]\n")
    c = load(ExtractConfig, cfg, ["mfcc.deltas=1", "audio.segment_s=1.5"], {"labels_from": "parent"})
    assert (c.mfcc.n_mfcc, c.mfcc.deltas, c.audio.segment_s, c.features, c.labels_from) == (
        13, 1, 1.5, ["mfcc"], "parent")


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError, match=r"mfcc\.bogus.*valid keys under mfcc: deltas, fmax_hz"):
        build(ExtractConfig, parse_overrides(["mfcc.bogus=1"]))
    with pytest.raises(ConfigError, match="unknown config key"):
        build(ExtractConfig, {"nope": 1})


@pytest.mark.parametrize("sets, match", [
    (["mfcc.n_mfcc=abc"], "'mfcc.n_mfcc' must be an int"),
    (["mfcc.n_mfcc=0"], r"n_mfcc.*must be an int in \[1, 128\].*Got 0 instead"),
    (["sequences=3"], "must be true or false"),
    (["audio.normalize=loud"], r"must be one of \['peak', 'rms', 'none'\]"),
    (["features=[mfcc, nope]"], "unknown extractor 'nope'; known: compare, egemaps, level, mfcc, shortterm, ssl"),
    (["batch_size=0"], "batch_size"),
])
def test_type_and_range_errors_name_the_field(sets, match):
    with pytest.raises(ConfigError, match=match):
        build(ExtractConfig, parse_overrides(sets))


def test_comma_list_and_int_to_float():
    c = build(ExtractConfig, parse_overrides(["features=mfcc,shortterm", "audio.segment_s=2"]))
    assert c.features == ["mfcc", "shortterm"] and c.audio.segment_s == 2.0 and isinstance(c.audio.segment_s, float)


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load(ExtractConfig, tmp_path / "absent.yaml")


def test_config_hash_tracks_stored_values_only():
    a = ExtractConfig()
    assert a.config_hash() == ExtractConfig().config_hash()
    assert build(ExtractConfig, {"batch_size": 3, "ray": {"num_cpus": 1}}).config_hash() == a.config_hash()
    assert build(ExtractConfig, {"mfcc": {"n_mfcc": 20}}).config_hash() != a.config_hash()
    assert stable_hash({"a": 1, "b": 2}) == stable_hash({"b": 2, "a": 1})


def test_diff_names_changed_keys():
    assert diff({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}}) == ["a.c: 2 -> 3"]


def test_nested_dataclass_from_dict():
    @dataclass
    class Outer:
        mfcc: MfccConfig = field(default_factory=MfccConfig)
        names: list[str] = field(default_factory=list)

    o = build(Outer, {"mfcc": {"n_mfcc": 13}, "names": ["a"]})
    assert o.mfcc.n_mfcc == 13 and o.names == ["a"]


# ---- extends: configs compose -------------------------------------------------------------------

def test_extends_deep_merges_over_the_files_it_names(tmp_path):
    """Paths are relative to the including file; a list applies in order; files may extend files;
    mappings merge key by key, lists and scalars are replaced."""
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "root.yaml").write_text("features: [mfcc, shortterm]\nmfcc: {n_mfcc: 20, deltas: 1}\n"
                                                 "batch_size: 16\n")
    (tmp_path / "base" / "mid.yaml").write_text("extends: root.yaml\nmfcc: {n_mfcc: 13}\naudio: {segment_s: 2.0}\n")
    (tmp_path / "other.yaml").write_text("batch_size: 8\naudio: {trim_silence: false}\n")
    (tmp_path / "top.yaml").write_text("extends: [base/mid.yaml, other.yaml]\nfeatures: [mfcc]\n")
    assert read_yaml(tmp_path / "top.yaml") == {
        "features": ["mfcc"], "mfcc": {"n_mfcc": 13, "deltas": 1}, "batch_size": 8,
        "audio": {"segment_s": 2.0, "trim_silence": False}}
    # `load` (every stage's --config) reads it the same way; flags and --set still come on top.
    c = load(ExtractConfig, tmp_path / "top.yaml", ["mfcc.deltas=2"], {"batch_size": 4})
    assert (c.features, c.mfcc.n_mfcc, c.mfcc.deltas, c.batch_size, c.audio.segment_s, c.audio.trim_silence) == (
        ["mfcc"], 13, 2, 4, 2.0, False)


def test_extends_from_another_working_directory(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.yaml").write_text("batch_size: 3\n")
    (tmp_path / "a" / "y.yaml").write_text("extends: x.yaml\n")
    monkeypatch.chdir("/")
    assert read_yaml(tmp_path / "a" / "y.yaml") == {"batch_size": 3}


def test_extends_cycle_names_the_files(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: [c.yaml, a.yaml]\n")
    (tmp_path / "c.yaml").write_text("batch_size: 1\n")
    with pytest.raises(ConfigError, match=r"cycle: .*a\.yaml -> .*b\.yaml -> .*a\.yaml"):
        read_yaml(tmp_path / "a.yaml")
    (tmp_path / "self.yaml").write_text("extends: self.yaml\n")
    with pytest.raises(ConfigError, match=r"cycle: .*self\.yaml -> .*self\.yaml"):
        read_yaml(tmp_path / "self.yaml")
    # The same file reached twice without a loop (a diamond) is fine.
    (tmp_path / "d.yaml").write_text("extends: [c.yaml, e.yaml]\n")
    (tmp_path / "e.yaml").write_text("extends: c.yaml\nbatch_size: 2\n")
    assert read_yaml(tmp_path / "d.yaml") == {"batch_size": 2}


@pytest.mark.parametrize("text, match", [
    ("extends: missing.yaml\n", r"config file not found: .*missing\.yaml \(extended by .*top\.yaml\)"),
    ("extends: 3\n", r"'extends' must be a file name or a list of file names.*Got 3 instead"),
    ("extends: [ok.yaml, {a: 1}]\n", "'extends' must be a file name"),
    ("extends: bad.yaml\n", r"bad\.yaml: not valid YAML.*python/object"),
])
def test_extends_errors(tmp_path, text, match):
    (tmp_path / "ok.yaml").write_text("batch_size: 1\n")
    (tmp_path / "bad.yaml").write_text("x: !!python/object:os.system {}\n")  # safe_load only, also when extended
    (tmp_path / "top.yaml").write_text(text)
    with pytest.raises(ConfigError, match=match):
        read_yaml(tmp_path / "top.yaml")
