"""Audio corpus -> Parquet feature store (`albsent extract`, jobs/extract.py): the Ray Data
graph of albsent.pipeline, resumable; or its dry-run plan."""

from __future__ import annotations


def run_extract(input_path: str, out: str, config, progress: bool = True, retry_quarantined: bool = False,
                prune: bool = False):
    """Extract INPUT into the store `out` (albsent.pipeline.extract.extract); returns the ExtractSummary."""
    from albsent.config import check_out_folder
    from albsent.pipeline.extract import extract

    check_out_folder(out)
    return extract(input_path, out, config, progress=progress, retry_quarantined=retry_quarantined, prune=prune)


def dry_run(input_path: str, out: str, config) -> dict:
    """The planned work (clips, hours, store size, time from a measured sample); nothing written."""
    from albsent.config import check_out_folder
    from albsent.pipeline.plan import plan

    check_out_folder(out)
    return plan(input_path, config)
