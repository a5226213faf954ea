"""`albsent report`: a Markdown table comparing runs — train / probe run folders and sweep
folders (their summary, then their final run) — and, with `html`, one self-contained HTML page
of the same runs with their figures (and the store's corpus statistics with `store`)."""

from __future__ import annotations

from pathlib import Path


def split_inputs(runs: list[str]) -> tuple[list[str], list[str]]:
    """(sweep folders, run folders): a SWEEP_DIR stands for itself and its final run."""
    sweeps = [r for r in runs if (Path(r) / "sweep.json").is_file()]
    folders = [str(Path(r) / "final") if r in sweeps else r for r in runs]
    return sweeps, [r for r in folders if r in runs or (Path(r) / "metrics.json").is_file()]


def run_report(runs: list[str], out: str | None = None, html: str | None = None, store: str | None = None) -> str:
    """The report's Markdown text; also written to `out`, and the HTML page to `html`, when given."""
    from albsent.report.tables import compare_runs

    sweeps, folders = split_inputs(runs)
    head = ""
    if sweeps:
        from albsent.sweep.results import summarize

        head = "\n\n".join(summarize(s) for s in sweeps) + "\n\n"
    table = head + (compare_runs(folders) if folders else "")
    if out:
        Path(out).write_text(table + "\n")
    if html:
        from albsent.report.html import write_html

        write_html(html, folders, sweeps, store)
    return table
