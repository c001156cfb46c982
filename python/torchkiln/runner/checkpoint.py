"""MMEngine's checkpoint functions, on torchkiln's safe loading and atomic writing.

- :class:`CheckpointLoader` picks a loader by the path's scheme (``torchvision://``,
  ``http(s)://``, a local path, or any scheme registered with ``register_scheme``);
- :func:`load_checkpoint` loads a file into a model (unwrapping DDP, renaming keys with
  ``revise_keys``, reporting what did not fit); :func:`load_state_dict` does it for a dict;
- :func:`save_checkpoint` writes atomically (temp file, fsync, rename);
- :func:`get_state_dict` and :func:`weights_to_cpu` prepare what is saved.

Local files load with ``torch.load(weights_only=True)``: a checkpoint holding arbitrary
pickled objects is refused with an error saying so, where MMEngine would run its pickle.
"""

from __future__ import annotations

import importlib
import io
import logging
import os
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from torchkiln.logging.logger import print_log
from torchkiln.model.wrappers import unwrap_model
from torchkiln.runner.checkpoint_io import (
    CheckpointError,
    atomic_save,
    find_latest_checkpoint,
    load_checkpoint_file,
)
from torchkiln.runner.model_state import revise_state_dict

__all__ = [
    "CheckpointLoader",
    "CheckpointNotFoundError",
    "StateDictMismatchError",
    "find_latest_checkpoint",
    "get_state_dict",
    "load_checkpoint",
    "load_state_dict",
    "save_checkpoint",
    "weights_to_cpu",
]

Loader = Callable[[str, Any], Any]

DEFAULT_REVISE_KEYS: list[tuple[str, str]] = [(r"^module\.", "")]


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """A local checkpoint path names no file."""


class StateDictMismatchError(CheckpointError, RuntimeError):
    """A strict load found missing, unexpected or mis-shaped keys."""


class CheckpointLoader:
    """Loads checkpoints by scheme: the longest registered prefix matching the path picks the
    loader (prefixes are regular expressions matched at the start, as in MMEngine).

    Built in: local paths (the empty prefix), ``http://``/``https://`` (through torch.hub's
    download cache), ``torchvision://NAME`` (torchvision's ImageNet weights for ``NAME``) and
    ``s3://``/``petrel://`` (through the storage backend for the prefix in
    :mod:`torchkiln.fileio`: ``PetrelBackend`` unless another is registered).
    ``register_scheme('ftp://', loader)`` adds one; a loader takes ``(filename, map_location)``.
    """

    _schemes: ClassVar[dict[str, Loader]] = {}

    @classmethod
    def _register_scheme(cls, prefixes: str | Sequence[str], loader: Loader, force: bool) -> None:
        names = [prefixes] if isinstance(prefixes, str) else list(prefixes)
        for prefix in names:
            if prefix in cls._schemes and not force:
                raise KeyError(
                    f"{prefix} is already registered as a loader backend, "
                    'add "force=True" if you want to override it'
                )
            cls._schemes[prefix] = loader
        # longest prefix first, so 'https://' wins over '' (local)
        cls._schemes = dict(sorted(cls._schemes.items(), key=lambda item: -len(item[0])))

    @classmethod
    def register_scheme(
        cls,
        prefixes: str | Sequence[str],
        loader: Loader | None = None,
        force: bool = False,
    ) -> Any:
        """Register ``loader`` for paths starting with any of ``prefixes``.

        Used as a decorator when ``loader`` is omitted.

        :raises KeyError: a prefix is taken and ``force`` is false.
        """
        if loader is not None:
            cls._register_scheme(prefixes, loader, force)
            return None

        def decorate(function: Loader) -> Loader:
            cls._register_scheme(prefixes, function, force)
            return function

        return decorate

    @classmethod
    def _get_checkpoint_loader(cls, path: str) -> Loader:
        """The loader whose prefix is the longest one that matches the start of ``path``."""
        for prefix, loader in cls._schemes.items():
            if re.match(prefix, path) is not None:
                return loader
        raise CheckpointError(f"no checkpoint loader for {path}")  # '' is always registered

    @classmethod
    def load_checkpoint(
        cls, filename: str, map_location: Any = None, logger: Any = "current"
    ) -> Any:
        """Load ``filename`` with the loader of its scheme."""
        loader = cls._get_checkpoint_loader(filename)
        name = loader.__name__.removeprefix("load_from_")
        print_log(f"Loads checkpoint by {name} backend from path: {filename}", logger=logger)
        return loader(filename, map_location)


@CheckpointLoader.register_scheme(prefixes="")
def load_from_local(filename: str, map_location: Any = None) -> dict[str, Any]:
    """Load a local checkpoint file safely (``weights_only=True``)."""
    path = os.path.expanduser(filename)
    if not os.path.isfile(path):
        raise CheckpointNotFoundError(
            f"{filename} can not be found: no such checkpoint file",
            hint="check the path (relative paths are taken from the current folder)",
        )
    return load_checkpoint_file(path, map_location=map_location)


@CheckpointLoader.register_scheme(prefixes=("http://", "https://"))
def load_from_http(
    filename: str, map_location: Any = None, model_dir: str | None = None
) -> dict[str, Any]:
    """Load a checkpoint from a URL through torch.hub's cache (downloaded once, if reachable)."""
    try:
        return torch.hub.load_state_dict_from_url(
            filename, model_dir=model_dir, map_location=map_location, weights_only=True
        )
    except OSError as exc:  # URLError and socket errors derive from OSError
        cache = model_dir or os.path.join(torch.hub.get_dir(), "checkpoints")
        raise CheckpointError(
            f"cannot download checkpoint {filename}: {exc}",
            hint=f"download the file elsewhere and put it in {cache}, or load it from a local path",
        ) from None


@CheckpointLoader.register_scheme(prefixes=("torchvision://", "modelzoo://"))
def load_from_torchvision(filename: str, map_location: Any = None) -> dict[str, Any]:
    """Load torchvision's ImageNet weights for ``torchvision://NAME`` (e.g. ``resnet50``)."""
    name = filename.split("://", 1)[1]
    try:
        models = importlib.import_module("torchvision.models")
    except ImportError:
        raise CheckpointError(
            f"{filename} needs torchvision, which is not installed",
            hint="pip install torchvision",
        ) from None
    try:
        weights = models.get_model_weights(name)
    except ValueError:
        raise CheckpointError(
            f"torchvision has no model named {name!r} ({filename})",
            hint="see torchvision.models.list_models() for the names",
        ) from None
    # MMEngine's torchvision:// names the original ImageNet weights, not the newer recipes
    chosen = weights.__members__.get("IMAGENET1K_V1", weights.DEFAULT)
    return load_from_http(chosen.url, map_location=map_location)


def _load_bytes(data: bytes, filename: str, map_location: Any) -> dict[str, Any]:
    """A checkpoint read from a storage backend, loaded safely like a local file."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, os.path.basename(filename) or "checkpoint.pth")
        with open(path, "wb") as fh:
            fh.write(data)
        return load_checkpoint_file(path, map_location=map_location)


@CheckpointLoader.register_scheme(prefixes=[r"(\S+\:)?s3://", r"(\S+\:)?petrel://"])
def load_from_ceph(filename: str, map_location: Any = None) -> dict[str, Any]:
    """Load a checkpoint from object storage through its :mod:`torchkiln.fileio` backend."""
    from torchkiln.fileio import get_file_backend

    try:
        backend = get_file_backend(filename)
    except ValueError as exc:
        raise CheckpointError(
            f"cannot load {filename}: {exc}",
            hint="copy the checkpoint to a local path, or register a storage backend",
        ) from None
    return _load_bytes(backend.get(filename), filename, map_location)


def _hub_loader(kind: str) -> Loader:
    def load(filename: str, map_location: Any = None) -> dict[str, Any]:
        raise CheckpointError(
            f"{filename}: {kind} checkpoints are not supported",
            hint="download the checkpoint and load it from a local path, or use its https:// URL",
        )

    load.__doc__ = f"Refuse {kind}, with an error asking for a URL or a local file."
    return load


load_from_pavi = _hub_loader("PAVI (OpenMMLab's internal model cloud)")
load_from_pavi.__name__ = "load_from_pavi"
load_from_openmmlab = _hub_loader("OpenMMLab model-zoo names")
load_from_openmmlab.__name__ = "load_from_openmmlab"
load_from_mmcls = _hub_loader("MMClassification model-zoo names")
load_from_mmcls.__name__ = "load_from_mmcls"
CheckpointLoader.register_scheme("pavi://", load_from_pavi)
CheckpointLoader.register_scheme(["open-mmlab://", "openmmlab://"], load_from_openmmlab)
CheckpointLoader.register_scheme("mmcls://", load_from_mmcls)


def _load_checkpoint(filename: str, map_location: Any = None, logger: Any = None) -> Any:
    """Load a checkpoint by scheme (see :class:`CheckpointLoader`) without applying it."""
    return CheckpointLoader.load_checkpoint(filename, map_location, logger)


def _load_checkpoint_with_prefix(
    prefix: str, filename: str, map_location: Any = None
) -> dict[str, Any]:
    """The weights under ``prefix`` (e.g. ``'backbone'``), with the prefix removed.

    :raises AssertionError: no key starts with the prefix.
    """
    checkpoint = _load_checkpoint(filename, map_location=map_location)
    state_dict = checkpoint.get("state_dict", checkpoint)
    if not prefix.endswith("."):
        prefix += "."
    selected = {
        key[len(prefix) :]: value for key, value in state_dict.items() if key.startswith(prefix)
    }
    assert selected, f"{prefix} is not in the pretrained model {filename}"
    return selected


def _with_metadata(state_dict: Any, metadata: Any) -> OrderedDict[str, Any]:
    copy: OrderedDict[str, Any] = OrderedDict(state_dict)
    if metadata is not None:
        copy._metadata = metadata  # type: ignore[attr-defined]
    return copy


def load_state_dict(
    module: nn.Module, state_dict: dict[str, Any], strict: bool = False, logger: Any = None
) -> None:
    """Load ``state_dict`` into ``module``, unwrapping model wrappers at any depth.

    Unlike ``nn.Module.load_state_dict``, mis-shaped tensors are skipped instead of stopping
    the load; each module's ``_load_from_state_dict`` sees the checkpoint's version metadata,
    so modules that convert old key names keep working. What did not fit is logged as a
    warning, or, with ``strict``, raised after loading the rest.

    :raises StateDictMismatchError: with ``strict``, when any key is missing, unexpected or
        mis-shaped.
    """
    metadata = getattr(state_dict, "_metadata", None)
    state = _with_metadata(state_dict, metadata)  # modules may edit it while loading
    missing: list[str] = []
    unexpected: list[str] = []
    errors: list[str] = []

    def load(current: nn.Module, prefix: str) -> None:
        current = unwrap_model(current)
        local = {} if metadata is None else metadata.get(prefix[:-1], {})
        current._load_from_state_dict(state, prefix, local, True, missing, unexpected, errors)
        for name, child in current._modules.items():
            if child is not None:
                load(child, prefix + name + ".")

    load(module, "")
    missing = [key for key in missing if "num_batches_tracked" not in key]
    lines = []
    if unexpected:
        lines.append(f"unexpected key in source state_dict: {', '.join(unexpected)}")
    if missing:
        lines.append(f"missing keys in source state_dict: {', '.join(missing)}")
    lines.extend(errors)
    if not lines:
        return
    text = "\n".join(lines)
    if strict:
        raise StateDictMismatchError(
            f"the state dict does not match {type(unwrap_model(module)).__name__}:\n{text}",
            hint="load with strict=False to keep what fits",
        )
    print_log(text, logger=logger, level=logging.WARNING)


def _load_checkpoint_to_model(
    model: nn.Module,
    checkpoint: dict[str, Any],
    strict: bool = False,
    logger: Any = None,
    revise_keys: Sequence[Sequence[str]] = tuple(DEFAULT_REVISE_KEYS),
) -> dict[str, Any]:
    state_dict = checkpoint.get("state_dict", checkpoint)
    revised = _with_metadata(
        revise_state_dict(state_dict, revise_keys), getattr(state_dict, "_metadata", None)
    )
    load_state_dict(model, revised, strict, logger)
    return checkpoint


def load_checkpoint(
    model: nn.Module,
    filename: str,
    map_location: Any = None,
    strict: bool = False,
    logger: Any = None,
    revise_keys: Sequence[Sequence[str]] = tuple(DEFAULT_REVISE_KEYS),
) -> dict[str, Any]:
    """Load the checkpoint ``filename`` (any registered scheme) into ``model``; return it.

    :param revise_keys: ``(pattern, replacement)`` regex pairs applied to every key; by
        default the ``module.`` prefix DDP adds is removed.
    :raises CheckpointError: the file is missing, unsafe or not a checkpoint.
    """
    checkpoint = _load_checkpoint(filename, map_location, logger)
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"No state_dict found in checkpoint file {filename}")
    return _load_checkpoint_to_model(model, checkpoint, strict, logger, revise_keys)


def weights_to_cpu(state_dict: dict[str, Any]) -> OrderedDict[str, Any]:
    """A copy of ``state_dict`` with every tensor on the CPU (its ``_metadata`` kept)."""
    on_cpu: OrderedDict[str, Any] = OrderedDict(
        (key, value.cpu() if isinstance(value, torch.Tensor) else value)
        for key, value in state_dict.items()
    )
    metadata = getattr(state_dict, "_metadata", None)
    if metadata is not None:
        on_cpu._metadata = metadata  # type: ignore[attr-defined]
    return on_cpu


def get_state_dict(
    module: nn.Module,
    destination: OrderedDict[str, Any] | None = None,
    prefix: str = "",
    keep_vars: bool = False,
) -> OrderedDict[str, Any]:
    """``module.state_dict()`` with every model wrapper (DDP, ...) at any depth unwrapped,
    so the keys carry no ``module.`` segments."""
    module = unwrap_model(module)
    if destination is None:
        destination = OrderedDict()
        destination._metadata = OrderedDict()  # type: ignore[attr-defined]
    metadata = getattr(destination, "_metadata", None)
    if metadata is not None:
        metadata[prefix[:-1]] = {"version": module._version}
    module._save_to_state_dict(destination, prefix, keep_vars)
    for name, child in module._modules.items():
        if child is not None:
            get_state_dict(
                unwrap_model(child), destination, prefix + name + ".", keep_vars=keep_vars
            )
    for hook in module._state_dict_hooks.values():
        result = hook(module, destination, prefix, {})
        if result is not None:
            destination = result
    return destination


def save_checkpoint(
    checkpoint: dict[str, Any],
    filename: str,
    file_client_args: dict | None = None,
    backend_args: dict | None = None,
) -> None:
    """Write ``checkpoint`` to ``filename``: atomically (temp file, fsync, rename) for a
    local path, through its :mod:`torchkiln.fileio` backend otherwise.

    :param file_client_args: MMEngine's older way to pick the backend (``{'backend': 'disk'}``).
    :param backend_args: the backend's arguments (``{'backend': 'local'}``).
    :raises CheckpointError: no storage backend handles ``filename``.
    """
    from torchkiln.fileio import FileClient, LocalBackend, get_file_backend

    if file_client_args is not None and backend_args is not None:
        raise ValueError("give file_client_args or backend_args, not both")
    try:
        if file_client_args is not None:
            backend = FileClient.infer_client(file_client_args, filename).client
        else:
            backend = get_file_backend(filename, backend_args=backend_args)
    except ValueError as exc:
        raise CheckpointError(
            f"cannot save checkpoint {filename}: {exc}",
            hint="save to a local path, or register a storage backend for the prefix",
        ) from None
    if isinstance(backend, LocalBackend):
        atomic_save(checkpoint, os.path.expanduser(filename))
        return
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    put = getattr(backend, "put", None)
    if put is None:
        raise CheckpointError(f"the {backend.name} storage backend cannot write {filename}")
    put(buffer.getvalue(), filename)
