"""Instruments from designs, played back by real players: tuning, sustain, seams, speed, MIDI render, slider names.

    OMP_NUM_THREADS=2 PYTHONPATH=. python benchmarks/instrument.py [--weights checkpoints]
        [--out docs/benchmarks/instrument.json] [--sections players,speed,render,names]

On the shipped weights (DESIGN.md, "How we measure: instruments"):

- **players**: the cvae's default design (the mean latent) and the gan (keyboard and organ, seed 0) are
  exported (24-96, every 3 semitones) and every key 30-90 that was *not* sampled is held 8 s (released at 8 s,
  rendered to 9 s) through pysfizz (the .sfz) and FluidSynth (the .sf2) at 44.1 kHz. Pitch: median pyin f0
  of 1-3 s within ±0.5 semitone of the key. Beside it, the same measure on the sampled notes themselves (what
  the model gave the player), and for the gan the keys inside the pitch range its family was trained on.
  Sustain (sustaining sounds): the level at 6.8-7.2 s within 20 dB of 0.5-1.5 s.
  Seams: every loop seam inside the hold, placed from the loop points and the re-pitch ratio; a click is
  high-passed (3 kHz) energy in the 5 ms around the seam more than 3 dB above the surrounding 50 ms.
- **export speed** on the threads torch is given: a 25-pitch instrument (cvae, one layer) and 25 pitches x 4
  velocity layers (gan), build and write, median of 3.
- **MIDI render**: a 3-minute piece of 4-voice chords (a chord per beat at 120 bpm, some held for two beats,
  with the sustain pedal every fourth bar) played with the cvae default design; real-time factor =
  render seconds / audio seconds (the multisample build is reported apart); onsets: librosa onsets of the mix
  (hop 2.9 ms), each chord's nearest onset within 20 ms of its MIDI time.
- **named sliders**: for every timbre checkpoint with ``slider_names.json``, each named word is checked on 50
  *new* random base sounds (seed 1; the names were found with seed 0): the share on which moving the slider
  ±1 std moves the named descriptor the stated way (target >= 90 %).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import librosa
import numpy as np
import torch

from hummingface.data.synth import FluidRenderer
from hummingface.instruments.export import export
from hummingface.instruments.loop import seam_click_db
from hummingface.instruments.midi import Note
from hummingface.instruments.multisample import MultisampleConfig, build_multisample
from hummingface.instruments.names import NAMES_FILE, slider_changes
from hummingface.instruments.render import RenderConfig, render_notes
from hummingface.instruments.source import Design, source_for
from hummingface.models.timbre import Timbre

SR = 44100
HOLD_S, TOTAL_S = 8.0, 9.0
KEYS = range(30, 91)


def midi_pitch(audio: np.ndarray, sr: int, t0: float = 1.0, t1: float = 3.0) -> float | None:
    """Median pyin f0 (fractional MIDI) of ``t0``-``t1`` s, at 16 kHz; ``None`` when unvoiced."""
    clip = librosa.resample(np.asarray(audio[int(t0 * sr) : int(t1 * sr)], dtype=np.float32), orig_sr=sr,
                            target_sr=16000)
    f0, voiced, _ = librosa.pyin(clip, fmin=librosa.midi_to_hz(20), fmax=librosa.midi_to_hz(100), sr=16000,
                                 frame_length=2048)
    f0 = f0[voiced & np.isfinite(f0)]
    return float(librosa.hz_to_midi(np.median(f0))) if f0.size else None


def level_db(audio: np.ndarray, t0: float, t1: float) -> float:
    return float(10 * np.log10(np.mean(np.square(audio[int(t0 * SR) : int(t1 * SR)])) + 1e-20))


def in_tune(pitch: float | None, key: int) -> bool:
    return pitch is not None and abs(pitch - key) <= 0.5


def player_figures(instrument, folder: Path) -> dict:
    """Every un-sampled key of 30-90 through pysfizz and FluidSynth: tuning, sustain, seams."""
    import pysfizz

    export(instrument, folder, "all")
    sfizz = pysfizz.Synth(sample_rate=SR)
    if not sfizz.load_sfz_file(folder / f"{instrument.name}.sfz"):
        raise RuntimeError("pysfizz could not load the exported .sfz")
    fluid = FluidRenderer(folder / f"{instrument.name}.sf2", SR, gain=0.5, effects=False)
    fluid.select(0, 0)
    roots = {s.root for s in instrument.samples}
    keys = [k for k in KEYS if k not in roots]
    players = {
        "sfizz": lambda key: sfizz.render_note(key, 100, HOLD_S, TOTAL_S).mean(axis=0),
        "fluidsynth": lambda key: fluid.note(key, 100, int(HOLD_S * SR), int(TOTAL_S * SR)),
    }
    out = {"keys": len(keys)}
    for name, play in players.items():
        tuned, sustained, clicks, errors = 0, 0, [], []
        for key in keys:
            audio = play(key)
            pitch = midi_pitch(audio, SR)
            tuned += in_tune(pitch, key)
            errors.append(None if pitch is None else round(pitch - key, 3))
            sustained += level_db(audio, 6.8, 7.2) >= level_db(audio, 0.5, 1.5) - 20
            sample = instrument.nearest(key, 100)
            if sample.loop is not None:
                ratio = 2 ** ((key - sample.root) / 12) * instrument.sample_rate / SR  # sample frames per output
                at = sample.loop.end + 1 + sample.loop.length * np.arange(64)
                seams = np.round(at / ratio).astype(int)
                clicks.extend(seam_click_db(audio, seams[seams < (HOLD_S - 0.1) * SR], SR).tolist())
        out[name] = {
            "pitch_within_half_semitone": tuned / len(keys),
            "sustained_at_7s": sustained / len(keys) if instrument.sustaining else None,
            "seams": len(clicks),
            "seams_click_free": float(np.mean(np.asarray(clicks) <= 3.0)) if clicks else None,
            "seam_db_median": float(np.median(clicks)) if clicks else None,
            "seam_db_max": float(np.max(clicks)) if clicks else None,
            "pitch_errors_st": errors,
        }
    fluid.close()
    return out


def sampled_pitch(instrument) -> float:
    """The share of sampled notes (30-90) the model itself rendered within ±0.5 semitone: the players' ceiling."""
    samples = [s for s in instrument.samples if s.root in KEYS and s.velocities[1] >= 100]
    return float(np.mean([in_tune(midi_pitch(s.audio, instrument.sample_rate), s.root) for s in samples]))


def export_speed(source, velocities, folder: Path, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        instrument = build_multisample(source, MultisampleConfig(velocities=velocities, name="speed"))
        export(instrument, folder, "all")
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def chord_piece(minutes: float = 3.0, bpm: float = 120.0, seed: int = 0) -> tuple[list[Note], list[float]]:
    """4-voice chords, one per beat (every eighth held two beats), sustain pedal on every fourth bar."""
    rng = np.random.default_rng(seed)
    beat = 60.0 / bpm
    progression = [(48, 55, 64, 67), (45, 52, 60, 64), (41, 48, 57, 65), (43, 50, 59, 67)]
    notes, onsets = [], []
    t, index = 0.0, 0
    while t < minutes * 60 - 2 * beat:
        chord = progression[(index // 4) % 4]
        length = 2 if index % 8 == 7 else 1
        pedalled = (index // 16) % 4 == 3
        end = t + (length + (1.5 if pedalled else 0)) * beat * 0.9
        for pitch in chord:
            notes.append(Note(t, end, int(pitch + 12 * rng.integers(0, 2) * (pitch < 50)), int(rng.integers(70, 110))))
        onsets.append(t)
        t += length * beat
        index += 1
    return notes, onsets


def render_figures(instrument) -> dict:
    notes, onsets = chord_piece()
    started = time.perf_counter()
    audio = render_notes(notes, instrument, RenderConfig())
    seconds = time.perf_counter() - started
    mono = audio.mean(axis=0)
    hop = 128
    found = librosa.onset.onset_detect(y=mono, sr=SR, hop_length=hop, units="time", backtrack=True)
    errors = np.array([np.min(np.abs(found - t)) for t in onsets]) if found.size else np.full(len(onsets), np.inf)
    return {
        "notes": len(notes),
        "audio_seconds": audio.shape[1] / SR,
        "render_seconds": seconds,
        "rtf": seconds / (audio.shape[1] / SR),
        "onsets_within_20ms": float(np.mean(errors <= 0.020)),
        "onset_error_median_ms": float(np.median(errors) * 1000),
        "peak": float(np.abs(audio).max()),
    }


def slider_name_figures(weights: str, count: int = 50, seed: int = 1) -> dict:
    out = {}
    for name in ("cvae", "vae", "mog-vae", "ae"):
        timbre = Timbre.load(name, weights, "cpu")
        path = timbre.folder / NAMES_FILE
        if not path.is_file():
            continue
        names = json.loads(path.read_text())
        named = [entry["slider"] - 1 for entry in names["sliders"] if entry["named"]]
        changes = slider_changes(timbre, count=count, seed=seed, sliders=named)
        checks = []
        for entry in names["sliders"]:
            for term in entry["named"]:
                moved = changes[entry["slider"] - 1][term["descriptor"]] * term["direction"]
                checks.append({"slider": entry["slider"], "label": entry["label"], "descriptor": term["descriptor"],
                               "direction": term["direction"], "agreement": float(np.mean(moved > 0))})
        out[name] = {
            "sliders": len(names["sliders"]),
            "named_sliders": sum(1 for e in names["sliders"] if e["label"]),
            "checks": checks,
            "words_at_90_percent": float(np.mean([c["agreement"] >= 0.9 for c in checks])) if checks else None,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="checkpoints")
    parser.add_argument("--out", default="docs/benchmarks/instrument.json")
    parser.add_argument("--sections", default="players,speed,render,names",
                        help="comma-separated subset to measure again; the others are kept from --out")
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    out = Path(args.out)
    every = {"players", "speed", "render", "names"}
    report = json.loads(out.read_text()) if out.is_file() and sections != every else {}
    report["threads"] = torch.get_num_threads()
    designs = {"cvae (mean)": Design("cvae"), "gan keyboard s0": Design("gan", family="keyboard"),
               "gan organ s0": Design("gan", family="organ")}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for label, design in designs.items() if "players" in sections else ():
            report.setdefault("players", {})
            source = source_for(design, weights=args.weights, device="cpu")
            instrument = build_multisample(source, MultisampleConfig(name=label.split()[0] + "_bench"))
            figures = player_figures(instrument, scratch / label.replace(" ", "_"))
            figures["sustaining"] = instrument.sustaining
            figures["sampled_notes_in_tune"] = sampled_pitch(instrument)
            if design.model == "gan":  # the keys inside the pitch range the family was trained on
                trained = source.generator.family_pitches(design.family)
                keys = [k for k in KEYS if k not in {s.root for s in instrument.samples}]
                for player in ("sfizz", "fluidsynth"):
                    errors = [e for k, e in zip(keys, figures[player]["pitch_errors_st"], strict=True) if k in trained]
                    figures[player]["trained_range"] = [trained.start, trained.stop - 1]
                    figures[player]["pitch_within_half_semitone_trained_range"] = float(
                        np.mean([e is not None and abs(e) <= 0.5 for e in errors])) if errors else None
            report["players"][label] = figures
            print(label, {k: v for k, v in figures.items() if k not in ("sfizz", "fluidsynth")},
                  {p: {k: v for k, v in figures[p].items() if k != "pitch_errors_st"} for p in ("sfizz", "fluidsynth")})
        cvae = source_for(Design("cvae"), weights=args.weights, device="cpu")
        gan = source_for(Design("gan", family="keyboard"), weights=args.weights, device="cpu")
        if "speed" in sections:
            report["export_seconds"] = {
                "cvae_25_pitches": export_speed(cvae, None, scratch / "speed1"),
                "gan_25_pitches_x4_velocities": export_speed(gan, None, scratch / "speed2"),
            }
            print("export", report["export_seconds"])
        if "render" in sections:
            started = time.perf_counter()
            instrument = build_multisample(cvae, MultisampleConfig(pitches=(36, 84), name="cvae_render"))
            report["midi_render"] = {"multisample_seconds": time.perf_counter() - started,
                                     **render_figures(instrument)}
            print("render", report["midi_render"])
    if "names" in sections:
        report["named_sliders"] = slider_name_figures(args.weights)
        for name, figures in report["named_sliders"].items():
            print("names", name, {k: v for k, v in figures.items() if k != "checks"})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=float) + "\n")  # numpy scalars as plain numbers
    print(f"Wrote {out}.")


if __name__ == "__main__":
    main()
