"""Building a run's components from config: model, loops, dataloaders, optimizer, schedulers, hooks.

Every Runner argument accepts a built object or a config dict; this module turns the dicts
into objects through the registries, with what the run knows (seed, rank, device, the
lengths of the loops). The Runner keeps MMEngine's ``build_*`` methods, which call these.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from torchkiln.config.plain import plain
from torchkiln.errors import ConfigRuntimeError, UsageRuntimeError
from torchkiln.registry import HOOKS, LOG_PROCESSORS, LOOPS, MODELS

if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.plugin_host import HookHost
    from torchkiln.runner.environment import RunEnvironment
    from torchkiln.runner.runner import Runner

__all__ = ["ComponentBuilder", "loop_is_by_epoch"]


def loop_is_by_epoch(loop_or_cls: Any) -> bool:
    """Whether a train loop (or loop class) counts in epochs: anything but an iteration-based loop."""
    from torchkiln.runner.train_loops import IterBasedTrainLoop

    cls = loop_or_cls if isinstance(loop_or_cls, type) else type(loop_or_cls)
    return not issubclass(cls, IterBasedTrainLoop)


class ComponentBuilder:
    """Builds the components of one run.

    :param runner: the runner the components belong to (loops are built with it).
    :param env: the run's environment (seed, rank, device).
    """

    def __init__(self, runner: Runner, env: RunEnvironment) -> None:
        self._runner = runner
        self._env = env

    # ------------------------------------------------------------------ model
    @staticmethod
    def model(model: Any) -> Any:
        """An ``nn.Module`` as it is, or one built from a ``MODELS`` config.

        :raises TypeError: ``model`` is neither.

        A module without ``train_step``/``val_step``/``test_step`` is accepted (as in
        MMEngine): a phase that needs a missing step says so when it starts.
        """
        import torch

        if isinstance(model, Mapping):
            model = MODELS.build(dict(model))
        elif not isinstance(model, torch.nn.Module):
            raise TypeError(
                f"model should be an nn.Module or a model config dict, got {type(model).__name__}"
            )
        return model

    def wrap_model(self, model: Any, wrapper_cfg: Mapping[str, Any] | None) -> Any:
        """Move ``model`` to this process's device and wrap it for distribution (if any)."""
        from torchkiln.model.wrappers import is_model_wrapper

        if is_model_wrapper(model):
            return model
        model = model.to(self._env.device())
        if not self._env.distributed:
            # SyncBatchNorm needs a process group: a single process uses plain batch norms.
            from torchkiln.model.sync_batchnorm import revert_sync_batchnorm

            return revert_sync_batchnorm(model)
        from torchkiln.model.wrappers import wrap_model

        return wrap_model(model, wrapper_cfg, device=self._env.device())

    # ------------------------------------------------------------------ logging
    def log_processor(self, log_processor: Any, train_cfg: Mapping[str, Any] | None) -> Any:
        """A log processor as it is, or one built from its config (``type`` defaults to
        ``LogProcessor``; ``by_epoch`` follows the train loop unless given).

        :raises TypeError: ``log_processor`` is neither a log processor nor a dict.
        """
        if not isinstance(log_processor, Mapping):
            if callable(getattr(log_processor, "get_log_after_iter", None)):
                return log_processor
            raise TypeError(
                "log_processor should be a LogProcessor or a config dict, got "
                f"{type(log_processor).__name__}"
            )
        cfg = dict(log_processor)
        cfg.setdefault("type", "LogProcessor")
        if train_cfg is not None and "by_epoch" not in cfg:
            cfg["by_epoch"] = self.train_by_epoch(train_cfg)
        return LOG_PROCESSORS.build(cfg)

    @staticmethod
    def train_by_epoch(train_cfg: Mapping[str, Any]) -> bool:
        """Whether ``train_cfg`` describes an epoch-based loop."""
        if "type" in train_cfg:
            loop_cls = LOOPS.get(train_cfg["type"])
            return not isinstance(loop_cls, type) or loop_is_by_epoch(loop_cls)
        return bool(train_cfg.get("by_epoch", True))

    # ------------------------------------------------------------------ data and evaluation
    @staticmethod
    def evaluator(evaluator: Any) -> Any:
        """An Evaluator from a metric config, a list of them, or an Evaluator config."""
        from torchkiln.evaluation import build_evaluator

        return build_evaluator(plain(evaluator))

    # ------------------------------------------------------------------ loops
    def train_loop(self, loop_cfg: Any, dataloader: Any) -> Any:
        """The train loop from ``train_cfg`` (``type`` or ``by_epoch``)."""
        if loop_cfg is None or dataloader is None:
            raise UsageRuntimeError(
                "this runner cannot train: its train loop should not be None, but it has no"
                " train_dataloader/train_cfg/optim_wrapper",
                hint="give all three to the Runner or in the config",
            )
        if not isinstance(loop_cfg, Mapping):
            return _check_loop(loop_cfg, "train_cfg")
        cfg = dict(loop_cfg)
        if "type" in cfg and "by_epoch" in cfg:
            raise ConfigRuntimeError(
                "Only one of train_cfg.type and train_cfg.by_epoch can be given: a loop type"
                " decides how it counts",
                where="train_cfg",
                hint="keep type for a custom loop, or by_epoch for the built-in ones",
            )
        if "type" not in cfg:
            by_epoch = cfg.pop("by_epoch", True)
            cfg["type"] = "EpochBasedTrainLoop" if by_epoch else "IterBasedTrainLoop"
        return LOOPS.build(cfg, default_args={"runner": self._runner, "dataloader": dataloader})

    def eval_loop(self, loop_cfg: Any, default_type: str, dataloader: Any, evaluator: Any) -> Any:
        """A validation or test loop from ``val_cfg``/``test_cfg``."""
        if loop_cfg is not None and not isinstance(loop_cfg, Mapping):
            return _check_loop(loop_cfg, "val_cfg" if default_type == "ValLoop" else "test_cfg")
        cfg = dict(loop_cfg or {})
        cfg.setdefault("type", default_type)
        return LOOPS.build(
            cfg,
            default_args={"runner": self._runner, "dataloader": dataloader, "evaluator": evaluator},
        )

    # ------------------------------------------------------------------ optimization
    def optim_wrapper(self, model: Any, optim_wrapper: Any) -> Any:
        """The optimizer wrapper (or wrapper dict) for the unwrapped model."""
        from torchkiln.optim import build_optim_wrapper

        return build_optim_wrapper(model, plain(optim_wrapper))

    @staticmethod
    def param_schedulers(scheduler: Any, optim_wrapper: Any, loop: Any) -> Any:
        """Parameter schedulers; ``end`` defaults to the end of training."""
        if scheduler is None:
            return []
        from torchkiln.optim import build_param_schedulers

        epoch_length = len(loop.dataloader) if hasattr(loop.dataloader, "__len__") else None
        return build_param_schedulers(
            plain(scheduler),
            optim_wrapper,
            epoch_length=epoch_length,
            max_epochs=loop.max_epochs,
            max_iters=loop.max_iters,
            train_by_epoch=loop_is_by_epoch(loop),
        )

    # ------------------------------------------------------------------ hooks
    @staticmethod
    def entry_point_plugins(
        host: HookHost,
        disabled_plugins: Sequence[str],
        plugin_options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> list[tuple[str, str]]:
        """Register the installed hook plugins on ``host``; return them as ``(name, distribution)``."""
        from torchkiln.plugin_host import load_entry_point_plugins

        return list(
            load_entry_point_plugins(host, disabled=set(disabled_plugins), options=plugin_options)
        )


def _check_loop(loop: Any, key: str) -> Any:
    """``loop`` when it is a loop object (has ``run``), else a TypeError naming ``key``."""
    if callable(getattr(loop, "run", None)):
        return loop
    raise TypeError(
        f"{key} should be a loop object or a config dict, got {type(loop).__name__} {loop!r}"
    )


def register_hook(host: HookHost, hook: Any, priority: int | str | None = None) -> Any:
    """Register a hook object or a ``{type: ..., priority: ...}`` config on ``host``.

    The priority is, first to last: ``priority``, the config's ``priority``, the hook's own
    ``priority`` attribute (default ``NORMAL``). As in MMEngine, a priority given here is
    also set as the hook's ``priority`` attribute, so ``runner.hooks`` shows it. Returns
    the hook object.

    :raises TypeError: ``hook`` is not a hook object or a config dict.
    """
    if isinstance(hook, Mapping):
        cfg = dict(hook)
        own = cfg.pop("priority", None)
        hook = HOOKS.build(cfg)
        if priority is None:
            priority = own
    elif hook is None or isinstance(hook, (type, str, bytes, int, float, Sequence)):
        raise TypeError(
            f"hook should be an instance of Hook or dict, got {type(hook).__name__} {hook!r}",
        )
    if priority is not None and not isinstance(hook, types.ModuleType):
        with contextlib.suppress(AttributeError):  # objects that refuse new attributes
            hook.priority = priority
    host.register(hook, priority=priority)
    return hook
