"""The Runner: builds a run's components from config and drives train, val and test.

Construction follows MMEngine's Runner: every argument accepts a built object or a config
dict, heavy pieces (dataloaders, optimizer, schedulers, loops) are built when the phase that
needs them starts, and everything around the loops is a hook called through the plugin host.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from torchkiln.errors import EXIT_TERMINATED, ConfigError, RunInterrupted, UsageError
from torchkiln.registry import HOOKS, LOG_PROCESSORS, LOOPS, MODELS, RUNNERS, set_default_scope
from torchkiln.runner.checkpointing import CheckpointMixin
from torchkiln.runner.environment import set_random_seed, setup_env

__all__ = ["Runner"]

_TRIPLES = (
    ("train_dataloader", "train_cfg", "optim_wrapper"),
    ("val_dataloader", "val_cfg", "val_evaluator"),
    ("test_dataloader", "test_cfg", "test_evaluator"),
)


def _plain(value: Any) -> Any:
    """A deep plain copy of config values (Config views become dicts)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and all(
        isinstance(v, (Mapping, str, int, float, bool, list, tuple, type(None))) for v in value
    ):
        return type(value)(_plain(v) for v in value)
    return value


def _is_cfg(value: Any) -> bool:
    return isinstance(value, Mapping)


# Mount points during which a loop's iteration or epoch is finished but not yet counted.
_PHASE_OF_HOOK = {"after_train_iter": "iter_end", "after_train_epoch": "epoch_end"}


@RUNNERS.register_module()
class Runner(CheckpointMixin):
    """Train, validate and test a model, with hooks around every step.

    The arguments are MMEngine's; each accepts a built object or a config dict.

    :param model: an ``nn.Module`` (usually a :class:`~torchkiln.model.BaseModel`) or a
        ``MODELS`` config.
    :param work_dir: where checkpoints, logs and the dumped config go.
    :param train_dataloader: with ``train_cfg`` and ``optim_wrapper``: all three or none.
    :param val_dataloader: with ``val_cfg`` and ``val_evaluator``: all three or none.
    :param test_dataloader: with ``test_cfg`` and ``test_evaluator``: all three or none.
    :param train_cfg: ``{by_epoch: true, max_epochs: N, val_interval: 1}``, or
        ``{by_epoch: false, max_iters: N}``, or ``{type: MyLoop, ...}``.
    :param default_hooks: entries merge with the defaults; ``None`` for a key removes it.
    :param custom_hooks: a list of hook objects or ``{type: ..., priority: ...}`` configs.
    :param load_from: weights to load before the run (not the training state): a path, or
        ``{path, strict, revise_keys}`` (``revise_keys``: ``[pattern, replacement]`` regex
        pairs applied to the checkpoint's keys, default strips ``module.``).
    :param resume: ``True`` resumes from ``work_dir/last_checkpoint``; a path resumes from it.
    :param launcher: ``none``, ``pytorch``, ``slurm`` or ``mpi``.
    :param randomness: ``{seed, deterministic, diff_rank_seed}``.
    :param cfg: the whole config, dumped into ``work_dir``.
    """

    def __init__(
        self,
        model: Any,
        work_dir: str,
        train_dataloader: Any = None,
        val_dataloader: Any = None,
        test_dataloader: Any = None,
        train_cfg: Mapping[str, Any] | None = None,
        val_cfg: Mapping[str, Any] | None = None,
        test_cfg: Mapping[str, Any] | None = None,
        auto_scale_lr: Mapping[str, Any] | None = None,
        optim_wrapper: Any = None,
        param_scheduler: Any = None,
        val_evaluator: Any = None,
        test_evaluator: Any = None,
        default_hooks: Mapping[str, Any] | None = None,
        custom_hooks: Sequence[Any] | None = None,
        data_preprocessor: Any = None,
        load_from: str | Mapping[str, Any] | None = None,
        resume: bool | str = False,
        launcher: str = "none",
        env_cfg: Mapping[str, Any] | None = None,
        log_processor: Any = None,
        log_level: str = "INFO",
        visualizer: Any = None,
        default_scope: str | None = None,
        randomness: Mapping[str, Any] | None = None,
        experiment_name: str | None = None,
        cfg: Any = None,
        compile: bool | Mapping[str, Any] = False,  # noqa: A002 - MMEngine's key
        model_wrapper_cfg: Mapping[str, Any] | None = None,
        plugins: Mapping[str, Any] | None = None,
        custom_imports: Mapping[str, Any] | None = None,
    ) -> None:
        self.cfg = cfg
        self._check_triples(
            train_dataloader=train_dataloader, train_cfg=train_cfg, optim_wrapper=optim_wrapper,
            val_dataloader=val_dataloader, val_cfg=val_cfg, val_evaluator=val_evaluator,
            test_dataloader=test_dataloader, test_cfg=test_cfg, test_evaluator=test_evaluator,
        )
        train_cfg = _plain(train_cfg)
        if train_cfg is not None and "type" in train_cfg and "by_epoch" in train_cfg:
            raise ConfigError(
                "train_cfg takes either 'type' (a custom loop) or 'by_epoch', not both",
                where="train_cfg", hint="drop by_epoch and pick EpochBasedTrainLoop or IterBasedTrainLoop as type",
            )
        self._train_dataloader = train_dataloader
        self._val_dataloader = val_dataloader
        self._test_dataloader = test_dataloader
        self._train_cfg = train_cfg
        self._val_cfg = _plain(val_cfg)
        self._test_cfg = _plain(test_cfg)
        self._optim_wrapper_cfg = optim_wrapper
        self._param_scheduler_cfg = param_scheduler
        self._val_evaluator = val_evaluator
        self._test_evaluator = test_evaluator
        self._auto_scale_lr = _plain(auto_scale_lr)
        self._load_from = _plain(load_from)
        self._resume = resume
        self._compile = _plain(compile)
        self._plugins_cfg = _plain(plugins) or {}
        # Stopping on request (signals, request_stop): see torchkiln.runner.signals.
        self.stop_requested = False
        self._stop_local = False
        self._stop_reason: str | None = None
        self._stop_exit_code = EXIT_TERMINATED
        self._stop_agreement: Any = None

        self._train_loop: Any = None
        self._val_loop: Any = None
        self._test_loop: Any = None
        self.optim_wrapper: Any = None
        self.param_schedulers: Any = None

        if default_scope is not None:
            set_default_scope(default_scope)
        if custom_imports:
            self._import_custom(_plain(custom_imports))

        # Environment, distribution and seeds come before anything random is built.
        self.launcher = launcher or "none"
        self._setup_dist(self.launcher, _plain(env_cfg) or {})
        setup_env(_plain(env_cfg))
        randomness = _plain(randomness) or {}
        self._randomness_cfg = randomness
        self._seed = set_random_seed(
            randomness.get("seed"), bool(randomness.get("deterministic", False)), bool(randomness.get("diff_rank_seed", False))
        )
        self._deterministic = bool(randomness.get("deterministic", False))

        # work_dir, timestamp (shared by every rank), logging.
        from torchkiln.dist import broadcast_object

        self._work_dir = os.path.abspath(work_dir)
        self._timestamp = broadcast_object(time.strftime("%Y%m%d_%H%M%S", time.localtime()))
        self._experiment_name = experiment_name or self._default_experiment_name()
        self._log_dir = os.path.join(self._work_dir, self._timestamp)
        if self.rank == 0:
            os.makedirs(self._log_dir, exist_ok=True)
        self._setup_logging(log_level)
        self.log_processor = self._build_log_processor(log_processor)
        from torchkiln.visualization.visualizer import build_visualizer

        self.visualizer = build_visualizer(
            visualizer, log_dir=self._log_dir, rank=self.rank, config=self.cfg, name=self._experiment_name
        )

        # Model: build, initialise lazily, move to the device, wrap for distribution.
        self._model_wrapper_cfg = _plain(model_wrapper_cfg)
        self.model = self._build_model(model, data_preprocessor)
        self._weights_initialized = False

        # Hooks: built-ins from default_hooks, custom_hooks, entry-point plugins.
        self._setup_hooks(_plain(default_hooks), custom_hooks)
        self._dump_config()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_cfg(cls, cfg: Any) -> Runner:
        """Build a runner from a whole config (a :class:`~torchkiln.config.Config` or dict)."""
        get = cfg.get
        if get("work_dir") is None:
            raise ConfigError("the config has no work_dir", hint="add work_dir: work_dirs/<name> or pass --work-dir")
        return cls(
            model=_plain(get("model")),
            work_dir=get("work_dir"),
            train_dataloader=_plain(get("train_dataloader")),
            val_dataloader=_plain(get("val_dataloader")),
            test_dataloader=_plain(get("test_dataloader")),
            train_cfg=_plain(get("train_cfg")),
            val_cfg=_plain(get("val_cfg")),
            test_cfg=_plain(get("test_cfg")),
            auto_scale_lr=_plain(get("auto_scale_lr")),
            optim_wrapper=_plain(get("optim_wrapper")),
            param_scheduler=_plain(get("param_scheduler")),
            val_evaluator=_plain(get("val_evaluator")),
            test_evaluator=_plain(get("test_evaluator")),
            default_hooks=_plain(get("default_hooks")),
            custom_hooks=_plain(get("custom_hooks")),
            data_preprocessor=_plain(get("data_preprocessor")),
            load_from=get("load_from"),
            resume=get("resume", False) or False,
            launcher=get("launcher", "none") or "none",
            env_cfg=_plain(get("env_cfg")),
            log_processor=_plain(get("log_processor")),
            log_level=get("log_level", "INFO") or "INFO",
            visualizer=_plain(get("visualizer")),
            default_scope=get("default_scope"),
            randomness=_plain(get("randomness")),
            experiment_name=get("experiment_name"),
            cfg=cfg,
            compile=_plain(get("compile", False)) or False,
            model_wrapper_cfg=_plain(get("model_wrapper_cfg")),
            plugins=_plain(get("plugins")),
            custom_imports=_plain(get("custom_imports")),
        )

    @staticmethod
    def _check_triples(**given: Any) -> None:
        for names in _TRIPLES:
            present = [n for n in names if given[n] is not None]
            if present and len(present) != 3:
                missing = [n for n in names if given[n] is None]
                raise ConfigError(
                    f"{', '.join(present)} given without {', '.join(missing)}",
                    hint=f"{', '.join(names)} go together: give all three or none",
                )

    @staticmethod
    def _import_custom(custom_imports: Mapping[str, Any]) -> None:
        import importlib

        imports = custom_imports.get("imports", [])
        if isinstance(imports, str):
            imports = [imports]
        allow_failed = bool(custom_imports.get("allow_failed_imports", False))
        for name in imports:
            try:
                importlib.import_module(name)
            except ImportError as exc:
                if not allow_failed:
                    raise ConfigError(f"custom_imports: cannot import {name!r}: {exc}", where="custom_imports.imports") from None

    def _default_experiment_name(self) -> str:
        filename = getattr(self.cfg, "filename", None)
        if filename:
            stem = os.path.splitext(os.path.basename(filename))[0]
            return f"{stem}_{self._timestamp}"
        return self._timestamp

    def _setup_dist(self, launcher: str, env_cfg: Mapping[str, Any]) -> None:
        from torchkiln.dist import get_dist_info, init_dist, is_distributed

        if launcher not in ("none", "pytorch", "slurm", "mpi"):
            raise ConfigError(f"unknown launcher {launcher!r}", where="launcher", hint="use none, pytorch, slurm or mpi")
        if launcher != "none" and not is_distributed():
            dist_cfg = dict(env_cfg.get("dist_cfg") or {})
            init_dist(launcher, **dist_cfg)
        elif launcher == "none" and not is_distributed() and int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
            import warnings

            warnings.warn(
                f"this process was started by a launcher (WORLD_SIZE={os.environ['WORLD_SIZE']}) but launcher is "
                "'none': every process trains alone on the whole dataset; pass --launcher pytorch (torchrun), "
                "slurm or mpi to train together",
                stacklevel=3,
            )
        self._rank, self._world_size = get_dist_info()
        self._distributed = self._world_size > 1 or is_distributed()

    def _setup_logging(self, log_level: str) -> None:
        from torchkiln.logging import MessageHub, setup_logging

        self.logger = setup_logging(
            self._log_dir if self.rank == 0 else None, level=log_level, rank=self.rank, timestamp=self._timestamp
        )
        self.message_hub = MessageHub.get_instance(f"{self._experiment_name}")

    def _build_log_processor(self, log_processor: Any) -> Any:
        if log_processor is None:
            log_processor = {}
        if isinstance(log_processor, Mapping):
            cfg = dict(log_processor)
            cfg.setdefault("type", "LogProcessor")
            if self._train_cfg is not None and "by_epoch" not in cfg:
                cfg["by_epoch"] = self._train_by_epoch()
            return LOG_PROCESSORS.build(cfg)
        return log_processor

    def _train_by_epoch(self) -> bool:
        cfg = self._train_cfg or {}
        if "type" in cfg:
            loop_cls = LOOPS.get(cfg["type"])
            from torchkiln.runner.train_loops import IterBasedTrainLoop

            return not (isinstance(loop_cls, type) and issubclass(loop_cls, IterBasedTrainLoop))
        return bool(cfg.get("by_epoch", True))

    def _build_model(self, model: Any, data_preprocessor: Any) -> Any:
        import torch

        if isinstance(model, Mapping):
            model_cfg = dict(model)
            if data_preprocessor is not None:
                model_cfg.setdefault("data_preprocessor", data_preprocessor)
            model = MODELS.build(model_cfg)
        if not isinstance(model, torch.nn.Module):
            raise ConfigError(f"model must be an nn.Module or a model config, got {type(model).__name__}", where="model")
        device = self._device()
        model = model.to(device)
        from torchkiln.model.wrappers import wrap_model

        return wrap_model(model, self._model_wrapper_cfg, device=device) if self._distributed else model

    def _device(self) -> Any:
        import torch

        if torch.cuda.is_available():
            from torchkiln.dist import get_local_rank

            return torch.device("cuda", get_local_rank() if self._distributed else torch.cuda.current_device())
        return torch.device("cpu")

    def _setup_hooks(self, default_hooks: Mapping[str, Any] | None, custom_hooks: Sequence[Any] | None) -> None:
        from torchkiln.hooks.defaults import merge_default_hooks
        from torchkiln.plugin_host import HookHost, load_entry_point_plugins

        self._host = HookHost()
        self.hooks = self._host.facade
        for _name, hook_cfg in merge_default_hooks(default_hooks).items():
            self.register_hook(hook_cfg)
        for hook in custom_hooks or ():
            self.register_hook(_plain(hook))
        disabled = set(self._plugins_cfg.get("disable", []) or [])
        self._entry_point_plugins = load_entry_point_plugins(self._host, disabled=disabled)

    def register_hook(self, hook: Any, priority: int | str | None = None) -> None:
        """Register a hook object or a ``{type: ..., priority: ...}`` config."""
        if isinstance(hook, Mapping):
            cfg = dict(hook)
            priority = cfg.pop("priority", priority)
            hook = HOOKS.build(cfg)
        self._host.register(hook, priority=priority)

    def _dump_config(self) -> None:
        if self.rank != 0 or self.cfg is None:
            return
        dump = getattr(self.cfg, "dump", None)
        filename = getattr(self.cfg, "filename", None) or "config.yaml"
        stem = os.path.splitext(os.path.basename(filename))[0]
        path = os.path.join(self._work_dir, f"{stem}.yaml")
        if callable(dump):
            dump(path)
        else:
            from torchkiln._native import dump_yaml
            from torchkiln.runner.checkpoint_io import atomic_write_text

            atomic_write_text(path, dump_yaml(_plain(self.cfg), escape_refs=True))

    # ------------------------------------------------------------------ properties
    @property
    def work_dir(self) -> str:
        """Absolute path of the work directory."""
        return self._work_dir

    @property
    def log_dir(self) -> str:
        """This run's log folder: ``work_dir/<timestamp>``."""
        return self._log_dir

    @property
    def timestamp(self) -> str:
        """The run's start time, shared by every rank."""
        return self._timestamp

    @property
    def experiment_name(self) -> str:
        """The experiment name (config stem and timestamp by default)."""
        return self._experiment_name

    @property
    def rank(self) -> int:
        """This process's global rank."""
        return self._rank

    @property
    def world_size(self) -> int:
        """Number of processes in the job."""
        return self._world_size

    @property
    def distributed(self) -> bool:
        """True when running under torch.distributed with more than one process."""
        return self._distributed

    @property
    def seed(self) -> int:
        """The random seed in use."""
        return self._seed

    @property
    def deterministic(self) -> bool:
        """Whether deterministic algorithms were requested."""
        return self._deterministic

    @property
    def train_loop(self) -> Any:
        """The train loop (built on first access)."""
        if self._train_loop is None or isinstance(self._train_loop, Mapping):
            self._train_loop = self.build_train_loop(self._train_cfg)
        return self._train_loop

    @property
    def val_loop(self) -> Any:
        """The validation loop, or None when the run has no validation."""
        if self._val_loop is None and self._val_dataloader is not None:
            self._val_loop = self.build_val_loop(self._val_cfg)
        return self._val_loop

    @property
    def test_loop(self) -> Any:
        """The test loop, or None when the run has no test set."""
        if self._test_loop is None and self._test_dataloader is not None:
            self._test_loop = self.build_test_loop(self._test_cfg)
        return self._test_loop

    @property
    def epoch(self) -> int:
        """Finished training epochs."""
        return self._train_loop.epoch if self._train_loop is not None else 0

    @property
    def iter(self) -> int:
        """Finished training iterations."""
        return self._train_loop.iter if self._train_loop is not None else 0

    @property
    def max_epochs(self) -> int:
        """Total training epochs."""
        return self._train_loop.max_epochs if self._train_loop is not None else 0

    @property
    def max_iters(self) -> int:
        """Total training iterations."""
        return self._train_loop.max_iters if self._train_loop is not None else 0

    @property
    def train_dataloader(self) -> Any:
        """The training dataloader (built with the train loop)."""
        return self.train_loop.dataloader

    @property
    def val_dataloader(self) -> Any:
        """The validation dataloader, or None."""
        return self.val_loop.dataloader if self.val_loop is not None else None

    @property
    def test_dataloader(self) -> Any:
        """The test dataloader, or None."""
        return self.test_loop.dataloader if self.test_loop is not None else None

    @property
    def val_evaluator(self) -> Any:
        """The validation evaluator, or None."""
        return self.val_loop.evaluator if self.val_loop is not None else None

    @property
    def test_evaluator(self) -> Any:
        """The test evaluator, or None."""
        return self.test_loop.evaluator if self.test_loop is not None else None

    # ------------------------------------------------------------------ builders
    def build_dataloader(self, dataloader: Any) -> Any:
        """Build a dataloader from its config with this run's seed and rank."""
        if not isinstance(dataloader, Mapping):
            return dataloader
        from torchkiln.data import build_dataloader

        return build_dataloader(
            _plain(dataloader), seed=self._seed, diff_rank_seed=bool(self._randomness_cfg.get("diff_rank_seed", False))
        )

    def build_evaluator(self, evaluator: Any) -> Any:
        """Build an Evaluator from a metric config, a list of them, or an Evaluator config."""
        from torchkiln.evaluation import build_evaluator

        return build_evaluator(_plain(evaluator))

    def build_train_loop(self, loop_cfg: Any) -> Any:
        """Build the train loop from ``train_cfg`` (``type`` or ``by_epoch``)."""
        if loop_cfg is None or self._train_dataloader is None:
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
        return LOOPS.build(cfg, default_args={"runner": self, "dataloader": self._train_dataloader})

    def build_val_loop(self, loop_cfg: Any) -> Any:
        """Build the validation loop from ``val_cfg``."""
        cfg = dict(loop_cfg or {})
        cfg.setdefault("type", "ValLoop")
        return LOOPS.build(cfg, default_args={"runner": self, "dataloader": self._val_dataloader, "evaluator": self._val_evaluator})

    def build_test_loop(self, loop_cfg: Any) -> Any:
        """Build the test loop from ``test_cfg``."""
        cfg = dict(loop_cfg or {})
        cfg.setdefault("type", "TestLoop")
        return LOOPS.build(cfg, default_args={"runner": self, "dataloader": self._test_dataloader, "evaluator": self._test_evaluator})

    def build_optim_wrapper(self, optim_wrapper: Any) -> Any:
        """Build the optimizer wrapper (or wrapper dict) for the unwrapped model."""
        from torchkiln.optim import build_optim_wrapper

        return build_optim_wrapper(self.model, _plain(optim_wrapper))

    def build_param_scheduler(self, scheduler: Any) -> Any:
        """Build parameter schedulers; ``end`` defaults to the end of training."""
        if scheduler is None:
            return []
        from torchkiln.optim import build_param_schedulers

        loop = self.train_loop
        epoch_length = len(loop.dataloader) if hasattr(loop.dataloader, "__len__") else None
        return build_param_schedulers(
            _plain(scheduler), self.optim_wrapper, epoch_length=epoch_length,
            max_epochs=loop.max_epochs, max_iters=loop.max_iters, train_by_epoch=self._loop_by_epoch(loop),
        )

    @staticmethod
    def _loop_by_epoch(loop: Any) -> bool:
        from torchkiln.runner.train_loops import IterBasedTrainLoop

        return not isinstance(loop, IterBasedTrainLoop)

    def scale_lr(self, optim_wrapper: Any, auto_scale_lr: Mapping[str, Any] | None) -> None:
        """Scale learning rates by ``world_size * batch_size / base_batch_size`` when enabled."""
        if not auto_scale_lr or not auto_scale_lr.get("enable", False):
            return
        if "base_batch_size" not in auto_scale_lr:
            raise ConfigError("auto_scale_lr.enable needs base_batch_size", where="auto_scale_lr.base_batch_size")
        batch_size = getattr(self.train_dataloader, "batch_size", None)
        if batch_size is None:
            raise ConfigError("auto_scale_lr needs a train_dataloader with a batch_size", where="auto_scale_lr")
        ratio = self.world_size * batch_size / auto_scale_lr["base_batch_size"]
        wrappers = optim_wrapper.values() if hasattr(optim_wrapper, "values") else [optim_wrapper]
        for wrapper in wrappers:
            for group in wrapper.param_groups:
                group["lr"] = group["lr"] * ratio
                if "initial_lr" in group:
                    group["initial_lr"] = group["initial_lr"] * ratio
        self.logger.info(f"auto_scale_lr: learning rates scaled by {ratio:g} (world {self.world_size} x batch {batch_size} / {auto_scale_lr['base_batch_size']})")

    # ------------------------------------------------------------------ hooks
    def call_hook(self, fn_name: str, **kwargs: Any) -> None:
        """Call every implementation of mount point ``fn_name`` (``runner`` is passed for you)."""
        phase = _PHASE_OF_HOOK.get(fn_name)
        loop = self._train_loop
        if phase is not None and getattr(loop, "_phase", None) == "idle":
            # A custom loop calling the hooks itself: checkpoints taken now count the
            # finished iteration/epoch, as with the built-in loops.
            loop._phase = phase
            try:
                self.hooks.call(fn_name, runner=self, **kwargs)
            finally:
                loop._phase = "idle"
            return
        self.hooks.call(fn_name, runner=self, **kwargs)

    # ------------------------------------------------------------------ stopping
    def request_stop(self, reason: str = "a stop request", exit_code: int = EXIT_TERMINATED) -> None:
        """Stop training after the current iteration, save a resumable checkpoint and raise
        :class:`~torchkiln.errors.RunInterrupted` with ``exit_code``.

        Safe to call from a signal handler. Under torch.distributed the ranks agree on the
        iteration to stop after (see :mod:`torchkiln.runner.signals`).
        """
        if self._stop_reason is None:
            self._stop_reason = reason
            self._stop_exit_code = exit_code
        self._stop_local = True
        if not self._distributed:
            self.stop_requested = True
            if self._train_loop is not None:
                self._train_loop.stop_training = True

    def poll_stop(self) -> bool:
        """Whether training stops now; the loops ask after each iteration (all ranks together)."""
        agreement = self._stop_agreement
        if agreement is not None and agreement.distributed:
            if agreement.poll(self._stop_local) and not self.stop_requested:
                self.stop_requested = True
                if self._stop_reason is None:
                    self._stop_reason = "a stop request on another rank"
        if self.stop_requested and self._train_loop is not None:
            self._train_loop.stop_training = True
        return self.stop_requested

    def _on_signal(self, signum: int) -> None:
        from torchkiln.runner.signals import exit_code_for, signal_name

        self.request_stop(signal_name(signum), exit_code_for(signum))

    # ------------------------------------------------------------------ phases
    def train(self) -> Any:
        """Train the model; return it (unwrapped if it was wrapped)."""
        loop = self.train_loop
        self.optim_wrapper = self.build_optim_wrapper(self._optim_wrapper_cfg)
        self.scale_lr(self.optim_wrapper, self._auto_scale_lr)
        self.param_schedulers = self.build_param_scheduler(self._param_scheduler_cfg)
        _ = self.val_loop  # build validation now so config errors surface before training
        self._maybe_compile()
        self._log_run_header("train")
        self.stop_requested = self._stop_local = False
        self._stop_reason = None
        return self._run_phase(self._train_body, resume_state=True)

    def _train_body(self) -> Any:
        from torchkiln.runner.signals import StopAgreement

        loop = self.train_loop
        self._stop_agreement = StopAgreement(self._distributed)
        try:
            result = loop.run()
        finally:
            self._stop_agreement.close()
            self._stop_agreement = None
        if self.stop_requested:
            path = self._save_on_stop()
            reason = self._stop_reason or "a stop request"
            message = (
                f"training stopped by {reason} after iteration {self.iter} (epoch {self.epoch}); "
                f"a resumable checkpoint was saved to {path}"
            )
            self.logger.warning(message)
            raise RunInterrupted(
                message, exit_code=self._stop_exit_code, hint="continue with `torchkiln train CONFIG --resume` (or resume: true)"
            )
        return result

    def val(self) -> dict[str, Any]:
        """Validate the model once; return the metrics."""
        if self.val_loop is None:
            raise UsageError("this runner cannot validate: it has no val_dataloader/val_cfg/val_evaluator")
        self._log_run_header("val")
        return self._run_phase(self.val_loop.run, resume_state=False)

    def test(self) -> dict[str, Any]:
        """Test the model once; return the metrics."""
        if self.test_loop is None:
            raise UsageError("this runner cannot test: it has no test_dataloader/test_cfg/test_evaluator")
        self._log_run_header("test")
        return self._run_phase(self.test_loop.run, resume_state=False)

    def _run_phase(self, body: Any, resume_state: bool) -> Any:
        """``before_run``, weights, body, ``after_run`` — teardown only if setup completed.

        Training (``resume_state``) runs with the stop-signal handlers installed, from
        ``before_run`` to the end of ``after_run``.
        """
        import contextlib

        from torchkiln.runner.signals import StopSignals

        signals = StopSignals(self._on_signal, self._flush_logs) if resume_state else contextlib.nullcontext()
        with signals:
            self.hooks.before_run(self)
            try:
                self._init_model_weights()
                self.load_or_resume(resume_state)
                if resume_state:
                    loop = self._train_loop
                    self.optim_wrapper.initialize_count_status(self._unwrapped_model(), loop.iter, loop.max_iters)
                result = body()
            except BaseException:
                try:
                    self.hooks.after_run(self)
                    self.wait_for_checkpoints()
                except Exception as exc:  # the original error matters more
                    self.logger.error(f"after_run failed while handling an error: {exc}")
                finally:
                    self._flush_logs()
                raise
            self.hooks.after_run(self)
            self.wait_for_checkpoints()
        return result

    @staticmethod
    def _flush_logs() -> None:
        """Write out buffered log lines now (the process may be about to exit)."""
        from torchkiln.logging import flush_all

        try:
            flush_all()
        except Exception:  # noqa: BLE001 - flushing must never hide the error being raised
            pass

    def _log_run_header(self, phase: str) -> None:
        from torchkiln.plugin_host import format_hook_table

        self.logger.info(
            f"torchkiln {phase}: work_dir={self._work_dir} seed={self._seed} world_size={self._world_size} "
            f"deterministic={self._deterministic}"
        )
        if self._entry_point_plugins:
            self.logger.info("plugins: " + ", ".join(f"{n} ({d})" for n, d in self._entry_point_plugins))
        self.logger.info("hooks in call order:\n" + format_hook_table(self._host))

    def _maybe_compile(self) -> None:
        if not self._compile:
            return
        import torch

        options = self._compile if isinstance(self._compile, Mapping) else {}
        if self._deterministic:
            from torchkiln.runner.environment import use_deterministic_algorithms

            use_deterministic_algorithms(compiling=True)
        target = self.model
        target.train_step = torch.compile(target.train_step, **options)
        self.logger.info(f"train_step compiled with torch.compile({options})")

    def _unwrapped_model(self) -> Any:
        from torchkiln.model.wrappers import is_model_wrapper

        return self.model.module if is_model_wrapper(self.model) else self.model

    def _init_model_weights(self) -> None:
        if self._weights_initialized:
            return
        self._weights_initialized = True
        model = self._unwrapped_model()
        if hasattr(model, "init_weights"):
            model.init_weights()

    def __repr__(self) -> str:
        return f"Runner(work_dir={self._work_dir!r}, model={type(self.model).__name__})"

