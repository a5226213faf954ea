"""Feature extractors, registered by name (`mfcc`, `shortterm`, `level`, `ssl`, `egemaps`, `compare`)."""

from albsent.features import level, mfcc, opensmile_sets, shortterm, ssl  # noqa: F401  (registration)
from albsent.features.base import EXTRACTORS, Extractor, get_extractor

__all__ = ["EXTRACTORS", "Extractor", "get_extractor"]
