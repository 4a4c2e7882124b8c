"""Where weights come from, and how they are saved, loaded and published.

A checkpoint is a folder ``<name>/`` holding ``config.json`` (the model's typed config dataclass) and
``model.safetensors`` (plus extras such as ``latent.safetensors``). Weights are looked up in one place:

- by default the repository's own ``checkpoints/`` folder;
- a Hub model repo when ``$HUMMINGFACE_WEIGHTS`` (or ``--weights``) says ``org/name[@revision]``. Its tree
  is laid out exactly like ``checkpoints/`` (that is what ``push`` uploads), and it is fetched with
  ``huggingface_hub.snapshot_download``, so the usual cache, ``HF_ENDPOINT``, ``HF_HUB_OFFLINE=1`` and
  tokens all apply: downloaded when the Hub answers, read from the cache when it does not;
- any local folder with the same layout, given as a path.

Only safetensors are ever read -- never pickles -- and loading is strict: a missing or unexpected tensor
is an error, not a silently half-initialised model.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, get_type_hints

import torch
from huggingface_hub import HfApi, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model
from torch import nn

from hummingface.device import get_device
from hummingface.errors import UserError

WEIGHTS_ENV = "HUMMINGFACE_WEIGHTS"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
# What a checkpoint tree may contain on the Hub: configs, reports and tensors; never pickled weights.
UPLOAD_SUFFIXES = (".json", ".safetensors", ".md", ".png")
_REPO_ID = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+)(?:@(?P<revision>[\w./-]+))?$")


def repo_checkpoints() -> Path:
    """The ``checkpoints/`` folder beside the package (the weights that ship with the repo)."""
    return Path(__file__).resolve().parent.parent / "checkpoints"


@dataclasses.dataclass(frozen=True)
class WeightsSource:
    """A place checkpoints are read from: a local folder or a Hub model repo at a revision."""

    folder: Path | None = None
    repo_id: str | None = None
    revision: str | None = None

    @classmethod
    def resolve(cls, spec: str | os.PathLike | None = None) -> WeightsSource:
        """Parse ``--weights`` / ``$HUMMINGFACE_WEIGHTS``: a folder, ``org/name[@revision]``, or nothing.

        Raises:
            UserError: the text is neither an existing folder nor a repo id.
        """
        spec = spec or os.environ.get(WEIGHTS_ENV) or None
        if spec is None:
            return cls(folder=repo_checkpoints())
        text = str(spec).strip()
        if Path(text).expanduser().is_dir():
            return cls(folder=Path(text).expanduser().resolve())
        match = _REPO_ID.match(text)
        if not match:
            raise UserError(
                f"Weights {text!r} are neither a folder nor a Hub repo id like org/name or org/name@revision."
            )
        return cls(repo_id=match.group("repo"), revision=match.group("revision"))

    def __str__(self) -> str:
        if self.folder is not None:
            return str(self.folder)
        return f"hf://{self.repo_id}" + (f"@{self.revision}" if self.revision else "")

    def checkpoint(self, name: str) -> Path:
        """The local folder of checkpoint ``name``, downloading it from the Hub if needed.

        Raises:
            UserError: the checkpoint is not there, or the Hub cannot be reached and nothing is cached.
        """
        if self.folder is not None:
            root = self.folder
        else:
            root = self._snapshot(allow_patterns=[f"{name}/*{suffix}" for suffix in (".json", ".safetensors")])
        folder = root / name
        if not (folder / CONFIG_NAME).is_file() or not (folder / WEIGHTS_NAME).is_file():
            found = ", ".join(sorted(self.available(root))) or "none"
            raise UserError(f"No checkpoint {name!r} with {CONFIG_NAME} and {WEIGHTS_NAME} in {self}; found: {found}.")
        return folder

    def fetch(self, names: Iterable[str]) -> dict[str, Path]:
        """The checkpoints among ``names`` that the source holds, downloaded first from a Hub repo.

        A Hub repo is brought up to date when the Hub answers and read from the local cache when it does
        not (or when ``HF_HUB_OFFLINE=1``); only these checkpoints' configs and safetensors are fetched.

        Raises:
            UserError: a Hub repo that can neither be downloaded nor found in the cache, or refused.
        """
        names = list(names)
        root = None
        if self.folder is None:
            patterns = [f"{name}/*{suffix}" for name in names for suffix in (".json", ".safetensors")]
            root = self._snapshot(allow_patterns=patterns)
        return {name: folder for name, folder in self.available(root).items() if name in names}

    def available(self, root: Path | None = None) -> dict[str, Path]:
        """Checkpoint names found, without touching the network (a Hub repo counts only if cached)."""
        if root is None:
            if self.folder is not None:
                root = self.folder
            else:
                try:
                    root = self._snapshot(local_files_only=True)
                except UserError:
                    return {}
        if not root.is_dir():
            return {}
        return {
            folder.name: folder
            for folder in sorted(root.iterdir())
            if (folder / CONFIG_NAME).is_file() and (folder / WEIGHTS_NAME).is_file()
        }

    def _snapshot(self, **kwargs: Any) -> Path:
        try:
            return Path(snapshot_download(self.repo_id, revision=self.revision, **kwargs))
        except (LocalEntryNotFoundError, OfflineModeIsEnabled):
            raise UserError(
                f"Weights {self} are not in the local Hugging Face cache and the Hub cannot be reached."
            ) from None
        except HfHubHTTPError as error:
            raise UserError(f"The Hub refused weights {self}: {str(error).splitlines()[0]}") from None
        except OSError as error:  # a full disk or an unwritable HF_HOME
            raise UserError(f"Weights {self} cannot be stored in the Hugging Face cache ({error}).") from None


class Pretrained(nn.Module):
    """Base for every shipped model: built from one typed config, saved and loaded as safetensors.

    Subclasses set ``config_class`` (a dataclass) and ``model_type`` (the name used on the command line),
    and take the config as their only constructor argument.
    """

    config_class: ClassVar[type]
    model_type: ClassVar[str]

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    def save_pretrained(self, folder: str | os.PathLike, extras: dict[str, dict[str, torch.Tensor]] | None = None):
        """Write ``config.json`` + ``model.safetensors`` (+ one ``<key>.safetensors`` per extras entry)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = {"model_type": self.model_type, **dataclasses.asdict(self.config)}
        (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        save_model(self, str(folder / WEIGHTS_NAME))
        for key, tensors in (extras or {}).items():
            tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
            save_file(tensors, str(folder / f"{key}.safetensors"))
        return folder

    @classmethod
    def from_pretrained(
        cls,
        name: str,
        weights: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
    ):
        """Build the model from checkpoint ``name`` and load its weights strictly, in eval mode.

        Args:
            name: the checkpoint's folder name, e.g. ``"cvae"`` (the Hub repo's subfolder).
            weights: ``org/name[@revision]`` or a folder; default ``$HUMMINGFACE_WEIGHTS`` or ``checkpoints/``.
            device: see :func:`hummingface.device.get_device`.
        """
        folder = WeightsSource.resolve(weights).checkpoint(name)
        return cls.from_folder(folder, device=device)

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, device: str | torch.device | None = None):
        """Load a checkpoint folder laid out as ``save_pretrained`` writes it -- outside inference mode even when
        called inside it (an app handler, a benchmark): ``Timbre.refine`` and ``Timbre.listen`` take gradients
        through the weights and buffers, and autograd refuses tensors created in inference mode."""
        with torch.inference_mode(False):
            return cls._from_folder(Path(folder), device)

    @classmethod
    def _from_folder(cls, folder: Path, device: str | torch.device | None):
        config = read_config(folder / CONFIG_NAME, cls.config_class, cls.model_type)
        try:
            model = cls(config)
        except (TypeError, ValueError, OverflowError, RuntimeError) as error:  # sizes of the wrong type or range
            raise UserError(
                f"{folder / CONFIG_NAME} does not describe a {cls.model_type} model that can be built "
                f"({_first_line(error)})."
            ) from None
        try:
            load_model(model, str(folder / WEIGHTS_NAME), strict=True)
        except RuntimeError as error:  # safetensors reports every missing/unexpected key; keep the first line
            raise UserError(f"{folder / WEIGHTS_NAME} does not match its config: {_first_line(error)}") from None
        except (SafetensorError, OSError) as error:  # truncated, empty or not safetensors at all
            raise UserError(
                f"{folder / WEIGHTS_NAME} is not a readable safetensors file ({_first_line(error)})."
            ) from None
        model.checkpoint_dir = folder
        return model.to(get_device(device)).eval()


def read_config(path: Path, config_class: type, model_type: str):
    """Parse ``config.json`` into ``config_class``, refusing another model's config or unknown fields."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"{path} is not a readable JSON config ({error}).") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} holds a JSON {type(data).__name__}, not a config object.")
    found_type = data.pop("model_type", None)
    if found_type != model_type:
        raise UserError(f"{path} describes a {found_type!r} model, not {model_type!r}.")
    return dataclass_from_dict(config_class, data, path)


def model_class(folder: str | os.PathLike, models: dict[str, type[Pretrained]]) -> type[Pretrained]:
    """Which of ``models`` (by ``model_type``) the checkpoint in ``folder`` holds, its config checked first.

    Raises:
        UserError: no readable ``config.json``, a model type not in ``models``, or unknown config fields.
    """
    path = Path(folder) / CONFIG_NAME
    try:
        model_type = json.loads(path.read_text()).get("model_type")
    except (OSError, json.JSONDecodeError, AttributeError) as error:
        raise UserError(f"{path} is not a readable JSON config ({error}).") from None
    if model_type not in models:
        raise UserError(f"{path} describes a {model_type!r} model; this loader knows {', '.join(models)}.")
    read_config(path, models[model_type].config_class, model_type)  # refuse unknown fields before building
    return models[model_type]


def dataclass_from_dict(config_class: type, data: dict[str, Any], source: Path | str = "config"):
    """Rebuild a (possibly nested) dataclass from ``dataclasses.asdict`` output, strictly."""
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UserError(f"{source} has fields {', '.join(unknown)} that {config_class.__name__} does not know.")
    hints = get_type_hints(config_class)
    values = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = dataclass_from_dict(hint, value, source)
        elif isinstance(value, list):
            value = tuple(value)  # configs hold tuples (immutable defaults); JSON has only lists
        if hint in (int, float, bool, str) and not _fits(value, hint):
            raise UserError(f"{source} gives {key} = {value!r}, which is not a {hint.__name__}.")
        values[key] = value
    return config_class(**values)


def upload_plan(folder: Path) -> list[str]:
    """Files under ``folder`` that ``push`` would upload (relative POSIX paths), pickles never included."""
    return sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and path.suffix in UPLOAD_SUFFIXES and not _hidden(path.relative_to(folder).parts)
    )


def push(repo_id: str, folder: Path | None = None, dry_run: bool = False, private: bool = False) -> list[str]:
    """Upload a checkpoint tree to a Hub model repo (created if needed); returns the uploaded paths.

    Raises:
        UserError: bad repo id, nothing to upload, or the Hub refused.
    """
    folder = folder or repo_checkpoints()
    if not _REPO_ID.match(repo_id) or "@" in repo_id:
        raise UserError(f"{repo_id!r} is not a Hub repo id like org/name.")
    files = upload_plan(folder) if folder.is_dir() else []
    if not files:
        raise UserError(f"{folder} holds no checkpoint files to upload.")
    if dry_run:
        return files
    api = HfApi()
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            allow_patterns=files,
            commit_message=f"Upload {len(files)} checkpoint files from hummingface",
        )
    except OfflineModeIsEnabled:
        raise UserError("Cannot push while HF_HUB_OFFLINE=1; unset it and log in with `hf auth login`.") from None
    except HfHubHTTPError as error:
        raise UserError(f"The Hub refused the upload to {repo_id}: {str(error).splitlines()[0]}") from None
    return files


def _fits(value: Any, hint: type) -> bool:
    """Whether a JSON value is of a config field's simple type (an int is a fine float; a bool is no int)."""
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint) and (hint is bool or not isinstance(value, bool))


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _hidden(parts: Iterable[str]) -> bool:
    return any(part.startswith(".") for part in parts)
