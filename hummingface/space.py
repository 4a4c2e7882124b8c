"""Publish the app as a Hugging Face Space: code only, with the weights read from a model repo at start-up.

A Space is a git repo the Hub builds and runs. Weight files (28 MB each) do not belong in it: ``push`` puts
them in a model repo, and the Space gets that repo's id as the variable ``HUMMINGFACE_WEIGHTS``, so the app
downloads them through ``huggingface_hub`` when it starts (:meth:`hummingface.hub.WeightsSource.fetch`).

The bundle (:func:`bundle`) is what the Space needs to run ``app.py``:

- ``app.py`` and the ``hummingface`` package's files (``.py``, and the keyboard's ``.html``/``.css``/``.js``);
- ``assets/`` (presets and example clips, under 1 MB);
- ``requirements.txt`` (the repository's, plus ``spaces`` for ZeroGPU hardware; ``spaces.GPU`` changes nothing
  elsewhere) and ``packages.txt`` (Debian packages: FluidSynth and its General MIDI SoundFont);
- ``README.md``: the repository's, whose YAML front matter configures the Space (``sdk: gradio``,
  ``sdk_version``, ``app_file``), with ``models:`` naming the weights repo.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from hummingface.errors import UserError
from hummingface.hub import _REPO_ID, repo_checkpoints

PACKAGE_SUFFIXES = (".py", ".html", ".css", ".js")  # the package's code and the keyboard's web files
GENERATED = "README.md"  # written from the repository's README, not copied
SPACE_EXTRA_REQUIREMENTS = ("spaces",)


def space_variables(weights: str) -> list[tuple[str, str, str]]:
    """The Space's variables: (name, value, description)."""
    return [
        ("HUMMINGFACE_WEIGHTS", weights, "model repo the app loads its weights from"),
        # glibc otherwise keeps one malloc arena per thread; under mixed load (many slider calls beside a long
        # upsample) resident memory kept growing with them and levelled off with two (README, "The app").
        ("MALLOC_ARENA_MAX", "2", "keeps resident memory level under load"),
    ]


def repo_root() -> Path:
    """The repository the Space is published from (the folder holding ``app.py``)."""
    return repo_checkpoints().parent


def bundle(root: Path | None = None) -> dict[str, Path | None]:
    """What the Space gets: ``{path in the Space: local file}``, ``None`` for the generated README.

    Raises:
        UserError: ``root`` is not a HummingFace checkout (no ``app.py`` or package).
    """
    root = root or repo_root()
    if not (root / "app.py").is_file() or not (root / "hummingface").is_dir():
        raise UserError(f"{root} holds no app.py and hummingface/ package to publish.")
    files = [root / "app.py", root / "requirements.txt", root / "packages.txt"]
    files += sorted(p for p in (root / "hummingface").rglob("*") if p.suffix in PACKAGE_SUFFIXES and p.is_file()
                    and "__pycache__" not in p.parts)
    files += sorted(p for p in (root / "assets").rglob("*") if p.is_file())
    plan: dict[str, Path | None] = {p.relative_to(root).as_posix(): p for p in files if p.is_file()}
    plan[GENERATED] = None
    return plan


def readme(weights: str, root: Path | None = None) -> str:
    """The repository's README with its Space front matter naming ``weights`` under ``models``."""
    from huggingface_hub import SpaceCard

    card = SpaceCard.load((root or repo_root()) / "README.md")
    card.data.models = [weights.split("@")[0]]
    return str(card)


def stage(folder: Path, weights: str, root: Path | None = None) -> Path:
    """Write the bundle into ``folder`` (created): exactly the files the Space gets."""
    root = root or repo_root()
    for name, source in bundle(root).items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source is None:
            target.write_text(readme(weights, root))
        elif name == "requirements.txt":
            target.write_text(source.read_text().rstrip("\n") + "\n" + "\n".join(SPACE_EXTRA_REQUIREMENTS) + "\n")
        else:
            shutil.copyfile(source, target)
    return folder


def check(repo_id: str, weights: str, hardware: str | None) -> None:
    """Refuse bad ids and hardware names before anything is sent.

    Raises:
        UserError: with the one thing that is wrong.
    """
    from huggingface_hub import SpaceHardware

    if not _REPO_ID.match(repo_id) or "@" in repo_id:
        raise UserError(f"--repo {repo_id!r} is not a Space id like org/name.")
    if not _REPO_ID.match(weights) or Path(weights).exists():
        raise UserError(f"--weights {weights!r} must be a Hub model repo id like org/name[@revision] (see `push`).")
    names = [h.value for h in SpaceHardware]
    if hardware is not None and hardware not in names:
        raise UserError(f"Unknown Space hardware {hardware!r}; choose one of {', '.join(names)}.")


def publish(
    repo_id: str, weights: str, hardware: str | None = None, private: bool = False, root: Path | None = None
) -> str:
    """Create (or update) the Space ``repo_id`` with the bundle; returns its URL.

    The weights repo must exist and be readable; the Space variable ``HUMMINGFACE_WEIGHTS`` is set to it.

    Raises:
        UserError: bad ids or hardware, offline mode, the weights repo missing, or the Hub refused.
    """
    import tempfile

    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    check(repo_id, weights, hardware)
    api = HfApi()
    model, _, revision = weights.partition("@")
    try:
        api.model_info(model, revision=revision or None)
        url = api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="hummingface-space-") as folder:
            api.upload_folder(repo_id=repo_id, repo_type="space", folder_path=stage(Path(folder), weights, root),
                              commit_message="Publish the HummingFace app")
        for key, value, description in space_variables(weights):
            api.add_space_variable(repo_id, key, value, description=description)
        if hardware is not None:
            api.request_space_hardware(repo_id, hardware)
    except OfflineModeIsEnabled:
        raise UserError("Cannot publish while HF_HUB_OFFLINE=1; unset it and log in with `hf auth login`.") from None
    except HfHubHTTPError as error:
        raise UserError(f"The Hub refused to publish {repo_id}: {str(error).splitlines()[0]}") from None
    return str(url)
