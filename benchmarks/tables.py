"""README's figure tables, generated from the committed benchmark JSONs under ``docs/benchmarks/``.

    python benchmarks/tables.py            # print every table
    python benchmarks/tables.py --write    # rewrite them in README.md, between their markers

Each table sits in README between ``<!-- table: NAME -->`` and ``<!-- end table -->``; its JSON is rewritten by
the benchmark command named above it (e.g. ``python benchmarks/notes.py --out docs/benchmarks/notes.json``).
The best value of each column is bold.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks"
ORDER = ("ae", "vae", "mog-vae", "cvae")  # the timbre models as README introduces them
MARKER = re.compile(r"(<!-- table: (?P<name>[\w-]+) -->\n).*?(<!-- end table -->)", re.S)


def bold_best(rows: list[list[str]], values: list[list[float | None]], lower: list[bool | None]) -> None:
    """Bold, in place, each column's best cell (``lower``: smaller is better; ``None``: not ranked)."""
    for column, smaller in enumerate(lower):
        ranked = [(v[column], i) for i, v in enumerate(values) if v[column] is not None]
        if smaller is None or not ranked:
            continue
        _, best = min(ranked) if smaller else max(ranked)
        rows[best][column] = f"**{rows[best][column]}**"


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


def notes_table(report: dict) -> str:
    """Timbre models: ``benchmarks/notes.py``."""
    rows, values = [], []
    for name, m in sorted(report["models"].items(), key=lambda item: ORDER.index(item[0])):
        init = json.loads((ROOT / "checkpoints" / name / "train_config.json").read_text()).get("init")
        pitch = m.get("pitch")
        steps = f"{m['train_steps']:,}".replace(",", " ")
        rows.append([
            name,
            f"{m['lsd_db']:.2f} / {m['lsd_db_median']:.2f}",
            f"{m['decode_ms']:.1f} + {m['phase_ms']:.1f} = {m['total_ms']:.1f}",
            f"{m['smoothness_max_ratio']:.2f} ({m['smoothness_median_ratio']:.2f})",
            str(m["n_sliders"]),
            f"{100 * pitch['pass_rate']:.1f} % of {pitch['notes']}" if pitch else "–",
            f"{m['train_minutes']:.0f} min, {steps} steps" + (f", from {Path(init).name}" if init else ""),
        ])
        values.append([None, m["lsd_db"], m["total_ms"], m["smoothness_max_ratio"], None,
                       pitch["pass_rate"] if pitch else None, None])
    bold_best(rows, values, [None, True, True, True, None, False, None])
    header = ["model", "LSD_dB mean / median", "decode + phase, ms", "smoothness max (median)", "sliders",
              "pitch check", "training"]
    return markdown(header, rows)


def upsampler_table(report: dict) -> str:
    """The upsampler beside sinc and sbr: ``benchmarks/upsample.py``."""
    rtf = report["real_time_factor"]
    rows, values = [], []
    for mode, s in report["summary"].items():
        if mode not in ("sinc", "sbr", "model"):
            continue
        visqol = s.get("visqol", {}).get("mean")
        rows.append([mode, f"{s['lsd']['mean']:.2f}", f"{s['lsd_lf']['mean']:.3f}", f"{s['lsd_hf']['mean']:.2f}",
                     f"{visqol:.2f}" if visqol is not None else "–", f"{rtf.get(mode, float('nan')):.3f}"])
        values.append([None, s["lsd"]["mean"], None, s["lsd_hf"]["mean"], visqol, None])
    bold_best(rows, values, [None, True, None, True, False, None])
    header = ["mode", "LSD", "LSD-LF (< 3.8 kHz)", "LSD-HF (>= 4 kHz)", "ViSQOL", f"RTF, {rtf.get('threads')} threads"]
    return markdown(header, rows)


TABLES = {"notes": notes_table, "upsampler": upsampler_table}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the tables in README.md")
    args = parser.parse_args()
    tables = {name: render(json.loads((DOCS / f"{name}.json").read_text()))
              for name, render in TABLES.items() if (DOCS / f"{name}.json").is_file()}
    if not args.write:
        for name, table in tables.items():
            print(f"{name}:\n{table}")
        return
    readme = ROOT / "README.md"
    text = MARKER.sub(lambda m: m[1] + tables.get(m["name"], "") + m[3] if m["name"] in tables else m[0],
                      readme.read_text())
    readme.write_text(text)
    print(f"rewrote {', '.join(tables)} in {readme}")


if __name__ == "__main__":
    main()
