"""No input ends in a traceback: every CLI command with malformed numbers, lists, ranges, huge values and broken
checkpoint folders exits 2 with one line; the app's API answers bad values with a ``gr.Error`` and keeps serving.

The CLI runs in this process (``main(argv)``), so an uncaught exception fails the test with its traceback.
"""

import json
import shutil
from pathlib import Path

import pytest
from test_train import corpus  # noqa: F401 (a fixture: six harmonic notes per split)

from hummingface.__main__ import main

HUGE = "123456789012345678901234567890"


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """Exit status and stderr of ``python -m hummingface *argv`` (argparse's exit included)."""
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def broken(tiny_weights, tmp_path_factory) -> dict[str, Path]:
    """Checkpoint trees with one thing wrong each: truncated or garbage safetensors, bad or mistyped JSON."""
    root = tmp_path_factory.mktemp("broken")
    trees = {}
    for name, damage in {
        "truncated": lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:1000]),
        "garbage": lambda f: (f / "model.safetensors").write_bytes(b"\x00" * 64),
        "empty": lambda f: (f / "model.safetensors").write_bytes(b""),
        "bad-json": lambda f: (f / "config.json").write_text('{"model_type": "cvae", '),
        "json-list": lambda f: (f / "config.json").write_text("[1, 2]"),
        "wrong-type": lambda f: (f / "config.json").write_text(
            json.dumps({**json.loads((f / "config.json").read_text()), "latent_size": "eight"})),
        "huge-size": lambda f: (f / "config.json").write_text(
            json.dumps({**json.loads((f / "config.json").read_text()), "latent_size": 10**30})),
        "truncated-latent": lambda f: (f / "latent.safetensors").write_bytes(
            (f / "latent.safetensors").read_bytes()[:500]),
    }.items():
        tree = root / name
        for checkpoint in ("cvae", "gan", "upsampler"):
            shutil.copytree(tiny_weights / checkpoint, tree / checkpoint)
        for checkpoint in ("cvae", "gan", "upsampler"):
            if name != "truncated-latent" or checkpoint == "cvae":
                damage(tree / checkpoint)
        trees[name] = tree
    return trees


ARGUMENTS = [
    ["generate", "--seed", HUGE, "-o", "x.wav"],
    ["generate", "--seed", "-1", "-o", "x.wav"],
    ["generate", "--seed", "1.5", "-o", "x.wav"],
    ["generate", "--pitch", "200", "-o", "x.wav"],
    ["generate", "--pitch", "sixty", "-o", "x.wav"],
    ["generate", "--pitch", HUGE, "-o", "x.wav"],
    ["generate", "--velocity", "0", "-o", "x.wav"],
    ["generate", "--temperature", "nan", "-o", "x.wav"],
    ["generate", "--temperature", "inf", "-o", "x.wav"],
    ["generate", "--temperature", "-1", "-o", "x.wav"],
    ["generate", "--latent", "1,x", "-o", "x.wav"],
    ["generate", "--latent", "nan", "-o", "x.wav"],
    ["generate", "--latent", "1e400", "-o", "x.wav"],
    ["generate", "--latent", ",,", "-o", "x.wav"],
    ["generate", "--family", "kazoo", "-o", "x.wav"],
    ["generate", "--model", "gan", "--seed", HUGE, "-o", "x.wav"],
    ["generate", "--weights", "not a repo!", "-o", "x.wav"],
    ["reconstruct", "missing.wav", "--pitch", "1000", "-o", "y.wav"],
    ["reconstruct", "missing.wav", "-o", "y.wav"],
    ["upsample", "missing.wav", "-o", "y.wav", "--max-minutes", "-1"],
    ["upsample", "missing.wav", "-o", "y.wav", "--max-minutes", "nan"],
    ["upsample", "missing.wav", "-o", "y.wav", "--bit-depth", "12"],
    ["upsample", "missing.wav", "-o", "y.wav"],
    ["data", "notes", "--soundfont", "x.sf2", "--out", "o", "--pitches", "21-x"],
    ["data", "notes", "--soundfont", "x.sf2", "--out", "o", "--pitches", "1-1000000000000"],
    ["data", "notes", "--soundfont", "x.sf2", "--out", "o", "--velocities", "0"],
    ["data", "notes", "--soundfont", "x.sf2", "--out", "o", "--limit", "0"],
    ["data", "notes", "--soundfont", "x.sf2", "--out", "o", "--seed", HUGE],
    ["data", "music", "--out", "o", "--minutes", "-1"],
    ["data", "music", "--out", "o", "--minutes", "lots"],
    ["push", "--repo", "not a repo", "--dry-run"],
    ["push", "--repo", "acme/x", "--folder", "missing-folder", "--dry-run"],
    ["space", "--repo", "acme", "--weights", "acme/w", "--dry-run"],
    ["space", "--repo", "acme/s", "--weights", "@@", "--dry-run"],
    ["info", "--weights", "not a repo!"],
    ["info", "--device", "tpu"],
    ["no-such-command"],
]


@pytest.mark.parametrize("argv", ARGUMENTS, ids=[" ".join(a)[:60] for a in ARGUMENTS])
def test_bad_arguments_exit_2_with_one_line(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(argv, capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "bad-json", "json-list", "wrong-type",
                                    "huge-size", "truncated-latent"])
@pytest.mark.parametrize("command", ["generate-cvae", "generate-gan", "upsample", "info"])
def test_broken_checkpoints_exit_2_with_one_line(broken, damage, command, capsys, tmp_path):
    weights = str(broken[damage])
    clip = tmp_path / "clip.wav"
    import numpy as np
    import soundfile as sf

    sf.write(clip, np.zeros(8000, dtype=np.float32), 8000)
    argv = {
        "generate-cvae": ["generate", "--weights", weights, "-o", str(tmp_path / "n.wav")],
        "generate-gan": ["generate", "--model", "gan", "--weights", weights, "-o", str(tmp_path / "n.wav")],
        "upsample": ["upsample", str(clip), "--weights", weights, "-o", str(tmp_path / "u.wav")],
        "info": ["info", "--weights", weights],
    }[command]
    code, err = run_cli(argv, capsys)
    if command == "info":  # info only lists what is there; it must not crash on what it cannot read
        assert code in (0, 2) and "Traceback" not in err
        return
    if damage == "truncated-latent" and command != "generate-cvae":
        assert code == 0, err  # only the cvae's latent is broken
        return
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err


TRAIN = [
    ["train", "cvae", "--out", "o", "--channels", "4,x"],
    ["train", "cvae", "--out", "o", "--channels", "4"],
    ["train", "cvae", "--out", "o", "--channels", "4,0,4,4,4"],
    ["train", "cvae", "--out", "o", "--epochs", "-1"],
    ["train", "cvae", "--out", "o", "--lr", "nan"],
    ["train", "cvae", "--out", "o", "--seed", HUGE],
    ["train", "cvae", "--out", "o", "--latent-size", "0"],
    ["train", "gan", "--out", "o", "--batch-size", "0"],
    ["train", "cvae", "--out", "o", "--minutes", "inf"],
]


@pytest.mark.parametrize("argv", TRAIN, ids=[" ".join(a[1:2] + a[4:]) for a in TRAIN])
def test_bad_train_arguments_exit_2_with_one_line(argv, corpus, capsys, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)  # a real (tiny) corpus: the argument must be refused, not the data
    code, err = run_cli([*argv, "--data", str(corpus), "--max-steps", "1", "--valid-notes", "2"], capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err


@pytest.mark.parametrize("damage", ["truncated", "bad-json", "wrong-type"])
def test_train_init_with_broken_folders(broken, damage, capsys, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    init = ["train", "cvae", "--out", str(tmp_path / "o"), "--data", str(data), "--init", str(broken[damage] / "cvae")]
    code, err = run_cli(init, capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err


@pytest.mark.parametrize("damage", ["truncated", "bad-json"])
def test_train_resume_with_a_malformed_train_config(broken, damage, capsys, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    out = tmp_path / "resume"
    shutil.copytree(broken[damage] / "cvae", out)
    (out / "train_config.json").write_text('{"epochs": "many", ')
    code, err = run_cli(["train", "cvae", "--out", str(out), "--data", str(data), "--resume"], capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err


# -- the app's API through gradio_client ------------------------------------------------------------------------

SLIDERS = [0.0] * 16
API_CASES = [  # /design takes (model, pitch, *16 sliders, vibrato depth, rate): the base latent is state, not an input
    ("/design", [None, 60, *SLIDERS]),
    ("/design", [["cvae"], 60, *SLIDERS]),
    ("/design", ["cvae", None, *SLIDERS]),
    ("/design", ["cvae", 1000, *SLIDERS]),
    ("/design", ["cvae", 10**30, *SLIDERS]),
    ("/design", ["cvae", "sixty", *SLIDERS]),
    ("/design", ["cvae", 60.5, *SLIDERS]),
    ("/design", ["cvae", 60, None, *SLIDERS[1:]]),
    ("/design", ["cvae", 60, 1e308, *SLIDERS[1:]]),
    ("/design", ["cvae", 60, "x", *SLIDERS[1:]]),
    ("/design", ["cvae", 60, [1.0], *SLIDERS[1:]]),
    ("/design", ["cvae", 60, *SLIDERS, -5, 5.5]),  # the vibrato's depth and speed come after the sliders
    ("/design", ["cvae", 60, *SLIDERS, 1e308, 5.5]),
    ("/design", ["cvae", 60, *SLIDERS, 20, "fast"]),
    ("/design", ["cvae", 60, *SLIDERS, 20, 0]),
    ("/generate_note", ["gan", 60, "keyboard", 100, 10**30, "note"]),
    ("/generate_note", ["gan", 60, "keyboard", 100, -5, "note"]),
    ("/generate_note", ["gan", 60, "keyboard", 0, 0, "note"]),
    ("/generate_note", ["gan", 60, "keyboard", None, 0, "note"]),
    ("/generate_note", ["gan", None, "keyboard", 100, 0, "note"]),
    ("/generate_note", ["gan", 96, "keyboard", 100, 0, "scale"]),
    ("/generate_note", ["gan", 60, "kazoo", 100, 0, "note"]),
    ("/generate_note", ["gan", 60, ["keyboard"], 100, 0, "note"]),
    ("/generate_note", ["gan", 60, "keyboard", 100, 0, "arpeggio"]),
    ("/generate_note", [None, 60, "keyboard", 100, 0, "note"]),
    ("/generate_note", ["gan", 60, "keyboard", 100, 0, "note", None, 5.5]),
    ("/explore", ["cvae", 0, 2, 320, 240]),
    ("/explore", ["cvae", 1, 99, 320, 240]),
    ("/explore", ["cvae", None, 2, 320, 240]),
    ("/explore", ["cvae", 1, 2, None, 240]),
    ("/explore", ["cvae", 1, 2, 1e308, 240]),
    ("/explore", ["cvae", 1, 2, "left", 240]),
    ("/explore", ["nope", 1, 2, 320, 240]),
    ("/upsample", [None, "sbr"]),
]


@pytest.fixture(scope="module")
def api(tiny_weights, tmp_path_factory):
    from test_app import free_port

    import app
    from hummingface.studio import Studio

    demo = app.build_app(Studio.load(str(tiny_weights), "cpu"))
    demo.queue(default_concurrency_limit=2)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    from gradio_client import Client

    yield Client(url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))
    demo.close()


@pytest.mark.parametrize(("endpoint", "values"), API_CASES, ids=[f"{e}-{i}" for i, (e, _) in enumerate(API_CASES)])
def test_bad_api_values_are_one_sentence_and_the_app_keeps_serving(api, endpoint, values):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as caught:
        api.predict(*values, api_name=endpoint)
    message = str(caught.value)
    assert "has not enabled verbose error reporting" not in message  # a gr.Error, not an exception escaping
    assert "Traceback" not in message and message.count("\n") == 0, message
    audio, _ = api.predict(api_name="/design")
    assert Path(audio).stat().st_size > 0
