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


# -- the real download path, against a local stand-in for the Hub ------------------------------------------------


def hub_env(hub_url: str | None, home: Path) -> dict:
    """A child's environment: a fresh HF_HOME, online, the Hub at ``hub_url`` (or at a closed port)."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_CACHE", "HF_HUB_OFFLINE", "HUMMINGFACE_WEIGHTS")}
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens, the connection is refused at once
    return {**env, "HF_HOME": str(home), "HF_ENDPOINT": hub_url or closed, "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_ETAG_TIMEOUT": "5", "HF_HUB_DOWNLOAD_TIMEOUT": "10", "HUMMINGFACE_DEVICE": "cpu"}


FETCH = ("from hummingface.hub import WeightsSource; "
         "print(sorted(WeightsSource.resolve('acme/tiny').fetch(['cvae', 'gan'])))")


def test_weights_are_downloaded_then_read_from_the_cache(tiny_weights, tmp_path):
    from local_hub import LocalHub

    home = tmp_path / "hf-home"
    with LocalHub(tiny_weights, ("acme/tiny",)) as hub:
        online = subprocess.run([sys.executable, "-c", FETCH], capture_output=True, text=True, timeout=120,
                                env=hub_env(hub.url, home), cwd=Path(__file__).parent.parent)
        assert online.returncode == 0, online.stderr
        assert online.stdout.strip() == "['cvae', 'gan']" and hub.hits >= 4  # config + weights of each
    downloaded = {p.name for p in (home / "hub" / "models--acme--tiny" / "snapshots").glob("*/*")}
    assert downloaded == {"cvae", "gan"}  # only what was asked for
    offline = subprocess.run([sys.executable, "-c", FETCH], capture_output=True, text=True, timeout=120,
                             env=hub_env(None, home), cwd=Path(__file__).parent.parent)
    assert offline.returncode == 0 and offline.stdout.strip() == "['cvae', 'gan']", offline.stderr


def test_app_without_hub_or_cache_fails_with_one_sentence(tmp_path):
    env = {**hub_env(None, tmp_path / "empty-home"), "HUMMINGFACE_WEIGHTS": "acme/tiny"}
    result = subprocess.run([sys.executable, "app.py"], capture_output=True, text=True, timeout=120, env=env,
                            cwd=Path(__file__).parent.parent)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "cannot be reached" in result.stderr


def serve_app(folder: Path, env: dict, timeout: float = 180.0):
    """Start ``folder/app.py`` on a free port; returns (process, url) once it answers."""
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**env, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port)}
    process = subprocess.Popen([sys.executable, "app.py"], cwd=folder, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the app exited: {process.stderr.read()}")
        try:
            urllib.request.urlopen(url + "config", timeout=2)
            return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise AssertionError("the app did not answer in time")


def design_through_the_app(folder: Path, tiny_weights: Path, tmp_path: Path) -> None:
    """Fresh HF_HOME + local Hub: the app at ``folder`` downloads the weights and answers /design."""
    import soundfile as sf
    from gradio_client import Client
    from local_hub import LocalHub

    with LocalHub(tiny_weights, ("acme/tiny",)) as hub:
        env = {**hub_env(hub.url, tmp_path / "hf-home"), "HUMMINGFACE_WEIGHTS": "acme/tiny",
               "GRADIO_ANALYTICS_ENABLED": "False"}
        process, url = serve_app(folder, env)
        try:
            assert hub.hits > 0
            client = Client(url, verbose=False, download_files=str(tmp_path / "downloads"))
            audio, _ = client.predict(api_name="/design")
            assert sf.info(audio).frames == 176400  # the vocoder came from the Hub too
        finally:
            process.terminate()
            process.wait(timeout=30)


def test_app_downloads_hub_weights_and_serves(tiny_weights, tmp_path):
    design_through_the_app(Path(__file__).parent.parent, tiny_weights, tmp_path)
