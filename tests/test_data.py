"""Training data: the note renderer, the readers, the music corpus and the ``data`` CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from hummingface.data.datasets import FolderDataset, NSynthDataset
from hummingface.data.gm import FAMILIES, QUALITIES, SOURCES
from hummingface.data.music import MusicConfig, render_music
from hummingface.data.notes import NoteRenderConfig, parse_int_list, plan_instruments, render_notes
from hummingface.data.qualities import measure_qualities
from hummingface.data.synth import FLUIDR3_GM
from hummingface.errors import UserError

needs_soundfont = pytest.mark.skipif(not FLUIDR3_GM.is_file(), reason="Debian fluid-soundfont-gm is not installed")
SR = 16000


def note_config(out: Path, seed: int = 3) -> NoteRenderConfig:
    """30 notes drawn from pitches 60-64 at velocity 100: every program plays them, so few are dropped."""
    return NoteRenderConfig(FLUIDR3_GM, out, pitches=tuple(range(60, 65)), velocities=(100,), seed=seed, limit=30,
                            workers=1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    if not FLUIDR3_GM.is_file():
        pytest.skip("Debian fluid-soundfont-gm is not installed")
    out = tmp_path_factory.mktemp("notes")
    render_notes(note_config(out), progress=False)
    return out


def load_examples(root: Path) -> dict[str, dict]:
    return {split: json.loads((root / f"nsynth-{split}" / "examples.json").read_text())
            for split in ("train", "valid", "test")}


@needs_soundfont
def test_layout_and_format(corpus):
    examples = load_examples(corpus)
    assert sum(map(len, examples.values())) >= 25  # 30 requested; only silent or clipped renders may go
    for split, notes in examples.items():
        audio = corpus / f"nsynth-{split}" / "audio"
        assert {p.stem for p in audio.glob("*.wav")} == set(notes)
        for note_str in notes:
            info = sf.info(audio / f"{note_str}.wav")
            assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 64000, "PCM_16")


@needs_soundfont
def test_labels_follow_nsynth(corpus):
    for notes in load_examples(corpus).values():
        for note_str, note in notes.items():
            assert note_str == note["note_str"]
            assert note_str == f"{note['instrument_str']}-{note['pitch']:03d}-{note['velocity']:03d}"
            assert FAMILIES[note["instrument_family"]] == note["instrument_family_str"]
            assert SOURCES[note["instrument_source"]] == note["instrument_source_str"]
            family_source = f"{note['instrument_family_str']}_{note['instrument_source_str']}_"
            assert note["instrument_str"].startswith(family_source)
            assert len(note["qualities"]) == len(QUALITIES)
            assert note["qualities_str"] == [q for q, on in zip(QUALITIES, note["qualities"], strict=True) if on]
            assert ("reverb" in note["qualities_str"]) == ("reverb" in note["variant"])
            assert note["sample_rate"] == 16000 and 60 <= note["pitch"] <= 64 and note["velocity"] == 100


@needs_soundfont
def test_dry_notes_sound_at_the_requested_pitch(corpus):
    checked = 0
    for split, notes in load_examples(corpus).items():
        for note in notes.values():
            if note["variant"] != "dry" or note["gm_program"] in (86, 87):  # fifths / bass+lead: two pitches
                continue
            audio, _ = sf.read(corpus / f"nsynth-{split}" / "audio" / f"{note['note_str']}.wav")
            f0 = 440.0 * 2 ** ((note["pitch"] - 69) / 12)
            # The autocorrelation's strongest lag within 50-1000 Hz is the period (or a multiple of it); a
            # semitone off would put f0 * lag / SR 0.06 away from a whole number.
            spectrum = np.fft.rfft(audio[1600:17600], 32768)
            ac = np.fft.irfft(np.abs(spectrum) ** 2)[:320]
            lag = 16 + np.argmax(ac[16:])
            lag += 0.5 * (ac[lag - 1] - ac[lag + 1]) / (ac[lag - 1] - 2 * ac[lag] + ac[lag + 1])  # parabolic peak
            harmonic = f0 * lag / SR
            assert abs(harmonic - round(harmonic)) < 0.03 and round(harmonic) >= 1, note["note_str"]
            checked += 1
    assert checked >= 3


def test_splits_are_by_program_and_instruments_outnumber_programs():
    instruments = plan_instruments(NoteRenderConfig(FLUIDR3_GM, Path("unused")))
    assert len(instruments) > 128 * 2
    programs = {split: {i.gm.program for i in instruments if i.split == split} for split in ("train", "valid", "test")}
    assert programs["train"] and programs["valid"] and programs["test"]
    assert not (programs["train"] & programs["test"]) and not (programs["train"] & programs["valid"])
    assert not (programs["valid"] & programs["test"])
    every = set().union(*programs.values())
    assert not every & {55, 113, *range(96, 104), *range(115, 128)}  # not pitched instruments
    assert len({i.name for i in instruments}) == len(instruments)
    other_seed = plan_instruments(NoteRenderConfig(FLUIDR3_GM, Path("unused"), seed=1))
    assert [i.split for i in other_seed] != [i.split for i in instruments]


@needs_soundfont
def test_same_seed_renders_the_same_bytes(corpus, tmp_path):
    render_notes(note_config(tmp_path), progress=False)
    assert load_examples(tmp_path) == load_examples(corpus)
    for wav in (tmp_path / "nsynth-train" / "audio").glob("*.wav"):
        assert wav.read_bytes() == (corpus / "nsynth-train" / "audio" / wav.name).read_bytes()


def test_qualities_from_measurements():
    t = np.arange(64000) / SR
    sustained = (0.3 * np.sin(2 * np.pi * 220 * t) * (t < 3.0)).astype(np.float32)
    pluck = (0.5 * np.sin(2 * np.pi * 220 * t) * np.exp(-t / 0.05)).astype(np.float32)
    pluck[:40] += np.random.default_rng(0).uniform(-0.5, 0.5, 40).astype(np.float32)
    buzzy = sum(np.sin(2 * np.pi * 220 * k * t) / k**0.3 for k in range(1, 30)).astype(np.float32) * 0.02

    def flags(audio, **kwargs):
        values = measure_qualities(audio, SR, pitch=57, program=0, **{"reverb": False, "drive": False, **kwargs})
        return {q for q, on in zip(QUALITIES, values, strict=True) if on}

    assert flags(sustained) == {"dark"}
    assert {"percussive", "fast_decay"} <= flags(pluck)
    assert "bright" in flags(buzzy) and "long_release" in flags(buzzy)
    assert {"reverb", "distortion"} <= flags(sustained, reverb=True, drive=True)


def test_parse_int_list():
    assert parse_int_list("21-23,60", "pitches", 0, 127) == (21, 22, 23, 60)
    for bad in ("21..108", "", "x", "108-21", "0,200"):
        with pytest.raises(UserError):
            parse_int_list(bad, "velocities", 1, 127)


def write_nsynth_fixture(root: Path) -> None:
    """Two notes exactly as the real NSynth download stores them (its fields only)."""
    folder = root / "nsynth-valid"
    (folder / "audio").mkdir(parents=True)
    examples = {}
    for i, (family, pitch) in enumerate([("guitar", 60), ("bass", 40)]):
        note_str = f"{family}_acoustic_00{i}-{pitch:03d}-050"
        examples[note_str] = {
            "note": i, "note_str": note_str, "instrument": i, "instrument_str": note_str[:-8],
            "pitch": pitch, "velocity": 50, "sample_rate": 16000, "qualities": [0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            "qualities_str": ["dark"], "instrument_family": FAMILIES.index(family), "instrument_family_str": family,
            "instrument_source": 0, "instrument_source_str": "acoustic",
        }
        tone = 0.1 * np.sin(2 * np.pi * 440 * 2 ** ((pitch - 69) / 12) * np.arange(64000) / SR)
        sf.write(folder / "audio" / f"{note_str}.wav", tone, SR, subtype="PCM_16")
    (folder / "examples.json").write_text(json.dumps(examples))


def test_nsynth_reader_on_the_real_layout(tmp_path):
    write_nsynth_fixture(tmp_path)
    dataset = NSynthDataset(tmp_path, "valid", transform=lambda x: x)
    assert len(dataset) == 2
    features, labels = dataset[0]
    assert features.shape == (1, 64000) and features.dtype == torch.float32
    assert labels["note_str"] == "bass_acoustic_001-040-050"
    assert (labels["pitch"], labels["velocity"], labels["family"], labels["source"]) == (40, 50, 0, 0)
    assert labels["qualities"].tolist() == [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert len(NSynthDataset(tmp_path, "valid", families=["guitar"], transform=lambda x: x)) == 1
    assert len(NSynthDataset(tmp_path, "valid", pitches=range(21, 50), transform=lambda x: x)) == 1
    assert len(NSynthDataset(tmp_path, "valid", sources=["synthetic"], transform=lambda x: x)) == 0
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=2)))
    assert batch[0].shape == (2, 1, 64000) and batch[1]["pitch"].tolist() == [40, 60]
    with pytest.raises(UserError, match="family"):
        NSynthDataset(tmp_path, "valid", families=["kazoo"], transform=lambda x: x)
    with pytest.raises(UserError, match="nsynth-test"):
        NSynthDataset(tmp_path, "test")


def test_nsynth_reader_default_transform_is_the_shared_spectrogram(tmp_path):
    write_nsynth_fixture(tmp_path)
    features, _ = NSynthDataset(tmp_path, "valid")[0]
    assert features.ndim == 3 and features.shape[0] == 1 and torch.isfinite(features).all()


@needs_soundfont
def test_nsynth_reader_on_our_render(corpus):
    dataset = NSynthDataset(corpus, "train", transform=lambda x: x)
    features, labels = dataset[0]
    assert len(dataset) >= 15 and features.shape == (1, 64000) and features.abs().max() > 0.001
    assert labels["note_str"].startswith(FAMILIES[labels["family"]] + "_")


def test_folder_reader_labels_by_prefix(tmp_path):
    t8 = np.arange(4000) / 8000
    sf.write(tmp_path / "7_jackson_0.wav", 0.5 * np.sin(2 * np.pi * 300 * t8), 8000)
    sf.write(tmp_path / "7_theo_1.wav", 0.5 * np.sin(2 * np.pi * 300 * t8), 8000)
    (tmp_path / "more").mkdir()
    long_stereo = 0.2 * np.random.default_rng(0).standard_normal((44100 * 5, 2))
    sf.write(tmp_path / "more" / "3_nicolas_2.flac", long_stereo, 44100)
    dataset = FolderDataset(tmp_path, transform=lambda x: x)
    assert dataset.classes == ["3", "7"] and len(dataset) == 3
    features, labels = dataset[1]
    assert features.shape == (1, 64000)
    assert labels["label_str"] == "7" and labels["label"] == 1
    assert features[0, :7000].abs().max() > 0.3 and features[0, 9000:].abs().max() == 0  # 0.5 s at 16 kHz, padded
    long_features, long_labels = dataset[2]
    assert long_labels["label_str"] == "3" and long_labels["label"] == 0 and long_features[0, -100:].abs().max() > 0
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no audio"):
        FolderDataset(tmp_path / "empty", transform=lambda x: x)


@needs_soundfont
def test_music_clips(tmp_path):
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    t = np.arange(22050 * 25) / 22050
    song = np.stack([np.sin(2 * np.pi * 330 * t), np.sin(2 * np.pi * 440 * t)], axis=1) * 0.3
    sf.write(recordings / "song.ogg", song, 22050)
    config = MusicConfig(tmp_path / "music", minutes=1.0, seed=1, audio_dir=recordings, clips_per_piece=1,
                         music21_share=0.25)
    summary = render_music(config, progress=False)
    manifest = json.loads((tmp_path / "music" / "manifest.json").read_text())
    clips = manifest["clips"]
    assert manifest["sample_rate"] == 44100 and len(clips) == 6
    assert {c["kind"] for c in clips} == {"audio", "music21", "procedural"}
    assert sum(sum(kinds.values()) for kinds in summary.clips.values()) == 6
    pieces = {split: {c["piece"] for c in clips if c["split"] == split} for split in ("train", "valid")}
    assert pieces["valid"] and not pieces["train"] & pieces["valid"]
    for clip in clips:
        info = sf.info(tmp_path / "music" / clip["path"])
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (44100, 2, 441000, "PCM_16")
    procedural = next(c for c in clips if c["kind"] == "procedural")
    audio, _ = sf.read(tmp_path / "music" / procedural["path"])
    assert not np.allclose(audio[:, 0], audio[:, 1])  # stereo kept
    power = np.abs(np.fft.rfft(audio.mean(axis=1))) ** 2
    freqs = np.fft.rfftfreq(audio.shape[0], 1 / 44100)
    assert power[freqs > 8000].sum() / power.sum() > 1e-3  # hats and cymbals reach the high band


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hummingface", *args], capture_output=True, text=True,
                          timeout=120)


def assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize("make_soundfont, words", [
    (lambda d: d / "missing.sf2", ("does not exist",)),
    (lambda d: (d / "junk.sf2").write_bytes(b"not a soundfont at all") and d / "junk.sf2", ("not a SoundFont",)),
    (lambda d: (d / "cut.sf2").write_bytes(b"RIFF\x00\x10\x00\x00sfbkLIST" + bytes(64)) and d / "cut.sf2",
     ("corrupt", "cut.sf2")),
])
def test_cli_bad_soundfont(tmp_path, make_soundfont, words):
    result = run_cli("data", "notes", "--soundfont", str(make_soundfont(tmp_path)), "--out", str(tmp_path / "o"))
    assert_one_line_error(result, *words)


@needs_soundfont
def test_cli_bad_arguments(tmp_path, capsys):
    from hummingface.__main__ import main

    def assert_fails(*args: str, words: tuple[str, ...]) -> None:
        assert main(["data", *args]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and all(word in lines[0] for word in words), lines

    (tmp_path / "file").write_text("x")
    base = ("notes", "--soundfont", str(FLUIDR3_GM))
    assert_fails(*base, "--out", str(tmp_path / "file" / "sub"), words=("Cannot write", "file"))
    assert_fails(*base, "--out", str(tmp_path), "--pitches", "21..108", words=("--pitches", "21..108"))
    assert_fails(*base, "--out", str(tmp_path), "--velocities", "0,200", words=("--velocities",))
    assert_fails("music", "--out", str(tmp_path), "--minutes", "1", "--audio", str(tmp_path / "nope"),
                 words=("--audio", "not a folder"))
    assert_fails("music", "--out", str(tmp_path), "--minutes", "0", words=("--minutes",))


def _children(pid: int) -> set[int]:
    """Process ids whose parent is ``pid`` (Linux /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@needs_soundfont
def test_cli_kill_stops_the_render_workers(tmp_path):
    # A render left in the background (nohup ... &) and stopped with `kill` must not leave its worker processes
    # rendering into the folder: SIGTERM unwinds like Ctrl-C, and the pool is terminated.
    process = subprocess.Popen([sys.executable, "-m", "hummingface", "data", "notes", "--soundfont", str(FLUIDR3_GM),
                                "--out", str(tmp_path), "--limit", "2500"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while not any(tmp_path.glob("nsynth-*/audio/*.wav")) and time.monotonic() < deadline:
        time.sleep(0.2)
    workers = _children(process.pid)
    assert workers and process.poll() is None, "the render never started"
    process.terminate()
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and err.strip().endswith("interrupted."), err
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers)


@needs_soundfont
def test_cli_renders_notes(tmp_path):
    result = run_cli("data", "notes", "--soundfont", str(FLUIDR3_GM), "--out", str(tmp_path), "--limit", "5",
                     "--pitches", "60-62")
    assert result.returncode == 0, result.stderr
    assert "notes in" in result.stdout and "train" in result.stdout
    assert len(list(tmp_path.glob("nsynth-*/audio/*.wav"))) >= 4
