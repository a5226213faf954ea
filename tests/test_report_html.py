"""`albsent report --html`: one self-contained page. Hand-written run folders (no training) for
the structure and the escaping; a real automatic selection, a real sweep and a store through the
CLI, as the README's example (tests/test_demo.py checks the demo's page with the same helper)."""

from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from albsent.report.html import render
from albsent.train.metrics import aggregate, compute_metrics

LABELS = ["negative", "neutral", "positive"]
EVIL = '<img src=x onerror=alert(1)> & "q"'  # no slash: it also names a run folder


class Page(HTMLParser):
    """Every tag with its attributes, every section id and the visible text of a page."""

    def __init__(self, text: str):
        super().__init__()
        self.tags, self.sections, self.text = [], [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "section":
            self.sections.append(dict(attrs)["id"])

    def handle_data(self, data):
        self.text.append(data)


def check_page(text: str) -> Page:
    """Self-contained: no script, no stylesheet link, no attribute pointing anywhere but the page
    itself; every image an embedded PNG that decodes. Returns the parsed page."""
    from PIL import Image

    page = Page(text)
    tags = {t for t, _ in page.tags}
    assert not tags & {"script", "link", "iframe", "object", "embed"}, tags
    assert 'src="http' not in text and 'href="http' not in text and "url(" not in text
    for tag, attrs in page.tags:
        for key in ("src", "href"):
            value = attrs.get(key)
            assert value is None or value.startswith(("#", "data:image/png;base64,")), (tag, value)
    images = [a["src"] for t, a in page.tags if t == "img"]
    for src in images:
        im = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1], validate=True)))
        assert im.format == "PNG" and im.size[0] > 100 and im.size[1] > 100
        im.load()
    page.images = len(images)
    return page


def write_run(folder: Path, metrics: dict, config: dict) -> Path:
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


def fold_metrics():
    true = [["negative", "neutral", "positive", "positive"], ["negative", "neutral", "positive"]]
    pred = [["negative", "neutral", "negative", "positive"], ["negative", "negative", "positive"]]
    m = aggregate([compute_metrics(t, p, LABELS) for t, p in zip(true, pred)])
    m["pooled"] = compute_metrics(true[0] + true[1], pred[0] + pred[1], LABELS)
    return {**m, "group_by": "speaker"}


def test_page_has_every_section_embeds_pngs_and_escapes_file_content(tmp_path):
    single = compute_metrics(["negative", "neutral", "positive"], ["negative", "neutral", "neutral"], LABELS)
    a = write_run(tmp_path / EVIL, {**single, "group_by": "speaker"}, {"features": "mfcc", "model": EVIL})
    b = write_run(tmp_path / "cv", fold_metrics(), {"features": "mfcc+shortterm", "model": "mlp"})
    auto = write_run(tmp_path / "auto", {**fold_metrics(), "protocol": f"nested {EVIL}",
                                         "selection": {"1": {"inner_macro_f1": 0.61}, "all": {"inner_macro_f1": 0.7}}},
                     {})
    rows = ["unit,recipe,inner_macro_f1,weight"]
    for unit in ("1", "2", "all"):
        rows += [f"{unit},mfcc | global z | sklearn_logreg C=1,0.6,0.5", f'{unit},"{EVIL} | speaker z",0.55,0.5',
                 f"{unit},shortterm | global z | svm_rbf C=1,0.4,0.0"]
    (auto / "selection.csv").write_text("\n".join(rows) + "\n")
    text = render([str(a), str(b), str(auto)])
    page = check_page(text)
    assert page.sections == ["summary", "run-0", "run-1", "run-2"]
    assert EVIL not in text and html_escaped(EVIL) in text
    assert EVIL in "".join(page.text)  # shown to the reader as written
    # images: F1 bars for each run, fold spread for the two CV runs, the selection's candidates
    assert page.images == 3 + 2 + 1
    visible = " ".join(page.text)
    assert "Chosen recipes and their weights per fold" in visible and "0.610" in visible and "0.700" in visible
    assert "Every candidate's inner pooled macro-F1 (3 recipes)" in visible
    # the confusion matrix as a table where the run has no PNG of it
    assert "true \\ predicted" in visible


def html_escaped(s: str) -> str:
    import html

    return html.escape(s, quote=True)


def test_store_without_html_is_a_one_line_error(tmp_path, capsys):
    from albsent.cli import main

    run = write_run(tmp_path / "r", fold_metrics(), {})
    assert main(["report", str(run), "--store", str(tmp_path)]) != 0
    assert "--html" in capsys.readouterr().err


@pytest.mark.ray
@pytest.mark.slow
def test_readme_html_report_for_auto_run_sweep_and_store(store, ray_local, tmp_path, capsys):
    """README: `albsent report runs/auto sweeps/smoke --store STORE --html report.html`."""
    from albsent.cli import main
    from albsent.sweep import run_sweep
    from albsent.sweep.config import load_sweep

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    assert "albsent report runs/auto sweeps/emodb --store stores/emodb --html report.html" in readme
    auto, sweep, out = tmp_path / "runs" / "auto", tmp_path / "sweeps" / "smoke", tmp_path / "report.html"
    assert main(["-q", "train", "--store", str(store), "--out", str(auto), "--folds", "2", "--inner-folds", "2"]) == 0
    run_sweep(load_sweep(root / "configs" / "sweeps" / "smoke.yaml"), str(store), str(sweep))
    capsys.readouterr()
    assert main(["-q", "report", str(auto), str(sweep), "--store", str(store), "--html", str(out)]) == 0
    assert f"HTML report: {out}" in capsys.readouterr().out
    text = out.read_text()
    page = check_page(text)
    assert page.sections == ["summary", "sweep-0", "run-0", "sweep-0-final", "corpus"]
    visible = " ".join(page.text)
    summary = json.loads((sweep / "sweep.json").read_text())
    assert summary["best"]["trial_id"] in visible and "Best completed trials" in visible
    assert "Automatic selection" in visible and "Durations per class (Table 1)" in visible
    assert "smoke/final" in visible
    selection = (auto / "selection.csv").read_text().splitlines()[1].split(",")[1]
    assert html_escaped(selection) in text
    # auto: confusion matrix, F1, folds, candidates; sweep: its plots; final: its PNGs, F1 (+ folds);
    # corpus: ZCR / flatness and the ZCR profile
    final = sweep / "final"
    folds = bool(json.loads((final / "metrics.json").read_text()).get("per_fold"))
    final_images = len(list(final.glob("*.png"))) + 1 + folds
    assert (auto / "confusion_matrix.png").is_file() and not (auto / "loss_curve.png").exists()
    assert page.images == 4 + len(summary["plots"]) + final_images + 2
