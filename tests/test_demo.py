import numpy as np
import pandas as pd
import pytest

from albsent.app.run_demo import SENTENCES, synthesize_corpus
from albsent.audio.speech import Espeak


def test_espeak_speaks_albanian_with_prosody_controls():
    tts = Espeak()
    slow, sr = tts.say("Jam shumë i lumtur sot!", voice="sq", rate=110)
    fast, _ = tts.say("Jam shumë i lumtur sot!", voice="sq", rate=220)
    assert sr > 8000 and slow.dtype == np.int16 and np.abs(slow).max() > 1000
    assert len(slow) > 1.4 * len(fast)


@pytest.mark.slow
def test_synthetic_corpus_is_labelled_and_balanced(tmp_path):
    manifest = synthesize_corpus(tmp_path, speakers=2)
    df = pd.read_csv(manifest)
    per_class = len(next(iter(SENTENCES.values())))
    assert df["label"].value_counts().to_dict() == {k: 2 * per_class for k in SENTENCES}
    assert set(df["source"]) == {"synthetic-espeak-ng"} and df["speaker"].nunique() == 2
    assert "SYNTHETIC" in (tmp_path / "README.txt").read_text()


HASH_CORPUS = r"""
import hashlib, json, sys
from pathlib import Path
from albsent.app.run_demo import SPEAKERS, synthesize_corpus
synthesize_corpus(sys.argv[1], speakers=len(SPEAKERS))
print(json.dumps({p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                  for p in sorted(Path(sys.argv[1]).glob("wav/*.wav"))}))
"""


@pytest.mark.slow
def test_synthetic_corpus_is_the_same_in_every_process(tmp_path):
    """Every speaker's voice variant is deterministic (eSpeak variants with `breath` add random
    noise), so the demo's corpus, and its figures, are reproducible."""
    import json
    import subprocess
    import sys

    runs = [json.loads(subprocess.run([sys.executable, "-c", HASH_CORPUS, str(tmp_path / f"run{k}")],
                                      capture_output=True, text=True, check=True).stdout) for k in range(2)]
    assert len(runs[0]) == 4 * sum(len(t) for t in SENTENCES.values())
    assert runs[0] == runs[1], sorted(k for k in runs[0] if runs[0][k] != runs[1].get(k))[:5]


@pytest.mark.ray
@pytest.mark.slow
def test_demo_runs_end_to_end(ray_local, tmp_path):
    from albsent.app.run_demo import run_demo

    result = run_demo(tmp_path / "demo", progress=False)
    assert result["extract"].stored == 72 and result["extract"].quarantined == 0
    assert (tmp_path / "demo" / "stats" / "stats.md").is_file()
    assert result["stats"]["heterogeneity"]["segmented_utterances"] > 0
    assert set(result["runs"]) == {"baseline_logreg_mfcc", "mlp128_mfcc+shortterm_cw", "auto"}
    for run in result["runs"].values():
        assert (run / "metrics.json").is_file() and (run / "confusion_matrix.png").is_file()
    assert "baseline_logreg_mfcc" in result["table"] and "by speaker" in result["table"]
    assert (result["runs"]["auto"] / "ensemble.json").is_file() and "| auto |" in result["table"]
    assert (tmp_path / "demo" / "report.md").read_text().count("\n|") >= 4
    from tests.test_report_html import check_page

    assert result["html"] == tmp_path / "demo" / "report.html"
    page = check_page(result["html"].read_text())
    assert page.sections == ["summary", "run-0", "run-1", "run-2", "corpus"]
    visible = " ".join(page.text)
    assert "Automatic selection" in visible and "Segment heterogeneity (Table 2)" in visible
    assert "mlp128_mfcc+shortterm_cw" in visible and "SYNTHETIC" in visible


def test_a_dropped_second_synthesiser_does_not_break_the_first():
    """eSpeak NG's synthesis callback is global: a second instance, garbage-collected, used to
    leave the first calling a freed callback (a segfault in the full test run)."""
    import gc

    first, second = Espeak(), Espeak()
    second.say("tung")
    del second
    gc.collect()
    audio, sr = first.say("mirëdita")
    assert audio.size > sr // 10
