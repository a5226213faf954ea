"""A Markdown table comparing runs (`albsent report`): train / probe run folders and sweep
folders (their summary, then their final run)."""

from __future__ import annotations

from pathlib import Path


def run_report(runs: list[str], out: str | None = None) -> str:
    """The report's text; also written to `out` when given."""
    from albsent.report.tables import compare_runs

    sweeps = [r for r in runs if (Path(r) / "sweep.json").is_file()]  # SWEEP_DIR: summary + its final run
    head = ""
    if sweeps:
        from albsent.sweep.results import summarize

        head = "\n\n".join(summarize(s) for s in sweeps) + "\n\n"
    given = runs
    runs = [str(Path(r) / "final") if r in sweeps else r for r in given]
    runs = [r for r in runs if r in given or (Path(r) / "metrics.json").is_file()]
    table = head + (compare_runs(runs) if runs else "")
    if out:
        Path(out).write_text(table + "\n")
    return table
