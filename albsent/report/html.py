"""`albsent report RUN... --html FILE`: one self-contained HTML page (inline CSS, images as
base64 PNG, no script, nothing fetched when it is viewed) for train / probe / auto run folders,
sweep folders and optionally a store. Sections: the summary table (the Markdown report's
content, albsent.report.tables.summary_rows), then per run its confusion matrix, F1 per class,
the spread over folds, the loss curve and, for an automatic selection, the recipes chosen per
fold with their weights and every candidate's inner score (selection.csv); per sweep its best
trial, plots and best trials; for a store the corpus statistics (`albsent stats`: the paper's
Tables 1-2 and figures). Every string read from a file is HTML-escaped here."""

from __future__ import annotations

import base64
import html
import json
import tempfile
from pathlib import Path

import pandas as pd

from albsent.report import figures
from albsent.report.tables import load_run, summary_rows

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1400px;padding:1em 2em;
color:#222}
h1{border-bottom:2px solid #345}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#eef2f6}
td:first-child,th:first-child{text-align:left}td{white-space:nowrap}
td.text{white-space:normal;min-width:12em;max-width:30em;text-align:left}
code{background:#f3f3f3;padding:0 .2em}.wide{overflow-x:auto}
.figs{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}
.figs img{max-width:100%;border:1px solid #eee}
.note{color:#555;font-size:.9em}nav a{margin-right:1em}details{margin:.6em 0}
"""


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def table(head: list[str], rows: list[list], code_cols: tuple[int, ...] = ()) -> str:
    """An HTML table; every cell escaped, columns in `code_cols` as <code>."""
    def td(i, v):
        text = f"<code>{esc(v)}</code>" if i in code_cols else esc(v)
        return f'<td class="text">{text}</td>' if i in code_cols or len(str(v)) > 40 else f"<td>{text}</td>"

    body = "".join("<tr>" + "".join(td(i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return '<div class="wide"><table><tr>' + "".join(f"<th>{esc(h)}</th>" for h in head) + f"</tr>{body}</table></div>"


def frame(df: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame (index as the first column) as `table`, floats with `digits` decimals."""
    def fmt(v):
        return ("–" if v != v else f"{v:.{digits}f}") if isinstance(v, float) else v

    head = [df.index.name or ""] + [str(c) for c in df.columns]
    return table(head, [[i, *map(fmt, row)] for i, row in zip(df.index, df.astype(object).values.tolist())])


def img(data: bytes, alt: str) -> str:
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}">'


def img_file(path: Path, alt: str) -> str:
    return img(path.read_bytes(), alt) if path.is_file() else ""


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>\n{body}\n</section>'


def summary_section(runs: list[dict]) -> str:
    if not runs:
        return ""
    head, rows = summary_rows(runs)
    note = '<p class="note">As <code>albsent report</code> writes it: mean ± std over folds where cross-validated.</p>'
    return section("summary", "Summary", note + table(head, rows, code_cols=(1,)))


def confusion(metrics: dict, folder: Path) -> str:
    png_path = folder / "confusion_matrix.png"
    if png_path.is_file():
        return img_file(png_path, "confusion matrix")
    labels = metrics.get("labels", [])
    cm = metrics.get("confusion_matrix", [])
    return table(["true \\ predicted", *labels], [[lab, *row] for lab, row in zip(labels, cm)]) if cm else ""


def fold_table(per_fold: list[dict]) -> str:
    rows = [[k + 1, f.get("n", ""), *(f"{f[m]:.3f}" if f.get(m) is not None else "–" for m in figures.FOLD_METRICS)]
            for k, f in enumerate(per_fold)]
    return table(["fold", "n", *figures.FOLD_METRICS.values()], rows)


def selection_html(folder: Path, metrics: dict) -> str:
    """An automatic selection: chosen recipes x unit (ensemble weight), each unit's inner and outer
    score, the candidates' inner scores (figure, and the full table folded)."""
    sel = pd.read_csv(folder / "selection.csv", dtype={"unit": str})
    units = list(dict.fromkeys(sel["unit"]))
    per_fold = metrics.get("per_fold", [])
    info = metrics.get("selection", {})
    rows = [[u, f"{info[u]['inner_macro_f1']:.3f}" if u in info else "–",
             int((sel[sel["unit"] == u]["weight"] > 0).sum()),
             f"{per_fold[int(u) - 1]['macro_f1']:.3f}" if u.isdigit() and int(u) <= len(per_fold) else "–"]
            for u in units]
    out = [f'<p class="note">{esc(metrics.get("protocol", ""))}</p>',
           table(["unit (outer fold; all = final model)", "ensemble inner macro-F1", "members", "outer-test macro-F1"],
                 rows)]
    weights = sel.pivot_table(index="recipe", columns="unit", values="weight", aggfunc="first").reindex(columns=units)
    chosen = weights[(weights > 0).any(axis=1)]
    chosen = chosen.loc[chosen.fillna(0).sum(axis=1).sort_values(ascending=False).index]
    out += ["<h3>Chosen recipes and their weights per fold</h3>",
            frame(chosen.where(chosen > 0).rename_axis("recipe"), digits=3),
            '<div class="figs">' + img(figures.selection_scores(sel), "candidates' inner scores") + "</div>"]
    inner = sel.pivot_table(index="recipe", columns="unit", values="inner_macro_f1", aggfunc="first")
    out.append(f"<details><summary>Every candidate's inner pooled macro-F1 ({len(inner)} recipes)</summary>"
               + frame(inner.reindex(columns=units).rename_axis("recipe")) + "</details>")
    return "\n".join(out)


def run_section(run: dict, anchor: str) -> str:
    m, folder = run["metrics"], Path(run["path"])
    body = [f'<p class="note">{esc(folder)}</p>']
    figs = [confusion(m, folder)]
    if m.get("labels") and m.get("per_class"):
        figs.append(img(figures.f1_bars(m), "F1 per class"))
    if m.get("per_fold"):
        figs.append(img(figures.fold_spread(m["per_fold"]), "per-fold spread"))
    figs.append(img_file(folder / "loss_curve.png", "loss curve"))
    body.append('<div class="figs">' + "".join(figs) + "</div>")
    if m.get("per_fold"):
        body += ["<h3>Per fold</h3>", fold_table(m["per_fold"])]
    if (folder / "selection.csv").is_file():
        body += ["<h3>Automatic selection</h3>", selection_html(folder, m)]
    return section(anchor, f"Run {run['name']}", "\n".join(body))


def sweep_section(folder: Path, anchor: str) -> str:
    s = json.loads((folder / "sweep.json").read_text())
    states = ", ".join(f"{v} {k}" for k, v in sorted(s["states"].items()))
    body = [f'<p>{esc(s["kind"])} sweep on <code>{esc(s["store"])}</code>: {s["num_trials"]} trials ({esc(states)}; '
            f'{s["attempts"]} attempts), objective {esc(s["metric"])} ({esc(s["mode"])})</p>']
    b = s.get("best")
    if b:
        params = [[k, f"{v:.4g}" if isinstance(v, float) else v] for k, v in b["params"].items()]
        body += [f"<p>best trial <code>{esc(b['trial_id'])}</code>: {esc(s['metric'])} {b['value']:.4f}</p>",
                 table(["parameter", "value"], params)]
    body.append('<div class="figs">' + "".join(img_file(folder / p, p) for p in s.get("plots", [])) + "</div>")
    trials = folder / "trials.csv"
    if trials.is_file() and b:
        t = pd.read_csv(trials)
        t = t[t["state"] == "completed"].sort_values(s["metric"], ascending=s["mode"] == "min").head(10)
        cols = list(dict.fromkeys(["trial_id"] + [k for k in s["sweep"]["space"] if k in t]
                                  + [c for c in (s["metric"], "test_macro_f1", "probe_macro_f1") if c in t]))
        rows = [[("–" if v != v else f"{v:.4g}") if isinstance(v, float) else v for v in r]
                for r in t[cols].astype(object).values.tolist()]
        body += ["<h3>Best completed trials</h3>", table(cols, rows)]
    if s.get("final"):
        body.append(f'<p>best config retrained: see <a href="#{esc(anchor)}-final">its run</a>.</p>')
    return section(anchor, f"Sweep {s['name']}", "\n".join(body))


def stats_section(store: str) -> str:
    """Corpus statistics (albsent.report.stats.corpus_stats, computed into a temporary folder)."""
    from albsent.report.stats import corpus_stats

    with tempfile.TemporaryDirectory() as tmp:
        st = corpus_stats(store, tmp)
        pics = "".join(img_file(Path(tmp) / name, name) for name in st["figures"])
    durations = pd.DataFrame(st["durations"]).set_index("label")
    h = st["heterogeneity"]
    body = [f"<p>store <code>{esc(st['store'])}</code></p>", "<h3>Durations per class (Table 1)</h3>",
            frame(durations), "<h3>Segment heterogeneity (Table 2)</h3>"]
    if h["segmented_utterances"]:
        bands = pd.DataFrame(h["counts"]).T.rename_axis("band")
        body += [f'<p class="note">Mean pairwise Euclidean distance of <code>{esc(h["column"])}</code> between the '
                 f'segments of one utterance ({h["segmented_utterances"]} segmented utterances).</p>', frame(bands)]
    else:
        body.append("<p>No utterance has two or more segments (extract with <code>--segment 1.5</code>).</p>")
    if st.get("zcr_flatness_means"):
        body += ["<h3>Mean ZCR and spectral flatness per class (Figs 2-5)</h3>",
                 frame(pd.DataFrame(st["zcr_flatness_means"]).set_index("label"), digits=4)]
    body.append(f'<div class="figs">{pics}</div>')
    return section("corpus", "Corpus statistics", "\n".join(body))


def render(runs: list[str], sweeps: list[str] = (), store: str | None = None, title: str = "albsent report") -> str:
    """The page. `runs`: run folders (a sweep's final run included); `sweeps`: sweep folders."""
    loaded = [load_run(r) for r in runs]
    names = [r["name"] for r in loaded]
    for r in loaded:  # two runs named alike (runs/a/auto, runs/b/auto): name them by their parent too
        if names.count(r["name"]) > 1:
            r["name"] = f"{Path(r['path']).parent.name}/{r['name']}"
    finals = {str(Path(f) / "final"): f"sweep-{k}-final" for k, f in enumerate(sweeps)}
    for r in loaded:  # a sweep's retrained run: SWEEP/final
        if r["path"] in finals:
            r["name"] = f"{Path(r['path']).parent.name}/final"
    parts, nav = [summary_section(loaded)], [("summary", "Summary")] if runs else []
    for k, folder in enumerate(sweeps):
        parts.append(sweep_section(Path(folder), f"sweep-{k}"))
        nav.append((f"sweep-{k}", f"sweep {Path(folder).name}"))
    for k, run in enumerate(loaded):
        anchor = finals.get(run["path"], f"run-{k}")
        parts.append(run_section(run, anchor))
        nav.append((anchor, run["name"]))
    if store:
        parts.append(stats_section(store))
        nav.append(("corpus", "corpus statistics"))
    links = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t in nav)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{CSS}</style></head><body>\n<h1>{esc(title)}</h1>\n<nav>{links}</nav>\n"
            + "\n".join(p for p in parts if p) + "\n</body></html>\n")


def write_html(path: str | Path, runs: list[str], sweeps: list[str] = (), store: str | None = None,
               title: str = "albsent report") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(runs, sweeps, store, title), encoding="utf-8")
    return path
