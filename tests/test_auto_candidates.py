"""The automatic selection's candidate specs come from the extractors' own declarations
(Extractor.auto_candidates, fusions, fusable, added_to_every, standalone); the generic loop in
albsent.train.select.store_feature_groups gives exactly what the old name rules gave."""

from __future__ import annotations

import pytest

from albsent.features import EXTRACTORS
from albsent.features.base import Extractor
from albsent.store.schema import pooled_column, ssl_layer_counts
from albsent.train.select import store_feature_groups


def old_store_feature_groups(meta: dict, columns: dict) -> list[str]:
    """The name rules store_feature_groups had before the extractors declared their candidates."""
    groups = []
    for name in meta.get("extractors", {}):
        if name == "ssl":
            continue
        if pooled_column(name, "func") in columns:  # openSMILE functionals
            groups.append(f"{name}.func")
        elif pooled_column(name, "mean") in columns and pooled_column(name, "std") in columns:
            groups.append(name)
    small = [g for g in groups if not g.startswith("compare")]
    fusions = []
    if "mfcc" in small and "egemaps.func" in small:
        fusions.append("mfcc+egemaps.func")
    if "mfcc" in small and "shortterm" in small:
        fusions.append("mfcc+shortterm")
    if "level.func" in groups:  # every group also with the recording's level (albsent.features.level)
        fusions += [f"{g}+level.func" for g in groups + fusions if g != "level.func"]
    ssl = []
    for alias, n in sorted(ssl_layer_counts(columns).items()):
        picks = sorted({round(n * q) for q in (0.25, 0.5, 0.75)} | {n - 1})
        ssl += [f"ssl:{alias}:{k}" for k in picks if 0 <= k < n]
    return groups + fusions + ssl


def pooled(group: str, *stats: str, dim: int = 4) -> dict:
    return {pooled_column(group, s): {"shape": [dim]} for s in stats}


def ssl(alias: str, layers: int, std: bool = True) -> dict:
    stats = ("mean", "std") if std else ("mean",)
    return {pooled_column(f"ssl_{alias}", s): {"shape": [layers, 8]} for s in stats}


FRAME = ("mean", "std")
OPENSMILE = ("mean", "std", "func")
GROUPS = {
    "mfcc": pooled("mfcc", *FRAME), "shortterm": pooled("shortterm", *FRAME), "level": pooled("level", *OPENSMILE),
    "egemaps": pooled("egemaps", *OPENSMILE), "compare": pooled("compare", *OPENSMILE),
}
CASES = {
    "empty": ([], {}),
    "mfcc": (["mfcc"], GROUPS["mfcc"]),
    "mfcc+shortterm": (["mfcc", "shortterm"], {**GROUPS["mfcc"], **GROUPS["shortterm"]}),
    "egemaps+mfcc": (["egemaps", "mfcc"], {**GROUPS["egemaps"], **GROUPS["mfcc"]}),
    "every group, sorted": (sorted(GROUPS), {k: v for g in GROUPS.values() for k, v in g.items()}),
    "every group, unsorted": (["shortterm", "level", "mfcc", "compare", "egemaps"],
                              {k: v for g in GROUPS.values() for k, v in g.items()}),
    "compare+mfcc (compare not fused)": (["compare", "mfcc"], {**GROUPS["compare"], **GROUPS["mfcc"]}),
    "compare+level": (["compare", "level"], {**GROUPS["compare"], **GROUPS["level"]}),
    "level alone": (["level"], GROUPS["level"]),
    "level without functionals": (["level", "mfcc"], {**pooled("level", *FRAME), **GROUPS["mfcc"]}),
    "mfcc without std": (["mfcc", "shortterm", "level"],
                         {**pooled("mfcc", "mean"), **GROUPS["shortterm"], **GROUPS["level"]}),
    "pooled-only egemaps (func only)": (["egemaps", "mfcc", "level"],
                                        {**pooled("egemaps", "func"), **GROUPS["mfcc"], **GROUPS["level"]}),
    "ssl": (["ssl"], {**ssl("hubert", 13), **ssl("x_l3", 5)}),
    "ssl shallow models": (["ssl"], {**ssl("a", 1), **ssl("b", 2), **ssl("c", 3, std=False)}),
    "mfcc+ssl+level": (["level", "mfcc", "ssl"], {**GROUPS["level"], **GROUPS["mfcc"], **ssl("wavlm", 7)}),
    "everything": (["compare", "egemaps", "level", "mfcc", "shortterm", "ssl"],
                   {**{k: v for g in GROUPS.values() for k, v in g.items()}, **ssl("hubert", 13), **ssl("w", 25)}),
    "unknown groups": (["pitchy", "mfcc", "funky", "level"],
                       {**pooled("pitchy", *FRAME), **pooled("funky", "func"), **GROUPS["mfcc"], **GROUPS["level"]}),
    "sequences only": (["mfcc", "shortterm"], {"mfcc": {"shape": [None, 4]}, "shortterm": {"shape": [None, 4]}}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_candidates_are_the_old_rules_output(case):
    names, columns = CASES[case]
    meta = {"extractors": {n: {} for n in names}}
    assert store_feature_groups(meta, columns) == old_store_feature_groups(meta, columns)


def test_real_extractors_columns_give_the_old_candidates():
    """The columns the registered extractors really write (default configs; SSL stands in by its
    pooled (layers, hidden) columns), every group at once."""
    from albsent.config import build
    from albsent.features.config import ExtractConfig, build_extractors

    names = [n for n in sorted(EXTRACTORS) if n != "ssl"]
    columns = {c.name: {"shape": list(c.shape)}
               for e in build_extractors(build(ExtractConfig, {"features": names})) for c in e.columns()}
    columns.update(ssl("hubert", 13))
    meta = {"extractors": {n: {} for n in sorted([*names, "ssl"])}}
    got = store_feature_groups(meta, columns)
    assert got == old_store_feature_groups(meta, columns)
    assert "mfcc+egemaps.func" in got and "compare.func+level.func" in got and got[-1] == "ssl:hubert:12"


def test_extractors_are_abstract_and_declare_their_candidates():
    with pytest.raises(TypeError, match="abstract"):
        Extractor(None, 16000)  # type: ignore[abstract]
    assert EXTRACTORS["mfcc"].fusions and not EXTRACTORS["compare"].fusable
    assert EXTRACTORS["level"].added_to_every == ("level.func",) and EXTRACTORS["ssl"].standalone
