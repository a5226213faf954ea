"""The Parquet feature store."""

from albsent.store.arrow import to_arrow, to_matrix, to_sequences
from albsent.store.schema import BASE_NAMES, QUARANTINE_SCHEMA, store_schema
from albsent.store.store import Store

__all__ = ["BASE_NAMES", "QUARANTINE_SCHEMA", "Store", "store_schema", "to_arrow", "to_matrix", "to_sequences"]
