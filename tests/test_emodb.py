"""End to end on real speech: every EMO-DB clip is stored (skipped where the corpus is absent)."""

import pandas as pd
import pytest

from tests.conftest import emodb_manifest

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_all_535_emodb_clips_are_stored(ray_local, tmp_path):
    from albsent.features.config import ExtractConfig
    from albsent.pipeline.extract import extract
    from albsent.store import Store

    manifest = emodb_manifest()
    summary = extract(str(manifest), str(tmp_path / "emodb"), ExtractConfig(batch_size=32), progress=False)
    assert (summary.stored, summary.quarantined) == (535, 0)
    df = pd.read_parquet(tmp_path / "emodb", columns=["id", "label", "speaker", "emotion", "utterance_duration_s"])
    assert len(df) == 535 and df["id"].is_unique and df["speaker"].nunique() == 10
    assert df["label"].value_counts().to_dict() == {"negative": 385, "neutral": 79, "positive": 71}
    assert df["utterance_duration_s"].between(0.3, 2.0).all()
    assert Store(str(tmp_path / "emodb")).quarantine().empty
