"""audio.py: every readable format in, every bad file out with one clear sentence."""

import numpy as np
import pytest
import soundfile as sf

from hummingface.audio import AudioError, fit_length, read_audio, resample, to_int16, write_audio


def tone(seconds=0.5, sr=16000, channels=1, freq=440.0):
    t = np.arange(int(seconds * sr)) / sr
    mono = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.stack([mono * (1 - 0.3 * c) for c in range(channels)]).astype(np.float32)


@pytest.mark.parametrize(
    "name, subtype",
    [
        ("u8.wav", "PCM_U8"),
        ("s16.wav", "PCM_16"),
        ("s24.wav", "PCM_24"),
        ("s32.wav", "PCM_32"),
        ("f32.wav", "FLOAT"),
        ("f64.wav", "DOUBLE"),
        ("x.flac", "PCM_16"),
        ("x.ogg", "VORBIS"),
        ("x.mp3", "MPEG_LAYER_III"),
    ],
)
def test_reads_every_format(tmp_path, name, subtype):
    audio = tone(channels=2, sr=22050)
    sf.write(tmp_path / name, audio.T, 22050, subtype=subtype)
    out, sr = read_audio(tmp_path / name)
    assert sr == 22050 and out.dtype == np.float32 and out.shape[0] == 2
    assert abs(out.shape[1] - audio.shape[1]) < 2200  # MP3 adds encoder delay/padding
    # Lossy codecs shift phase; compare loudness per channel instead of samples.
    assert np.allclose(np.sqrt((out**2).mean(axis=1)), np.sqrt((audio**2).mean(axis=1)), rtol=0.15)


def test_resamples_and_mixes_to_mono(tmp_path):
    sf.write(tmp_path / "in.wav", tone(seconds=1.0, sr=44100, channels=2).T, 44100)
    out, sr = read_audio(tmp_path / "in.wav", sample_rate=16000, mono=True)
    assert sr == 16000 and out.shape == (1, 16000)
    spectrum = np.abs(np.fft.rfft(out[0]))
    assert abs(np.argmax(spectrum) * 16000 / 16000 - 440) <= 1  # 1-s signal: 1-Hz bins


def test_resample_keeps_band_and_length():
    x = tone(seconds=1.0, sr=8000)
    y = resample(x, 8000, 44100)
    assert y.shape == (1, 44100)
    assert np.isclose(np.sqrt((y**2).mean()), np.sqrt((x**2).mean()), rtol=0.01)


@pytest.mark.parametrize("bit_depth, suffix", [(16, ".wav"), (24, ".wav"), (16, ".flac"), (24, ".flac")])
def test_write_round_trip(tmp_path, bit_depth, suffix):
    audio = tone(channels=2)
    path = write_audio(tmp_path / f"out{suffix}", audio, 16000, bit_depth=bit_depth)
    info = sf.info(path)
    assert info.subtype == f"PCM_{bit_depth}" and info.channels == 2
    back, _ = read_audio(path)
    assert np.abs(back - audio).max() < 2.0 ** (1 - bit_depth) * 2


def test_write_refuses_other_formats(tmp_path):
    with pytest.raises(AudioError, match=r"\.wav or \.flac"):
        write_audio(tmp_path / "out.mp3", tone(), 16000)


def test_write_clips_instead_of_wrapping(tmp_path):
    path = write_audio(tmp_path / "loud.wav", np.full((1, 100), 3.0, np.float32), 16000)
    back, _ = read_audio(path)
    assert back.max() > 0.99


def bad_files(tmp_path):
    """name -> (path, words the sentence must contain)"""
    good = tmp_path / "good.wav"
    sf.write(good, tone(seconds=1.0).T, 16000, subtype="PCM_16")
    data = good.read_bytes()
    (tmp_path / "truncated.wav").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("this is not audio at all, just words in a file")
    sf.write(tmp_path / "flac.flac", tone(seconds=1.0).T, 16000)
    flac = (tmp_path / "flac.flac").read_bytes()
    (tmp_path / "truncated.flac").write_bytes(flac[: len(flac) // 2])
    sf.write(tmp_path / "nan.wav", np.full((1000, 1), np.nan, np.float32), 16000, subtype="FLOAT")
    sf.write(tmp_path / "inf.wav", np.full((1000, 1), np.inf, np.float32), 16000, subtype="FLOAT")
    sf.write(tmp_path / "zero.wav", np.zeros((0, 1), np.float32), 16000)
    (tmp_path / "folder.wav").mkdir()
    return {
        "missing": (tmp_path / "missing.wav", "does not exist"),
        "empty": (tmp_path / "empty.wav", "empty"),
        "not audio": (tmp_path / "text.wav", "not an audio file"),
        "truncated wav": (tmp_path / "truncated.wav", "truncated"),
        "truncated flac": (tmp_path / "truncated.flac", "truncated or corrupt"),
        "nan": (tmp_path / "nan.wav", "NaN or infinite"),
        "inf": (tmp_path / "inf.wav", "NaN or infinite"),
        "zero samples": (tmp_path / "zero.wav", "no audio samples"),
        "folder": (tmp_path / "folder.wav", "folder"),
    }


@pytest.mark.parametrize(
    "case",
    ["missing", "empty", "not audio", "truncated wav", "truncated flac", "nan", "inf", "zero samples", "folder"],
)
def test_bad_files_give_one_sentence(tmp_path, case):
    path, words = bad_files(tmp_path)[case]
    with pytest.raises(AudioError) as error:
        read_audio(path)
    message = str(error.value)
    assert words in message and str(path) in message
    assert "\n" not in message and message.endswith(".")


def test_length_limit_checked_before_decoding(tmp_path):
    sf.write(tmp_path / "long.wav", tone(seconds=3.0).T, 16000)
    with pytest.raises(AudioError, match=r"3\.0 seconds long; the limit is 2\.0 seconds"):
        read_audio(tmp_path / "long.wav", max_seconds=2.0)
    assert read_audio(tmp_path / "long.wav", max_seconds=3.5)[0].shape == (1, 48000)


def test_fit_length_and_int16():
    x = np.ones((2, 10), np.float32)
    assert fit_length(x, 4).shape == (2, 4)
    assert fit_length(x, 12)[:, 10:].sum() == 0
    pcm = to_int16(np.array([[0.0, 1.0, -1.0, 2.0, np.nan]], np.float32))
    assert pcm.dtype == np.int16 and pcm.tolist() == [0, 32767, -32767, 32767, 0]
    assert to_int16(np.zeros((2, 5), np.float32)).shape == (5, 2)
