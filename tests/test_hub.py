"""hub.py through the real huggingface_hub code path, offline, against a Hub cache laid out here."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from hummingface.device import get_device
from hummingface.errors import UserError
from hummingface.hub import Pretrained, WeightsSource, push, upload_plan

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclasses.dataclass(frozen=True)
class TinyConfig:
    width: int = 3
    hidden: tuple[int, ...] = (5,)


class Tiny(Pretrained):
    config_class = TinyConfig
    model_type = "tiny"

    def __init__(self, config: TinyConfig) -> None:
        super().__init__(config)
        self.layer = nn.Linear(config.width, config.hidden[0])


def lay_out_hub_repo(cache: str, repo_id: str, checkpoints: Path) -> Path:
    """Write ``checkpoints`` into the cache as huggingface_hub stores a downloaded snapshot."""
    repo = Path(cache) / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    for path in checkpoints.rglob("*"):
        if path.is_file():
            target = snapshot / path.relative_to(checkpoints)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    return snapshot


@pytest.fixture
def saved(tmp_path) -> tuple[Tiny, Path]:
    torch.manual_seed(0)
    model = Tiny(TinyConfig(width=3, hidden=(7,)))
    root = tmp_path / "checkpoints"
    model.save_pretrained(root / "tiny", extras={"latent": {"mean": torch.ones(3)}})
    (root / "tiny" / "pytorch_model.bin").write_bytes(b"pickles are never uploaded")
    return model, root


def test_save_and_load_from_a_folder(saved):
    model, root = saved
    loaded = Tiny.from_pretrained("tiny", weights=root)
    assert loaded.config == TinyConfig(width=3, hidden=(7,)) and not loaded.training
    torch.testing.assert_close(loaded.layer.weight, model.layer.weight)
    assert (loaded.checkpoint_dir / "latent.safetensors").is_file()


def test_load_from_the_hub_cache_offline(saved, hub_cache):
    model, root = saved
    lay_out_hub_repo(hub_cache, "acme/sounds", root)
    for spec in ["acme/sounds", f"acme/sounds@{COMMIT}"]:
        loaded = Tiny.from_pretrained("tiny", weights=spec)
        assert hub_cache in str(loaded.checkpoint_dir)
        torch.testing.assert_close(loaded.layer.weight, model.layer.weight)
    os.environ["HUMMINGFACE_WEIGHTS"] = "acme/sounds"
    try:
        assert str(WeightsSource.resolve()) == "hf://acme/sounds"
        assert list(WeightsSource.resolve().available()) == ["tiny"]
    finally:
        del os.environ["HUMMINGFACE_WEIGHTS"]


def test_loading_is_strict(saved, tmp_path):
    _, root = saved
    wider = Tiny(TinyConfig(width=4, hidden=(7,)))
    wider.save_pretrained(tmp_path / "other" / "tiny")
    (root / "tiny" / "model.safetensors").write_bytes((tmp_path / "other" / "tiny" / "model.safetensors").read_bytes())
    with pytest.raises(UserError, match="does not match its config"):
        Tiny.from_pretrained("tiny", weights=root)


def test_config_mismatches_are_refused(saved):
    _, root = saved
    config = root / "tiny" / "config.json"
    config.write_text(config.read_text().replace('"width"', '"depth"'))
    with pytest.raises(UserError, match="depth"):
        Tiny.from_pretrained("tiny", weights=root)
    config.write_text('{"model_type": "vae"}')
    with pytest.raises(UserError, match="'vae' model, not 'tiny'"):
        Tiny.from_pretrained("tiny", weights=root)


def test_missing_checkpoints_and_uncached_repos(saved, tmp_path):
    _, root = saved
    with pytest.raises(UserError, match=r"No checkpoint 'cvae' .* found: tiny"):
        Tiny.from_pretrained("cvae", weights=root)
    with pytest.raises(UserError, match="not in the local Hugging Face cache"):
        Tiny.from_pretrained("tiny", weights="acme/never-downloaded")
    with pytest.raises(UserError, match="neither a folder nor a Hub repo id"):
        WeightsSource.resolve("not a repo!")


def test_push_dry_run_lists_safetensors_and_configs_only(saved):
    _, root = saved
    plan = push("acme/sounds", folder=root, dry_run=True)
    assert plan == ["tiny/config.json", "tiny/latent.safetensors", "tiny/model.safetensors"]
    assert upload_plan(root) == plan
    with pytest.raises(UserError, match="not a Hub repo id"):
        push("acme", folder=root, dry_run=True)


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hummingface", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=Path(__file__).parent.parent,
        timeout=120,
    )


def test_cli_info_reports_hub_weights(saved, hub_cache):
    _, root = saved
    lay_out_hub_repo(hub_cache, "acme/cli-sounds", root)
    result = run_cli("info", env={"HUMMINGFACE_WEIGHTS": "acme/cli-sounds"})
    assert result.returncode == 0, result.stderr
    assert "hf://acme/cli-sounds" in result.stdout and "tiny" in result.stdout and "torch" in result.stdout


def test_cli_push(saved):
    _, root = saved
    dry = run_cli("push", "--repo", "acme/sounds", "--folder", str(root), "--dry-run")
    assert dry.returncode == 0 and "tiny/model.safetensors" in dry.stdout and ".bin" not in dry.stdout
    offline = run_cli("push", "--repo", "acme/sounds", "--folder", str(root))
    assert offline.returncode == 2 and offline.stderr.count("\n") == 1 and "HF_HUB_OFFLINE" in offline.stderr


def test_cli_bad_arguments_exit_2_without_traceback():
    result = run_cli("info", "--device", "tpu")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "device 'tpu'" in result.stderr


def test_device_choice(monkeypatch):
    assert get_device("cpu") == torch.device("cpu")
    assert get_device() == torch.device(get_device("auto"))
    monkeypatch.setenv("HUMMINGFACE_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="not available here"):
            get_device("cuda")
    with pytest.raises(UserError, match="Unknown device"):
        get_device("quantum")
