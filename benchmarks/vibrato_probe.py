"""Can the vocoder know a note's vibrato? Do the note models' mels hold it, and can the timbre predict it?

    PYTHONPATH=. python -m benchmarks.vibrato_probe [--data data/notes44-fluidr3] [--timbre checkpoints/cvae]
        [--notes 150] [--out docs/benchmarks/vibrato_probe.json]

**Held in the mel?**
On up to ``--notes`` validation notes of the families that bend their pitch (string, brass, reed, flute, vocal,
synth lead) that sound from 0.5 to 2.4 s, three pitch curves are compared in the vibrato band (2-10 Hz: a 3-frame
mean minus a 25-frame mean, at the features' 62.5 frames/s):

- ``tracked``: the 44.1-kHz note's f0 (:func:`~hummingface.train.vocoder.track_f0`, what the vocoder trains on);
- ``true_mel``: how far each frame of the note's own 16-kHz mel features is shifted in pitch from the note's
  median frame -- the cross-correlation peak (5-cent steps, parabola-refined) of the two frames' magnitudes on a
  log-frequency axis from 1.5 x f0 to 6.5 kHz (read off the mel axis as the vocoder reads its partials), where a
  pitch change is a pure shift;
- ``decoded_mel``: the same of the ``--timbre`` model's reconstruction (posterior mean at the note's pitch).

On the notes with vibrato (tracked band RMS > 4 cents) it reports the median ratio of each mel curve's band RMS
to the tracked one's and their median correlation; on steady notes (< 1.5 cents) the mel curves' RMS (the
probe's own noise).

**Predictable from the timbre?** A small network (one hidden layer of 128) reads each training note's
time-pooled features (mean and standard deviation of each mel band over 0.3-3.2 s, and the pitch) -- true
features and the ``--timbre`` model's reconstructions alike -- and learns the note's tracked vibrato band RMS
(L1, 3 000 Adam steps of 256). On all validation notes (other GM programs) its mean absolute error is set
beside that of a constant, the training notes' median. The f0 tracks come from the vocoder's training cache
(``train vocoder`` writes it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import librosa
import numpy as np
import torch
from scipy.ndimage import uniform_filter1d

from hummingface.data.datasets import read_note
from hummingface.models.timbre import Timbre
from hummingface.models.vocoder import TRUSTED_HZ, Vocoder, VocoderConfig
from hummingface.train.data import load_features
from hummingface.train.vocoder import VocoderNotes, VocoderTask, VocoderTrainConfig, track_f0

FAMILIES = ("string", "brass", "reed", "flute", "vocal", "synth_lead")
STEP_CENTS = 5
MAX_SHIFT = 12  # steps: +-60 cents
SPAN = slice(31, 150)  # frames 0.5-2.4 s


def mel_pitch_shift(vocoder: Vocoder, features: torch.Tensor, pitch: float) -> np.ndarray:
    """Features ``(n_mels, T)`` (normalised log-mel) -> ``(T,)`` each frame's pitch shift in cents from the median
    frame (see the module docstring); the features are read on the log-frequency grid as the vocoder reads its
    partials (:meth:`Vocoder.read_mel`)."""
    lowest = max(1.5 * librosa.midi_to_hz(pitch), 120.0)
    grid = lowest * 2 ** (np.arange(0, 1200 * np.log2(TRUSTED_HZ / lowest), STEP_CENTS) / 1200)
    log_mel = (features * vocoder.log.scale + vocoder.log.offset).T[None]  # (1, T, n_mels), ln magnitude
    hz = torch.from_numpy(grid).float().expand(*log_mel.shape[:2], -1)
    curve = vocoder.read_mel(log_mel, log_mel[..., -1], hz)[0].exp().numpy()  # (T, G): below TRUSTED_HZ, no top
    curve = curve - curve.mean(1, keepdims=True)
    reference = np.median(curve, 0)[MAX_SHIFT: len(grid) - MAX_SHIFT]
    scores = np.stack([curve[:, MAX_SHIFT + s: len(grid) - MAX_SHIFT + s] @ reference
                       for s in range(-MAX_SHIFT, MAX_SHIFT + 1)], 1)  # (T, shifts)
    best = scores.argmax(1).clip(1, 2 * MAX_SHIFT - 1)
    rows = np.arange(len(best))
    left, centre, right = scores[rows, best - 1], scores[rows, best], scores[rows, best + 1]
    offset = np.clip(0.5 * (left - right) / np.minimum(left - 2 * centre + right, -1e-9), -1, 1)
    return (best - MAX_SHIFT + offset) * STEP_CENTS


def vibrato_band(cents: np.ndarray) -> np.ndarray:
    return (uniform_filter1d(cents, 3) - uniform_filter1d(cents, 25))[SPAN]


def pooled(features: np.ndarray, pitch: np.ndarray) -> torch.Tensor:
    """``(N, n_mels, T)`` features and ``(N,)`` MIDI pitch -> ``(N, 2 n_mels + 1)`` float32: per band mean and
    standard deviation over 0.3-3.2 s, and the pitch / 100."""
    span = features[:, :, 20:200].astype(np.float32)
    return torch.from_numpy(np.concatenate([span.mean(-1), span.std(-1), pitch[:, None] / 100], 1).astype(np.float32))


def band_rms(notes: VocoderNotes) -> np.ndarray:
    """``(N,)`` vibrato band RMS (cents) of each note's tracked f0 over 0.5-2.4 s."""
    cents = 1200 * np.log2(notes.f0 / librosa.midi_to_hz(notes.pitch)[:, None])
    return np.array([vibrato_band(curve).std() for curve in cents])


def predictability(data: str, timbre: str, seed: int = 0) -> dict:
    """Mean absolute error (cents) of a small network predicting the vibrato band RMS of validation notes from
    their pooled true and reconstructed features, beside a constant's (see the module docstring)."""
    task = VocoderTask(VocoderTrainConfig(data=data, timbre=timbre, valid_notes=10**6), VocoderConfig())
    task.load_data(progress=False)
    train, valid = task.train_set, task.valid_set
    inputs = torch.cat([pooled(train.features, train.pitch), pooled(train.decoded, train.pitch)])
    target = torch.from_numpy(np.tile(band_rms(train), 2)).float()
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(inputs.shape[1], 128), torch.nn.GELU(), torch.nn.Linear(128, 1))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
    for _ in range(3000):
        batch = torch.randint(len(inputs), (256,))
        loss = (torch.nn.functional.softplus(net(inputs[batch])[:, 0]) - target[batch]).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    truth = band_rms(valid)
    constant = float(np.median(target.numpy()))
    out = {"train_notes": len(train), "valid_notes": len(valid), "constant_cents": constant,
           "constant_mae": float(np.abs(truth - constant).mean())}
    with torch.no_grad():
        for name, source in (("true_mel", valid.features), ("decoded_mel", valid.decoded)):
            guess = torch.nn.functional.softplus(net(pooled(source, valid.pitch))[:, 0]).numpy()
            out[f"{name}_mae"] = float(np.abs(truth - guess).mean())
            out[f"{name}_correlation"] = float(np.corrcoef(truth, guess)[0, 1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="data/notes44-fluidr3")
    parser.add_argument("--timbre", default="checkpoints/cvae")
    parser.add_argument("--notes", type=int, default=150)
    parser.add_argument("--out", default="docs/benchmarks/vibrato_probe.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    vocoder = Vocoder(VocoderConfig()).eval()  # untrained: only its fixed reading of the mel axis is used
    config = vocoder.config
    notes = load_features(args.data, "valid", config.spectrogram, range(24, 97), progress=False)
    timbre = Timbre.from_folder(args.timbre, device="cpu")
    chosen = [i for i in range(len(notes)) if notes.note_ids[i].startswith(FAMILIES)][: args.notes]
    rows = []
    for i in chosen:
        pitch = int(notes.pitch[i])
        audio = torch.from_numpy(read_note(Path(args.data) / "nsynth-valid" / "audio" / f"{notes.note_ids[i]}.wav",
                                           config.sample_rate))
        f0, sounding = track_f0(audio, torch.tensor([pitch]), config.sample_rate, config.frame_rate,
                                notes.features.shape[-1])
        if not sounding[0, SPAN].all():
            continue
        features = notes.batch(np.array([i]))["features"]
        with torch.inference_mode():
            decoded = timbre.decode_features(timbre.encode_features(features, pitch), pitch)
        tracked = vibrato_band(1200 * np.log2(f0[0].numpy() / librosa.midi_to_hz(pitch)))
        row = {"note": notes.note_ids[i], "tracked": float(tracked.std())}
        for name, source in (("true_mel", features[0]), ("decoded_mel", decoded[0])):
            shift = vibrato_band(mel_pitch_shift(vocoder, source.float(), pitch))
            row[name] = float(shift.std())
            row[f"{name}_correlation"] = float(np.corrcoef(tracked, shift)[0, 1]) if shift.std() > 0 else 0.0
        rows.append(row)
    vibrato = [r for r in rows if r["tracked"] > 4]
    steady = [r for r in rows if r["tracked"] < 1.5]
    summary = {"notes": len(rows), "vibrato_notes": len(vibrato), "steady_notes": len(steady),
               "tracked_rms_cents": float(np.median([r["tracked"] for r in vibrato]))}
    for name in ("true_mel", "decoded_mel"):
        summary[name] = {
            "rms_ratio": float(np.median([r[name] / r["tracked"] for r in vibrato])),
            "correlation": float(np.median([r[f"{name}_correlation"] for r in vibrato])),
            "steady_rms_cents": float(np.median([r[name] for r in steady])),
        }
    summary["predictability"] = predictability(args.data, args.timbre)
    print(json.dumps(summary, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"summary": summary, "notes": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
