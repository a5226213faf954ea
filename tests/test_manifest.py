import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from albsent.audio.manifest import plan_inputs, utterance_id
from albsent.errors import InputError


@pytest.fixture
def folder(tmp_path):
    x = np.zeros(1600, np.float32)
    for cls in ("happy", "sad"):
        (tmp_path / "audio" / cls).mkdir(parents=True)
        for i in range(2):
            sf.write(tmp_path / "audio" / cls / f"{i}.wav", x, 16000)
    (tmp_path / "audio" / "happy" / "notes.txt").write_text("ignored, with a warning")
    return tmp_path


def write_csv(path, rows):
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_manifest_relative_absolute_extras(folder):
    rows = [
        {"path": "audio/happy/0.wav", "label": "happy", "speaker": "a", "split": "train", "emotion": "joy"},
        {"path": str(folder / "audio/sad/0.wav"), "label": "sad", "speaker": "b", "split": "", "emotion": "grief"},
    ]
    df = plan_inputs(write_csv(folder / "m.csv", rows))
    assert list(df.columns) == ["utterance_id", "key", "path", "label", "speaker", "split", "source_bytes",
                                "source_mtime_ns", "emotion"]
    assert df["path"].tolist() == [str(folder / "audio/happy/0.wav"), str(folder / "audio/sad/0.wav")]
    assert df["key"].tolist() == ["audio/happy/0.wav", "audio/sad/0.wav"]
    assert df["utterance_id"][0] == utterance_id(str(folder / "audio/happy/0.wav"))  # the resolved path
    assert df["source_bytes"][0] == (folder / "audio/happy/0.wav").stat().st_size
    assert df["emotion"].tolist() == ["joy", "grief"]


def test_albanian_paper_labels_column_is_accepted(folder):
    df = plan_inputs(write_csv(folder / "m.csv", [{"path": "audio/sad/1.wav", "labels": "negative"}]))
    assert df["label"].tolist() == ["negative"] and df["speaker"].isna().all()


def test_missing_column_is_an_error_naming_it(folder):
    with pytest.raises(InputError, match=r"missing required column\(s\) \['label'\]; found \['path', 'speaker'\]"):
        plan_inputs(write_csv(folder / "m.csv", [{"path": "audio/sad/1.wav", "speaker": "x"}]))


def test_empty_label_names_the_line(folder):
    with pytest.raises(InputError, match="column 'label' is empty on line"):
        plan_inputs(write_csv(folder / "m.csv", [{"path": "audio/sad/1.wav", "label": ""}]))


def test_duplicate_paths_are_an_error(folder):
    rows = [{"path": "audio/sad/1.wav", "label": "s"}, {"path": str(folder / "audio/sad/1.wav"), "label": "s"}]
    with pytest.raises(InputError, match="1 duplicate path"):
        plan_inputs(write_csv(folder / "m.csv", rows))


def test_path_outside_allowed_roots_is_an_error_unless_allowed(folder, tmp_path_factory):
    other = tmp_path_factory.mktemp("elsewhere")
    sf.write(other / "x.wav", np.zeros(1600, np.float32), 16000)
    (folder / "sub").mkdir()
    m = write_csv(folder / "sub" / "m.csv",
                  [{"path": "../audio/sad/1.wav", "label": "s"}, {"path": str(other / "x.wav"), "label": "s"}])
    with pytest.raises(InputError, match=r"line 2: path '../audio/sad/1.wav' resolves to .* outside the allowed roots"):
        plan_inputs(m)
    df = plan_inputs(m, allowed_roots=[str(folder), str(other)])
    assert len(df) == 2


def test_directory_unlabeled_and_labels_from_parent(folder):
    df = plan_inputs(folder / "audio")
    assert len(df) == 4 and df["label"].isna().all() and df["key"].tolist()[0] == "happy/0.wav"
    df = plan_inputs(folder / "audio", labels_from="parent")
    assert df["label"].tolist() == ["happy", "happy", "sad", "sad"]


def test_label_map_maps_and_rejects_unmapped(folder):
    df = plan_inputs(folder / "audio", labels_from="parent", label_map={"happy": "positive", "sad": "negative"})
    assert df["label"].tolist() == ["positive", "positive", "negative", "negative"]
    assert df["original_label"].tolist()[0] == "happy"
    with pytest.raises(InputError, match=r"label\(s\) \['sad'\] have no entry in label_map"):
        plan_inputs(folder / "audio", labels_from="parent", label_map={"happy": "positive"})


def test_missing_input_and_empty_folder(tmp_path):
    with pytest.raises(InputError, match="no such manifest CSV or audio folder"):
        plan_inputs(tmp_path / "nope.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no audio files found"):
        plan_inputs(tmp_path / "empty")
