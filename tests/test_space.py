"""``python -m hummingface space``: what the Space gets, the dry run, and the staged bundle running for real."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hummingface.errors import UserError
from hummingface.space import bundle, check, stage

ROOT = Path(__file__).resolve().parent.parent


def test_bundle_is_code_and_assets_never_weights():
    plan = bundle()
    assert {"app.py", "requirements.txt", "packages.txt", "README.md", "hummingface/studio.py"} <= set(plan)
    assert not any(name.endswith((".safetensors", ".bin", ".pt")) or "checkpoints/" in name for name in plan)
    assert all(source is None or source.is_file() for source in plan.values())


def test_dry_run_prints_local_paths_one_per_line():
    result = subprocess.run(
        [sys.executable, "-m", "hummingface", "space", "--repo", "acme/studio", "--weights", "acme/sounds",
         "--dry-run"], capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(bundle())
    assert all(Path(line).is_file() for line in lines if "generated" not in line)
    assert str(ROOT / "app.py") in lines


@pytest.mark.parametrize(
    ("repo", "weights", "hardware", "message"),
    [("acme", "acme/sounds", None, "not a Space id"), ("acme/studio", "checkpoints", None, "model repo id"),
     ("acme/studio", "acme/sounds", "gpu9", "Unknown Space hardware")],
)
def test_bad_ids_and_hardware_are_refused_before_sending(repo, weights, hardware, message):
    with pytest.raises(UserError, match=message):
        check(repo, weights, hardware)


def test_publishing_offline_is_one_sentence():
    result = subprocess.run(
        [sys.executable, "-m", "hummingface", "space", "--repo", "acme/studio", "--weights", "acme/sounds"],
        capture_output=True, text=True, cwd=ROOT, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "HF_HUB_OFFLINE" in result.stderr


def test_staged_bundle_starts_and_serves_against_the_hub(tiny_weights, tmp_path):
    import gradio
    from huggingface_hub import SpaceCard
    from test_hub import design_through_the_app

    folder = stage(tmp_path / "space", "acme/tiny")
    card = SpaceCard.load(folder / "README.md")
    assert card.data.sdk == "gradio" and card.data.sdk_version == gradio.__version__
    assert card.data.app_file == "app.py" and card.data.models == ["acme/tiny"]
    assert "spaces" in (folder / "requirements.txt").read_text().split()
    assert not list(folder.rglob("*.safetensors"))
    design_through_the_app(folder, tiny_weights, tmp_path)


def test_space_variables_name_the_weights_and_bound_memory():
    from hummingface.space import space_variables

    variables = {name: value for name, value, _ in space_variables("acme/sounds@v1")}
    assert variables == {"HUMMINGFACE_WEIGHTS": "acme/sounds@v1", "MALLOC_ARENA_MAX": "2"}
