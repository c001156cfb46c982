"""Building a run's components from config: model, loops, dataloaders, optimizer, schedulers, hooks.

Every Runner argument accepts a built object or a config dict; this module turns the dicts
into objects through the registries, with what the run knows (seed, rank, device, the
lengths of the loops). The Runner keeps MMEngine's ``build_*`` methods, which call these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from torchkiln.config.plain import plain
from torchkiln.errors import ConfigError, UsageError
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
    def model(
        self, model: Any, data_preprocessor: Any, wrapper_cfg: Mapping[str, Any] | None
    ) -> Any:
        """Build the model, move it to this process's device and wrap it for distribution."""
        import torch

        if isinstance(model, Mapping):
            model_cfg = dict(model)
            if data_preprocessor is not None:
                model_cfg.setdefault("data_preprocessor", data_preprocessor)
            model = MODELS.build(model_cfg)
        if not isinstance(model, torch.nn.Module):
            raise ConfigError(
                f"model must be an nn.Module or a model config, got {type(model).__name__}",
                where="model",
            )
        from torchkiln.model.model_checks import plain_module_message

        problem = plain_module_message(model)
        if problem is not None:
            raise ConfigError(problem[0], where="model", hint=problem[1])
        device = self._env.device()
        model = model.to(device)
        if not self._env.distributed:
            return model
        from torchkiln.model.wrappers import wrap_model

        return wrap_model(model, wrapper_cfg, device=device)

    # ------------------------------------------------------------------ logging
    def log_processor(self, log_processor: Any, train_cfg: Mapping[str, Any] | None) -> Any:
        """The log processor; its ``by_epoch`` follows the train loop unless given."""
        if log_processor is None:
            log_processor = {}
        if not isinstance(log_processor, Mapping):
            return log_processor
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
    def dataloader(self, dataloader: Any) -> Any:
        """Build a dataloader from its config with this run's seed and rank."""
        if not isinstance(dataloader, Mapping):
            return dataloader
        from torchkiln.data import build_dataloader

        return build_dataloader(
            plain(dataloader), seed=self._env.seed, diff_rank_seed=self._env.diff_rank_seed
        )

    @staticmethod
    def evaluator(evaluator: Any) -> Any:
        """An Evaluator from a metric config, a list of them, or an Evaluator config."""
        from torchkiln.evaluation import build_evaluator

        return build_evaluator(plain(evaluator))

    # ------------------------------------------------------------------ loops
    def train_loop(self, loop_cfg: Any, dataloader: Any) -> Any:
        """The train loop from ``train_cfg`` (``type`` or ``by_epoch``)."""
        if loop_cfg is None or dataloader is None:
            raise UsageError(
                "this runner cannot train: it has no train_dataloader/train_cfg/optim_wrapper",
                hint="give all three to the Runner or in the config",
            )
        if not isinstance(loop_cfg, Mapping):
            return loop_cfg
        cfg = dict(loop_cfg)
        if "type" not in cfg:
            by_epoch = cfg.pop("by_epoch", True)
            cfg["type"] = "EpochBasedTrainLoop" if by_epoch else "IterBasedTrainLoop"
        return LOOPS.build(cfg, default_args={"runner": self._runner, "dataloader": dataloader})

    def eval_loop(self, loop_cfg: Any, default_type: str, dataloader: Any, evaluator: Any) -> Any:
        """A validation or test loop from ``val_cfg``/``test_cfg``."""
        if loop_cfg is not None and not isinstance(loop_cfg, Mapping):
            return loop_cfg
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
    def hooks(
        self,
        host: HookHost,
        default_hooks: Mapping[str, Any] | None,
        custom_hooks: Sequence[Any] | None,
        disabled_plugins: Sequence[str],
        plugin_options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> list[tuple[str, str]]:
        """Register the default hooks, the custom hooks and the installed hook plugins on
        ``host``; return the plugins loaded from entry points as ``(name, distribution)``.
        """
        from torchkiln.hooks.defaults import merge_default_hooks
        from torchkiln.plugin_host import load_entry_point_plugins

        for hook_cfg in merge_default_hooks(default_hooks).values():
            register_hook(host, hook_cfg)
        for hook in custom_hooks or ():
            register_hook(host, plain(hook))
        return list(
            load_entry_point_plugins(host, disabled=set(disabled_plugins), options=plugin_options)
        )


def register_hook(host: HookHost, hook: Any, priority: int | str | None = None) -> None:
    """Register a hook object or a ``{type: ..., priority: ...}`` config on ``host``."""
    if isinstance(hook, Mapping):
        cfg = dict(hook)
        priority = cfg.pop("priority", priority)
        hook = HOOKS.build(cfg)
    host.register(hook, priority=priority)
