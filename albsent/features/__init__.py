"""Feature extractors, registered by name (`mfcc`, `shortterm`, `ssl`, `egemaps`, `compare`)."""

from albsent.features import mfcc, opensmile_sets, shortterm, ssl  # noqa: F401  (registration)
from albsent.features.base import EXTRACTORS, Column, Extractor, get_extractor, register

__all__ = ["EXTRACTORS", "Column", "Extractor", "get_extractor", "register"]
