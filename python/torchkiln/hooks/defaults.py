"""The hooks every run gets (``default_hooks``) and how a config's entries merge into them.

Torch-free: the runner and the config tooling read these tables without importing any hook.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from torchkiln.errors import ConfigError, did_you_mean

__all__ = ["DEFAULT_HOOKS", "merge_default_hooks"]

DEFAULT_HOOKS: dict[str, dict[str, Any]] = {
    "runtime_info": {"type": "RuntimeInfoHook"},
    "timer": {"type": "IterTimerHook"},
    "sampler_seed": {"type": "DistSamplerSeedHook"},
    "logger": {"type": "LoggerHook", "interval": 10},
    "param_scheduler": {"type": "ParamSchedulerHook"},
    "checkpoint": {"type": "CheckpointHook", "interval": 1},
    # Bars on a terminal only (enable: auto); remove with progress_bar: null.
    "progress_bar": {"type": "ProgressBarHook"},
}


def _type_name(hook_type: Any) -> Any:
    """A type given as a class compares by its name; ``scope::Name`` by ``Name``."""
    if isinstance(hook_type, type):
        return hook_type.__name__
    if isinstance(hook_type, str):
        return hook_type.rpartition("::")[2]
    return hook_type


def _refuse_misspelled_default(name: str, entry: Mapping[str, Any], where: str) -> None:
    """A key one typo away from a default key, with that default's hook type, would add a
    second hook of that type next to the default one (``chekpoint`` beside ``checkpoint``)."""
    for default, cfg in DEFAULT_HOOKS.items():
        if _type_name(entry.get("type")) == _type_name(cfg["type"]) and did_you_mean(
            name, [default]
        ):
            raise ConfigError(
                f"{where} adds a second {cfg['type']} next to the default one under '{default}'",
                where=where,
                hint=f"did you mean '{default}'? To change the default hook, use default_hooks.{default}",
            )


def merge_default_hooks(user: Mapping[str, Any] | None) -> dict[str, Any]:
    """The default hooks with the config's ``default_hooks`` merged in, key by key.

    - a dict for a default key updates that hook's arguments; a dict whose ``type`` names
      another hook replaces the default entirely;
    - ``None`` removes the hook;
    - a hook object replaces the default;
    - a key that is not a default adds a hook (a dict needs a ``type``).

    Defaults come first in their usual order, then added hooks in the config's order. The
    result is a new dict of new dicts; neither argument is modified.
    """
    merged: dict[str, Any] = {name: copy.deepcopy(cfg) for name, cfg in DEFAULT_HOOKS.items()}
    if user is None:
        return merged
    if not isinstance(user, Mapping):
        raise ConfigError(
            f"default_hooks must be a mapping of name to hook config, got {type(user).__name__}",
            where="default_hooks",
            hint="e.g. default_hooks: {checkpoint: {interval: 2}, logger: null}",
        )
    for name, entry in user.items():
        where = f"default_hooks.{name}"
        if entry is None:
            merged.pop(name, None)
            continue
        if not isinstance(entry, Mapping):
            merged[name] = entry  # a hook object
            continue
        entry = copy.deepcopy(dict(entry))
        base = merged.get(name)
        if isinstance(base, Mapping):
            new_type = entry.get("type")
            if new_type is not None and _type_name(new_type) != _type_name(base.get("type")):
                merged[name] = entry
            else:
                merged[name] = {**base, **entry}
            continue
        if "type" not in entry:
            known = ", ".join(DEFAULT_HOOKS)
            raise ConfigError(
                f"{where} is not a default hook, so it needs a 'type'",
                where=where,
                hint=did_you_mean(str(name), DEFAULT_HOOKS)
                or f"add type: <HookName>, or use one of the default keys: {known}",
            )
        _refuse_misspelled_default(str(name), entry, where)
        merged[name] = entry
    return merged
