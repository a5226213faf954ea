"""`albsent verify`: check a store (and with `repair`, mend it). Which columns a stored config
gives is the extractors' knowledge and the store never imports albsent.features, so this use case
hands the store that rule (albsent.features.config.built_columns) before it verifies: a fresh
process judges an edited column shape as broken metadata, as one that has extracted before."""

from __future__ import annotations

from albsent.features.config import built_columns
from albsent.store.checks import use_column_rule
from albsent.store.verify import Report, verify


def run_verify(store: str, manifest: str | None = None, allowed_roots=(), repair: bool = False) -> Report:
    use_column_rule(built_columns)
    return verify(store, manifest, list(allowed_roots), repair=repair)
