import numpy as np
import pytest
import soundfile as sf

from albsent.audio.io import decode
from albsent.audio.preprocess import AudioConfig, preprocess, segment_bounds
from albsent.errors import AudioError, ConfigError


def tone(freq=440.0, sr=16000, seconds=1.0, amp=0.3):
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_freq(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / sr)[spec.argmax()]


@pytest.mark.parametrize("ext, fmt, subtype", [
    ("wav", "WAV", "PCM_16"), ("wav", "WAV", "PCM_24"), ("wav", "WAV", "PCM_32"), ("wav", "WAV", "FLOAT"),
    ("wav", "WAV", "PCM_U8"), ("flac", "FLAC", "PCM_16"), ("ogg", "OGG", "VORBIS"), ("aiff", "AIFF", "PCM_16"),
])
def test_decode_formats_and_bit_depths(tmp_path, ext, fmt, subtype):
    x = tone(sr=22050)
    path = tmp_path / f"a.{ext}"
    sf.write(path, x, 22050, format=fmt, subtype=subtype)
    d = decode(str(path))
    assert d.sample_rate_hz == 22050 and d.samples.dtype == np.float32 and d.samples.ndim == 1
    assert abs(peak_freq(d.samples, 22050) - 440) < 3
    assert len(d.sha256) == 64


def test_mp3_decodes_where_the_backend_can(tmp_path):
    path = tmp_path / "a.mp3"
    try:
        sf.write(path, tone(sr=44100), 44100, format="MP3")
    except Exception:
        pytest.skip("this libsndfile cannot write mp3")
    assert abs(peak_freq(decode(str(path)).samples, 44100) - 440) < 5


def test_stereo_is_downmixed_to_mono(tmp_path):
    left, right = tone(300), tone(300) * 0.5
    sf.write(tmp_path / "s.wav", np.stack([left, right], 1), 16000, subtype="FLOAT")
    d = decode(str(tmp_path / "s.wav"))
    assert d.channels == 2
    np.testing.assert_allclose(d.samples, (left + right) / 2, atol=1e-6)


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000])
def test_resampling_to_16k_keeps_pitch_and_length(sr):
    x = tone(1000, sr=sr, seconds=1.0)
    cfg = AudioConfig(trim_silence=False)
    y, segs = preprocess(x, sr, cfg)
    assert abs(len(y) - 16000) <= 2
    assert abs(peak_freq(y, 16000) - 1000) < 3
    assert segs[0].index == -1 and segs[0].start_s == 0.0


def test_peak_and_rms_normalisation():
    x = tone(amp=0.1)
    y, _ = preprocess(x, 16000, AudioConfig(trim_silence=False, normalize="peak"))
    assert np.max(np.abs(y)) == pytest.approx(1.0, abs=1e-5)
    y, _ = preprocess(x, 16000, AudioConfig(trim_silence=False, normalize="rms", rms_dbfs=-20))
    assert 20 * np.log10(np.sqrt(np.mean(y.astype(np.float64) ** 2))) == pytest.approx(-20, abs=0.01)
    y, _ = preprocess(x, 16000, AudioConfig(trim_silence=False, normalize="none"))
    np.testing.assert_array_equal(y, x)


def test_silence_trimming_removes_leading_and_trailing_silence():
    sil = np.zeros(8000, np.float32)
    x = np.concatenate([sil, tone(seconds=1.0), sil])
    y, _ = preprocess(x, 16000, AudioConfig(trim_silence=True))
    assert 15000 <= len(y) <= 17500
    y, _ = preprocess(x, 16000, AudioConfig(trim_silence=False))
    assert len(y) == len(x)


def test_segmentation_windows_inherit_and_cover():
    x = tone(seconds=4.0)
    y, segs = preprocess(x, 16000, AudioConfig(trim_silence=False, segment_s=1.5))
    assert [s.index for s in segs] == [0, 1, 2]
    assert [(s.start_s, s.end_s) for s in segs[:2]] == [(0.0, 1.5), (1.5, 3.0)]
    assert segs[-1].end_s == pytest.approx(4.0) and all(len(s.samples) == 24000 for s in segs)
    _, segs = preprocess(x, 16000, AudioConfig(trim_silence=False, segment_s=1.0, segment_hop_s=0.5))
    assert len(segs) == 7 and segs[1].start_s == 0.5


def test_segment_bounds_short_clip_and_small_tail():
    assert segment_bounds(8000, 16000, 1.5, None) == [(0, 8000)]
    assert segment_bounds(24000 + 1000, 16000, 1.5, None) == [(0, 24000)]  # tail < quarter window
    assert segment_bounds(24000 + 9000, 16000, 1.5, None) == [(0, 24000), (9000, 33000)]


def test_too_short_and_silent_inputs_raise_with_reason():
    with pytest.raises(AudioError) as e:
        preprocess(tone(seconds=0.05), 16000, AudioConfig(), "clip.wav")
    assert e.value.reason == "too_short" and "clip.wav" in str(e.value)
    with pytest.raises(AudioError) as e:
        preprocess(np.zeros(16000, np.float32), 16000, AudioConfig())
    assert e.value.reason == "silent"


def test_audio_config_validation():
    with pytest.raises(ConfigError, match="segment_s"):
        AudioConfig(segment_s=0.05)
