"""Data parallelism on 2 CPU processes launched by torchrun (gloo): the engine's contract with several ranks.

Each test launches ``python -m torch.distributed.run --standalone --nproc-per-node=2`` (a free port chosen by
the OS) with a subprocess timeout, on the tiny corpus of ``test_train``, with the ``ae`` (no sampling noise,
so two ranks can match one exactly).
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_train import TINY_ARGS, make_corpus

from hummingface.__main__ import main

ROOT = Path(__file__).resolve().parent.parent
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
ONE_SET = ["config.json", "latent.safetensors", "metrics.json", "model.safetensors", "report.png", "train_config.json",
           ".train/optimizer.safetensors", ".train/state.json"]
# Trains through the CLI's own task builder, stopping after argv[1] steps (0: at the budget), as an interruption
# would; each rank prints where it stopped.
DRIVER = """
import os, sys
from hummingface.__main__ import build_parser
from hummingface.train.cli import task_from_args
from hummingface.train.engine import train

args = build_parser().parse_args(sys.argv[2:])
metrics = train(task_from_args(args), args.out, resume=args.resume, device="cpu", progress=False,
                stop_after=int(sys.argv[1]) or None)
print(f"rank {os.environ['RANK']} stopped at step {metrics['step']}")
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def torchrun(*args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([*TORCHRUN, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def ae_args(corpus, out, *more: str) -> list[str]:
    return ["train", "ae", "--data", str(corpus), "--out", str(out), "--batch-size", "4", "--lr", "3e-3",
            *TINY_ARGS[:4], "--valid-notes", "4", *more]


def files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def max_difference(a: Path, b: Path) -> float:
    first, second = load_file(a), load_file(b)
    assert first.keys() == second.keys()
    return max(float((first[k] - second[k]).abs().max()) for k in first)


def test_two_ranks_train_the_weights_one_rank_does(corpus, tmp_path, capsys):
    two, one = tmp_path / "two", tmp_path / "one"
    output = torchrun("-m", "hummingface", *ae_args(corpus, two, "--max-steps", "3"))
    assert output.count("ae: 3 steps") == 1  # rank 0 alone reports
    assert main(ae_args(corpus, one, "--max-steps", "3")) == 0
    difference = max_difference(two / "model.safetensors", one / "model.safetensors")
    print(f"max |weight difference| 2 ranks vs 1 rank after 3 steps: {difference:.3g}")
    # Summation order differs between one batch and two averaged halves; Adam's first steps (about lr * sign
    # of the gradient) magnify that rounding where a gradient is near 0. Other batches would differ by ~lr.
    assert difference < 1e-4
    assert files(two) == sorted(ONE_SET)  # one checkpoint set, written once
    assert json.loads((two / "metrics.json").read_text())["processes"] == 2


def test_resumed_two_rank_run_equals_uninterrupted(corpus, tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    parts = tmp_path / "parts"
    assert "rank 1 stopped at step 2" in torchrun(str(driver), "2", *ae_args(corpus, parts, "--max-steps", "4"))
    torchrun(str(driver), "0", *ae_args(corpus, parts, "--resume"))
    whole = tmp_path / "whole"
    assert main(ae_args(corpus, whole, "--max-steps", "4")) == 0
    for name in ("model.safetensors", ".train/optimizer.safetensors"):
        assert max_difference(parts / name, whole / name) < 1e-4, name
    assert json.loads((parts / "metrics.json").read_text())["step"] == 4


def test_time_budget_stops_every_rank_at_the_same_step(corpus, tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    out = tmp_path / "timed"
    output = torchrun(str(driver), "0", *ae_args(corpus, out, "--minutes", "0.05", "--checkpoint-minutes", "0.02"))
    # Both ranks print to one pipe: their lines can run into each other, so read the pairs, not the lines.
    steps = dict(re.findall(r"rank (\d+) stopped at step (\d+)", output))
    assert sorted(steps) == ["0", "1"] and steps["0"] == steps["1"] and int(steps["0"]) > 0
    assert files(out) == sorted(ONE_SET)
    assert torch.is_tensor(load_file(out / "model.safetensors")["decoder.head.weight"])
