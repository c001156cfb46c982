"""Local weight files for the classifiers: checked early, loaded safely, never downloaded.

A run never reaches the network: ``pretrained: true``, a URL or a torchvision weights name
(``IMAGENET1K_V1``) is refused with the way to get a local file instead.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torchkiln.errors import ConfigError

__all__ = ["check_local_weights", "load_local_weights", "read_state_dict"]

logger = logging.getLogger(__name__)

_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_WEIGHTS_NAME = re.compile(r"^(DEFAULT|[A-Z0-9]+(_[A-Z0-9]+)*_V\d+)$")
_NO_DOWNLOAD_HINT = (
    "torchkiln-vision never downloads at run time; fetch the weights once (e.g. with "
    "torchvision's or timm's own tools on a machine with network access), save them with "
    "torch.save(model.state_dict(), path), and give that path: pretrained: path/to/weights.pth "
    "or init_cfg: {type: Pretrained, checkpoint: path/to/weights.pth}"
)


def check_local_weights(pretrained: Any, where: str) -> str | None:
    """The local weights path ``pretrained`` names, or None for random initialisation.

    :param pretrained: ``None``/``False`` (no weights) or the path of a local file.
    :param where: the config key path, for messages (e.g. ``'model.pretrained'``).
    :raises ConfigError: ``True``, a URL or a weights name (all would download), a path that
        does not exist, or a value of another type.
    """
    if pretrained is None or pretrained is False:
        return None
    if pretrained is True:
        raise ConfigError(
            "pretrained: true would download weights, and runs never download",
            where=where,
            hint=_NO_DOWNLOAD_HINT,
        )
    if not isinstance(pretrained, (str, os.PathLike)):
        raise ConfigError(
            f"pretrained must be false or the path of a local weights file, got {pretrained!r}",
            where=where,
        )
    path = os.fspath(pretrained)
    if _URL.match(path):
        raise ConfigError(
            f"{path!r} is a URL, and runs never download", where=where, hint=_NO_DOWNLOAD_HINT
        )
    if not os.path.exists(path):
        if _WEIGHTS_NAME.match(path):
            raise ConfigError(
                f"{path!r} looks like a torchvision weights name, which would download",
                where=where,
                hint=_NO_DOWNLOAD_HINT,
            )
        raise ConfigError(
            f"local weights file {path!r} does not exist",
            where=where,
            hint="check the path (relative paths start from the working directory); "
            + _NO_DOWNLOAD_HINT,
        )
    if not os.path.isfile(path):
        raise ConfigError(f"local weights path {path!r} is not a file", where=where)
    return path


def read_state_dict(path: str, where: str) -> dict[str, torch.Tensor]:
    """Read a state dict from ``path`` (``torch.save`` file or ``.safetensors``), safely.

    A ``state_dict`` (torchkiln, MMEngine, timm checkpoints) or ``model`` entry is used when
    present; a leading ``module.`` (DDP) is removed from every key.

    :raises ConfigError: the file cannot be read or holds no tensors.
    """
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            obj: Any = load_file(path, device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise ConfigError(
            f"cannot read weights file {path!r}: {type(exc).__name__}: {exc}",
            where=where,
            hint="only tensors and plain containers are read (weights_only=True); re-save with "
            "torch.save(model.state_dict(), path)",
        ) from None
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConfigError(f"weights file {path!r} holds no state dict of tensors", where=where)
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_local_weights(network: nn.Module, path: str, where: str, strip_prefix: str = "") -> int:
    """Load the weights of ``path`` that fit ``network``; return how many tensors were loaded.

    Keys under ``strip_prefix`` (the wrapper's own name for ``network``, so a torchkiln
    checkpoint of the wrapped model loads too) lose it. Tensors whose shape differs (a
    classifier head with another number of classes) and keys the network lacks are skipped
    and logged; the network's remaining tensors keep their initialisation.

    :raises ConfigError: when no tensor of the file fits the network.
    """
    state = read_state_dict(path, where)
    if strip_prefix and any(k.startswith(strip_prefix) for k in state):
        state = {k[len(strip_prefix) :]: v for k, v in state.items() if k.startswith(strip_prefix)}
    own = network.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    if not fitting:
        sample = ", ".join(list(state)[:5])
        raise ConfigError(
            f"no tensor of weights file {path!r} fits {type(network).__name__} "
            f"(the file's keys start: {sample})",
            where=where,
            hint="give weights saved from the same architecture (model_name)",
        )
    network.load_state_dict(fitting, strict=False)
    skipped = sorted(set(state) - set(fitting))
    missing = sorted(set(own) - set(fitting))
    if skipped or missing:
        logger.warning(
            "weights %s: loaded %d tensors; skipped %d that do not fit (%s); %d keep their "
            "initialisation (%s)",
            path,
            len(fitting),
            len(skipped),
            ", ".join(skipped[:8]),
            len(missing),
            ", ".join(missing[:8]),
        )
    return len(fitting)
