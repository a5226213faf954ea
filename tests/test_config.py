from dataclasses import dataclass, field

import pytest

from albsent.config import build, diff, load, parse_overrides, stable_hash
from albsent.errors import ConfigError
from albsent.features.mfcc import MfccConfig
from albsent.pipeline.config import ExtractConfig


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
    (["features=[mfcc, nope]"], "unknown extractor 'nope'; known: compare, egemaps, mfcc, shortterm, ssl"),
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
