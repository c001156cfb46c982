"""The Runner: owns a run's components and drives train, val and test through the loops.

Construction follows MMEngine's Runner: every argument accepts a built object or a config
dict, heavy pieces (dataloaders, optimizer, schedulers, loops) are built when the phase that
needs them starts, and everything around the loops is a hook called through the plugin host.

The Runner keeps only "own the components and run the loops"; named collaborators do the
rest: :class:`~torchkiln.runner.environment.RunEnvironment` (distribution, env_cfg, seeds),
:class:`~torchkiln.runner.component_builder.ComponentBuilder` (components from config),
:class:`~torchkiln.runner.stop_control.StopController` (signals and stop requests) and
:class:`~torchkiln.runner.checkpointer.Checkpointer` (every checkpoint file). See
docs/architecture.md.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from torchkiln.config.plain import config_text, plain
from torchkiln.config.schema import CustomImportsCfg, RunConfig
from torchkiln.errors import (
    EXIT_TERMINATED,
    ConfigAssertionError,
    ConfigError,
    ConfigTypeError,
    ConfigValueError,
    RunInterrupted,
    UsageRuntimeError,
    UsageTypeError,
)
from torchkiln.hookspecs import MOUNT_POINTS
from torchkiln.registry import RUNNERS, set_default_scope
from torchkiln.runner.base_loop import BaseLoop
from torchkiln.runner.checkpointer import Checkpointer
from torchkiln.runner.component_builder import ComponentBuilder, register_hook
from torchkiln.runner.environment import RunEnvironment
from torchkiln.runner.gc_phase import promote_setup_objects
from torchkiln.runner.lazy_components import schedulers_built
from torchkiln.runner.model_state import DEFAULT_REVISE_KEYS, weights_to_load
from torchkiln.runner.stop_control import StopController
from torchkiln.runner.training_state import TrainingState

if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.plugin_host import HookList

__all__ = ["Runner"]


@RUNNERS.register_module()
class Runner:
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
        compile: bool | Mapping[str, Any] = False,
        model_wrapper_cfg: Mapping[str, Any] | None = None,
        plugins: Mapping[str, Any] | None = None,
        custom_imports: Mapping[str, Any] | None = None,
        *,
        run_config: RunConfig | None = None,
    ) -> None:
        self.cfg = cfg
        _check_scheduler_cfg(param_scheduler)
        compile = _own_argument(cfg, "compile", compile, False)
        model_wrapper_cfg = _own_argument(cfg, "model_wrapper_cfg", model_wrapper_cfg, None)
        plugins = _own_argument(cfg, "plugins", plugins, None)
        custom_imports = _own_argument(cfg, "custom_imports", custom_imports, None)
        if run_config is None:
            # The same pass as `torchkiln config validate`, over the arguments that are configs.
            from torchkiln.config.validation import check_arguments

            run_config = check_arguments(
                {
                    "model": model,
                    "work_dir": work_dir,
                    "train_dataloader": train_dataloader,
                    "val_dataloader": val_dataloader,
                    "test_dataloader": test_dataloader,
                    "train_cfg": train_cfg,
                    "val_cfg": val_cfg,
                    "test_cfg": test_cfg,
                    "auto_scale_lr": auto_scale_lr,
                    "optim_wrapper": optim_wrapper,
                    "param_scheduler": param_scheduler,
                    "val_evaluator": val_evaluator,
                    "test_evaluator": test_evaluator,
                    "default_hooks": default_hooks,
                    "custom_hooks": custom_hooks,
                    "data_preprocessor": data_preprocessor,
                    "load_from": load_from,
                    "resume": resume,
                    "launcher": launcher,
                    "env_cfg": env_cfg,
                    "log_processor": log_processor,
                    "log_level": log_level,
                    "visualizer": visualizer,
                    "default_scope": default_scope,
                    "randomness": randomness,
                    "experiment_name": experiment_name,
                    "compile": compile,
                    "model_wrapper_cfg": model_wrapper_cfg,
                    "plugins": plugins,
                    "custom_imports": custom_imports,
                }
            )
        self.run_config = run_config
        train_cfg = plain(train_cfg)
        self._train_dataloader = train_dataloader
        self._val_dataloader = val_dataloader
        self._test_dataloader = test_dataloader
        self._train_cfg = train_cfg
        self._val_cfg = plain(val_cfg)
        self._test_cfg = plain(test_cfg)
        self._val_evaluator = val_evaluator
        self._test_evaluator = test_evaluator
        self._auto_scale_lr = plain(auto_scale_lr)
        self._load_from = weights_to_load(run_config.load_from)
        self._resume = resume
        self._compile = plain(compile)
        self._plugins_cfg = plain(plugins) or {}

        # Each loop holds its config until first use builds it (MMEngine's lazy fields).
        self._train_loop: Any = train_cfg
        self._val_loop: Any = self._val_cfg
        self._test_loop: Any = self._test_cfg
        #: Whether a checkpoint was loaded or resumed (MMEngine's flag).
        self._has_loaded = False
        #: The optimizer wrapper: its config (or the object given) until ``train()`` builds it.
        self.optim_wrapper: Any = optim_wrapper
        #: The parameter schedulers: their config until ``train()`` builds them.
        self.param_schedulers: Any = param_scheduler
        self._lr_scaled = False

        if default_scope is not None:
            set_default_scope(default_scope)
        if run_config.custom_imports is not None:
            _import_custom(run_config.custom_imports)

        # Environment, distribution and seeds come before anything random is built.
        self._env = RunEnvironment(run_config.launcher, plain(env_cfg), plain(randomness))
        self.launcher = self._env.launcher
        self._build = ComponentBuilder(self, self._env)
        self._stop = StopController(self._env.distributed, self._on_stop_decided)

        # work_dir, timestamp (shared by every rank), logging.
        from torchkiln.dist import broadcast_object

        self._work_dir = os.path.abspath(work_dir)
        self._timestamp = broadcast_object(time.strftime("%Y%m%d_%H%M%S", time.localtime()))
        self._experiment_name = experiment_name or self._default_experiment_name()
        self._log_dir = os.path.join(self._work_dir, self._timestamp)
        created = not os.path.exists(self._work_dir)
        if self.rank == 0:
            os.makedirs(self._log_dir, exist_ok=True)
        try:
            self._setup_logging(log_level)
            self.log_processor = self.build_log_processor(plain(log_processor) or {})
            self.visualizer = self.build_visualizer(visualizer)

            # Model: build, initialise lazily, move to the device, wrap for distribution.
            if isinstance(model, Mapping) and data_preprocessor is not None:
                model = {"data_preprocessor": data_preprocessor, **model}
            self.model = self.wrap_model(plain(model_wrapper_cfg), self.build_model(model))
            self._weights_initialized = False

            # Hooks: built-ins from default_hooks, custom_hooks, entry-point plugins.
            # `dispatch` calls mount points; `hooks` lists the hook objects (MMEngine's list).
            from torchkiln.plugin_host import HookHost, HookList

            self._host = HookHost()
            self.dispatch = self._host.facade
            self._hook_list = HookList(self._host)
            self.register_hooks(plain(default_hooks), custom_hooks)
            self._entry_point_plugins = self._build.entry_point_plugins(
                self._host,
                self._plugins_cfg.get("disable", []) or [],
                self._plugins_cfg.get("options") or {},
            )
            self.checkpointer = Checkpointer(
                self._work_dir,
                TrainingState(self),
                rank=self.rank,
                logger=self.logger,
                message_hub=self.message_hub,
            )
            self._dump_config()
        except BaseException:
            # A failed start leaves no empty run folder behind (logs with content stay).
            _remove_if_empty(self._log_dir, self._work_dir if created else None)
            raise

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_cfg(cls, cfg: Any, run_config: RunConfig | None = None) -> Runner:
        """Build a runner from a whole config (a :class:`~torchkiln.config.Config` or dict).

        :param run_config: ``cfg`` as :func:`torchkiln.config.check` typed it, when the
            caller validated it already (``torchkiln train`` does); else it is checked here.
        """
        get = cfg.get
        if get("work_dir") is None:
            raise ConfigError(
                "the config has no work_dir",
                hint="add work_dir: work_dirs/<name> or pass --work-dir",
            )
        if run_config is None:
            from torchkiln.config.validation import check

            run_config = check(cfg, components=False)
        # MMEngine's from_cfg passes MMEngine's arguments only; torchkiln's own go to a
        # subclass when its __init__ takes them (else Runner.__init__ reads them from cfg).
        own = {
            "compile": plain(get("compile", False)) or False,
            "model_wrapper_cfg": plain(get("model_wrapper_cfg")),
            "plugins": plain(get("plugins")),
            "custom_imports": plain(get("custom_imports")),
            "run_config": run_config,
        }
        accepted = _accepted_arguments(cls)
        extra = {k: v for k, v in own.items() if accepted is None or k in accepted}
        return cls(
            model=plain(get("model")),
            work_dir=get("work_dir"),
            train_dataloader=plain(get("train_dataloader")),
            val_dataloader=plain(get("val_dataloader")),
            test_dataloader=plain(get("test_dataloader")),
            train_cfg=plain(get("train_cfg")),
            val_cfg=plain(get("val_cfg")),
            test_cfg=plain(get("test_cfg")),
            auto_scale_lr=plain(get("auto_scale_lr")),
            optim_wrapper=plain(get("optim_wrapper")),
            param_scheduler=plain(get("param_scheduler")),
            val_evaluator=plain(get("val_evaluator")),
            test_evaluator=plain(get("test_evaluator")),
            default_hooks=plain(get("default_hooks")),
            custom_hooks=plain(get("custom_hooks")),
            data_preprocessor=plain(get("data_preprocessor")),
            load_from=get("load_from"),
            resume=get("resume", False) or False,
            launcher=get("launcher", "none") or "none",
            env_cfg=plain(get("env_cfg")),
            log_processor=plain(get("log_processor")),
            log_level=get("log_level", "INFO") or "INFO",
            visualizer=plain(get("visualizer")),
            default_scope=get("default_scope"),
            randomness=plain(get("randomness")),
            experiment_name=get("experiment_name"),
            cfg=cfg,
            **extra,
        )

    def _default_experiment_name(self) -> str:
        filename = getattr(self.cfg, "filename", None)
        if filename:
            stem = os.path.splitext(os.path.basename(filename))[0]
            return f"{stem}_{self._timestamp}"
        return self._timestamp

    def _setup_logging(self, log_level: str) -> None:
        from torchkiln.logging import MessageHub, setup_logging

        self.logger = setup_logging(
            self._log_dir if self.rank == 0 else None,
            level=log_level,
            rank=self.rank,
            timestamp=self._timestamp,
            name=self._experiment_name,
        )
        self.message_hub = MessageHub.get_instance(f"{self._experiment_name}")

    # ------------------------------------------------------------------ hooks (MMEngine's API)
    @property
    def hooks(self) -> HookList:
        """The registered hook objects in call order (MMEngine's ``runner.hooks`` list).

        A read-only view: iterate it, index it, take its ``len``, check ``isinstance`` and
        read ``hook.priority``. Register with :meth:`register_hook`; call mount points
        through :attr:`dispatch` (``runner.dispatch.after_train_iter(runner, ...)``) or
        :meth:`call_hook`.
        """
        return self._hook_list

    @property
    def _hooks(self) -> HookList:
        """MMEngine's private hook list; assigning a list replaces every registration."""
        return self._hook_list

    @_hooks.setter
    def _hooks(self, hooks: Sequence[Any]) -> None:
        for record in self._host.records():
            self._host.unregister(record.name)
        for hook in hooks:
            self._host.register(hook)

    def register_hook(self, hook: Any, priority: int | str | None = None) -> None:
        """Register a hook object or a ``{type: ..., priority: ...}`` config.

        The priority is ``priority`` if given, else the config's ``priority``, else the
        hook's own ``priority`` attribute; a given one is also set on the hook (MMEngine's
        behaviour). Hooks of equal priority run in registration order.

        :raises TypeError: ``hook`` is neither a hook object nor a config dict.
        """
        register_hook(self._host, hook, priority)

    def register_default_hooks(self, hooks: Mapping[str, Any] | None = None) -> None:
        """Register the default hooks, with ``hooks`` merged in by name.

        An entry updates the default of that name (a different ``type`` replaces it), a
        hook object replaces it, ``None`` removes it, and a new name adds a hook (see
        :func:`torchkiln.hooks.defaults.merge_default_hooks` for the defaults).
        """
        from torchkiln.hooks.defaults import merge_default_hooks

        for hook in merge_default_hooks(hooks).values():
            self.register_hook(hook)

    def register_custom_hooks(self, hooks: Sequence[Any]) -> None:
        """Register each hook object or ``{type: ..., priority: ...}`` config of ``hooks``."""
        for hook in hooks:
            self.register_hook(plain(hook))

    def register_hooks(
        self,
        default_hooks: Mapping[str, Any] | None = None,
        custom_hooks: Sequence[Any] | None = None,
    ) -> None:
        """Register the default hooks (merged with ``default_hooks``), then ``custom_hooks``."""
        self.register_default_hooks(default_hooks)
        if custom_hooks is not None:
            self.register_custom_hooks(custom_hooks)

    def _dump_config(self) -> None:
        if self.rank != 0 or self.cfg is None:
            return
        filename = getattr(self.cfg, "filename", None) or "config.yaml"
        stem = os.path.splitext(os.path.basename(filename))[0]
        path = os.path.join(self._work_dir, f"{stem}.yaml")
        dump = getattr(self.cfg, "dump", None)
        if callable(dump):
            dump(path)
            return
        from torchkiln.runner.checkpoint_io import atomic_write_text

        atomic_write_text(path, config_text(self.cfg))

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
        return self._env.rank

    @property
    def world_size(self) -> int:
        """Number of processes in the job."""
        return self._env.world_size

    @property
    def distributed(self) -> bool:
        """True when running under torch.distributed with more than one process."""
        return self._env.distributed

    @property
    def seed(self) -> int:
        """The random seed in use."""
        return self._env.seed

    @property
    def deterministic(self) -> bool:
        """Whether deterministic algorithms were requested."""
        return self._env.deterministic

    @property
    def diff_rank_seed(self) -> bool:
        """Whether every rank draws its own random numbers (``randomness.diff_rank_seed``)."""
        return self._env.diff_rank_seed

    @property
    def hook_host(self) -> Any:
        """The plugin host holding this run's hooks (``get_plugins()`` lists them in call order)."""
        return self._host

    @property
    def val_interval(self) -> int:
        """Validate every this many epochs (or iterations), as the train loop says."""
        return int(self.train_loop.val_interval)

    @property
    def val_begin(self) -> int:
        """The first epoch (or iteration) after which validation runs."""
        return int(self.train_loop.val_begin)

    @property
    def model_name(self) -> str:
        """The model's class name (without its distributed wrapper)."""
        return type(self.unwrapped_model).__name__

    @property
    def unwrapped_model(self) -> Any:
        """The model without its distributed wrapper."""
        from torchkiln.model.wrappers import is_model_wrapper

        return self.model.module if is_model_wrapper(self.model) else self.model

    @property
    def train_loop(self) -> Any:
        """The train loop (built on first access)."""
        if self._train_loop is None or isinstance(self._train_loop, Mapping):
            self._train_loop = self.build_train_loop(self._train_cfg)
        return self._train_loop

    @property
    def train_loop_if_built(self) -> Any:
        """The train loop if it was built, else None (never builds it)."""
        return self._built_loop(self._train_loop)

    @property
    def val_loop(self) -> Any:
        """The validation loop, or None when the run has no validation (built on first access)."""
        loop = self._val_loop
        if (loop is None or isinstance(loop, Mapping)) and self._val_dataloader is not None:
            loop = self._val_loop = self.build_val_loop(self._val_cfg)
        return self._built_loop(loop)

    @property
    def test_loop(self) -> Any:
        """The test loop, or None when the run has no test set (built on first access)."""
        loop = self._test_loop
        if (loop is None or isinstance(loop, Mapping)) and self._test_dataloader is not None:
            loop = self._test_loop = self.build_test_loop(self._test_cfg)
        return self._built_loop(loop)

    @staticmethod
    def _built_loop(loop: Any) -> Any:
        """``loop`` if it is a built loop, None for a loop config (or None)."""
        if isinstance(loop, BaseLoop):  # the usual case, checked first: Mapping's check is slow
            return loop
        return None if isinstance(loop, Mapping) else loop

    @property
    def epoch(self) -> int:
        """Finished training epochs."""
        loop = self.train_loop_if_built
        return loop.epoch if loop is not None else 0

    @property
    def iter(self) -> int:
        """Finished training iterations."""
        loop = self.train_loop_if_built
        return loop.iter if loop is not None else 0

    @property
    def max_epochs(self) -> int:
        """Total training epochs."""
        loop = self.train_loop_if_built
        return loop.max_epochs if loop is not None else 0

    @property
    def max_iters(self) -> int:
        """Total training iterations."""
        loop = self.train_loop_if_built
        return loop.max_iters if loop is not None else 0

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

    # ------------------------------------------------------------------ builders (MMEngine's names)
    def build_model(self, model: Any) -> Any:
        """An ``nn.Module`` as it is, or one built from a ``MODELS`` config (not yet moved
        to the device or wrapped: see :meth:`wrap_model`).

        :raises TypeError: ``model`` is neither.
        """
        return self._build.model(model)

    def wrap_model(self, model_wrapper_cfg: Mapping[str, Any] | None, model: Any) -> Any:
        """Move ``model`` to this process's device and, when distributed, wrap it (DDP by
        default, or ``model_wrapper_cfg``). A model already wrapped is returned as it is.
        """
        return self._build.wrap_model(model, model_wrapper_cfg)

    def build_visualizer(self, visualizer: Any = None) -> Any:
        """A visualizer as it is, or one built from a config (``None``: the default one).

        A config gets the experiment name as ``name`` and the log folder as ``save_dir``
        unless it sets them; the run's config is recorded with the visualizer.

        :raises TypeError: ``visualizer`` is neither a visualizer, a dict nor ``None``.
        """
        from torchkiln.visualization.visualizer import build_visualizer

        if (
            visualizer is not None
            and not isinstance(visualizer, Mapping)
            and not callable(getattr(visualizer, "add_scalars", None))
        ):
            raise TypeError(
                "visualizer should be a Visualizer, a config dict or None, got "
                f"{type(visualizer).__name__}"
            )
        return build_visualizer(
            plain(visualizer),
            log_dir=self._log_dir,
            rank=self.rank,
            config=self.cfg,
            name=self._experiment_name,
        )

    def build_logger(
        self, log_level: int | str = "INFO", log_file: str | None = None, **kwargs: Any
    ) -> Any:
        """The :class:`~torchkiln.logging.MMLogger` named after the experiment (created with
        ``log_level``, ``log_file`` and ``kwargs`` the first time), as MMEngine builds it;
        the file defaults to ``<log_dir>/<timestamp>.log``."""
        from torchkiln.logging import MMLogger

        if log_file is None:
            log_file = os.path.join(self._log_dir, f"{self._timestamp}.log")
        kwargs.setdefault("name", self._experiment_name)
        kwargs.setdefault("file_mode", "a")
        return MMLogger.get_instance(log_level=log_level, log_file=log_file, **kwargs)

    def build_message_hub(self, message_hub: Mapping[str, Any] | None = None) -> Any:
        """The :class:`~torchkiln.logging.MessageHub` named after the experiment, or the one
        ``message_hub`` (``MessageHub.get_instance`` arguments) describes."""
        from torchkiln.logging import MessageHub

        if message_hub is None:
            return MessageHub.get_instance(self._experiment_name)
        if not isinstance(message_hub, Mapping):
            raise UsageTypeError(
                f"message_hub should be a dict or None, got {type(message_hub).__name__}"
            )
        args = dict(message_hub)
        args.setdefault("name", self._experiment_name)
        return MessageHub.get_instance(**args)

    def get_hooks_info(self) -> str:
        """Per mount point, the hooks called there in order with their priorities (the table
        the run logs at DEBUG)."""
        from torchkiln.plugin_host import format_hook_table

        return format_hook_table(self._host)

    def build_log_processor(self, log_processor: Any) -> Any:
        """A log processor as it is, or one built from a config (``type`` defaults to
        ``LogProcessor``; ``by_epoch`` follows the train loop unless set).

        :raises TypeError: ``log_processor`` is neither a log processor nor a dict.
        """
        return self._build.log_processor(plain(log_processor), self._train_cfg)

    @staticmethod
    def build_dataloader(
        dataloader: Any, seed: int | None = None, diff_rank_seed: bool = False
    ) -> Any:
        """A ``DataLoader`` as it is, or one built from its config.

        :param seed: seeds the sampler (unless its config sets one), the workers
            (``seed + rank * num_workers + worker_id``) and the loader's generator; ``None``
            leaves them unseeded. The loops pass the run's seed.
        :param diff_rank_seed: ranks draw different numbers: the sampler then takes a seed
            shared by every rank, so their shards stay disjoint.
        """
        from torchkiln.data import build_dataloader

        return build_dataloader(plain(dataloader), seed=seed, diff_rank_seed=diff_rank_seed)

    def build_evaluator(self, evaluator: Any) -> Any:
        """Build an Evaluator from a metric config, a list of metrics or configs, or an
        Evaluator config; an Evaluator is returned as it is.

        :raises TypeError: ``evaluator`` is none of them (a single metric object goes in a
            list).
        """
        from torchkiln.evaluation import Evaluator

        if not isinstance(evaluator, (Evaluator, Mapping, list, tuple)):
            raise TypeError(
                "evaluator should be an Evaluator, a metric config dict or a list of metrics,"
                f" got {type(evaluator).__name__}; put a single metric in a list: [metric]"
            )
        return self._build.evaluator(evaluator)

    def build_train_loop(self, loop_cfg: Any) -> Any:
        """Build the train loop from ``train_cfg`` (``type`` or ``by_epoch``)."""
        return self._build.train_loop(loop_cfg, self._train_dataloader)

    def build_val_loop(self, loop_cfg: Any) -> Any:
        """Build the validation loop from ``val_cfg``."""
        return self._build.eval_loop(loop_cfg, "ValLoop", self._val_dataloader, self._val_evaluator)

    def build_test_loop(self, loop_cfg: Any) -> Any:
        """Build the test loop from ``test_cfg``."""
        return self._build.eval_loop(
            loop_cfg, "TestLoop", self._test_dataloader, self._test_evaluator
        )

    def build_optim_wrapper(self, optim_wrapper: Any) -> Any:
        """Build the optimizer wrapper (or wrapper dict) for the model; a built one is
        returned as it is.

        :raises TypeError: ``optim_wrapper`` is neither a wrapper nor a config dict.
        """
        if not isinstance(optim_wrapper, Mapping) and not hasattr(optim_wrapper, "param_groups"):
            raise TypeError(
                "optimizer wrapper should be an OptimWrapper, an OptimWrapperDict or a config"
                f" dict, got {type(optim_wrapper).__name__}"
            )
        if isinstance(optim_wrapper, Mapping):
            import torch

            if not {"type", "optimizer", "constructor"} & set(optim_wrapper):
                # A dict of built wrappers, one per optimizer name.
                for name, item in optim_wrapper.items():
                    if not hasattr(item, "param_groups"):
                        raise ConfigValueError(
                            # "mush": MMEngine's spelling, kept for code that matches it
                            "optim_wrapper has no type, optimizer or constructor, so it is a dict"
                            " of built wrappers: each item mush be an optimizer object (an"
                            f" OptimWrapper), got {name}={type(item).__name__}",
                            where=f"optim_wrapper.{name}",
                            hint="build each wrapper, or give a constructor (e.g."
                            " MultiOptimWrapperConstructor) to build them from configs",
                        )
            if isinstance(optim_wrapper.get("optimizer"), torch.optim.Optimizer):
                # A built optimizer in the config: wrap it (``type`` defaults to OptimWrapper).
                from torchkiln.registry import OPTIM_WRAPPERS

                cfg = dict(optim_wrapper)
                cfg.setdefault("type", "OptimWrapper")
                return OPTIM_WRAPPERS.build(cfg)
        return self._build.optim_wrapper(self.model, optim_wrapper)

    def build_param_scheduler(self, scheduler: Any) -> Any:
        """Build parameter schedulers; ``end`` defaults to the end of training.

        :raises AssertionError: the optimizer wrapper is still a config
            (:meth:`build_optim_wrapper` builds it first).
        """
        if isinstance(self.optim_wrapper, Mapping) and not hasattr(
            self.optim_wrapper, "param_groups"
        ):
            raise ConfigAssertionError(
                "build_optim_wrapper should be called before build_param_scheduler: the"
                " optimizer wrapper is still a config",
                hint="runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)",
            )
        return self._build.param_schedulers(scheduler, self.optim_wrapper, self.train_loop)

    def scale_lr(self, optim_wrapper: Any, auto_scale_lr: Mapping[str, Any] | None = None) -> None:
        """Scale learning rates by ``world_size * batch_size / base_batch_size`` when enabled.

        :param auto_scale_lr: ``{enable, base_batch_size}``; the run's ``auto_scale_lr`` when
            None.
        :raises AssertionError: enabled without ``base_batch_size``.
        """
        if auto_scale_lr is None:
            auto_scale_lr = self._auto_scale_lr
        if not auto_scale_lr or not auto_scale_lr.get("enable", False):
            return
        if "base_batch_size" not in auto_scale_lr:
            raise ConfigAssertionError(
                "auto_scale_lr.enable needs base_batch_size (the batch size the learning rates"
                " were set for)",
                where="auto_scale_lr.base_batch_size",
                hint="e.g. auto_scale_lr: {enable: true, base_batch_size: 256}",
            )
        batch_size = getattr(self.train_dataloader, "batch_size", None)
        if batch_size is None:
            raise ConfigError(
                "auto_scale_lr needs a train_dataloader with a batch_size", where="auto_scale_lr"
            )
        ratio = self.world_size * batch_size / auto_scale_lr["base_batch_size"]
        wrappers = optim_wrapper.values() if hasattr(optim_wrapper, "values") else [optim_wrapper]
        for wrapper in wrappers:
            for group in wrapper.param_groups:
                group["lr"] = group["lr"] * ratio
                if "initial_lr" in group:
                    group["initial_lr"] = group["initial_lr"] * ratio
        self.logger.info(
            f"auto_scale_lr: learning rates scaled by {ratio:g} (world {self.world_size} x batch {batch_size} / {auto_scale_lr['base_batch_size']})"
        )

    # ------------------------------------------------------------------ hooks
    def call_hook(self, fn_name: str, **kwargs: Any) -> None:
        """Call every implementation of mount point ``fn_name`` (``runner`` is passed for you).

        A custom loop that calls ``after_train_iter``/``after_train_epoch`` itself gets the
        built-in loops' meaning: checkpoints taken meanwhile count the finished iteration/epoch.
        A name that is not a mount point (a custom loop's own stage, e.g.
        ``before_warmup_iter``) calls that method of every registered hook that has it, in
        priority order, as MMEngine does.
        """
        if fn_name not in _MOUNT_POINTS:
            for record in self._host.records():
                method = getattr(record.plugin, fn_name, None)
                if callable(method):
                    method(self, **kwargs)
            return
        loop = self._train_loop
        finishing = getattr(loop, "finishing", None)
        context = finishing(fn_name) if callable(finishing) else contextlib.nullcontext()
        with context:
            self.dispatch.call(fn_name, runner=self, **kwargs)

    # ------------------------------------------------------------------ checkpoints (MMEngine's API)
    def save_checkpoint(
        self,
        out_dir: str,
        filename: str,
        file_client_args: Any = None,
        save_optimizer: bool = True,
        save_param_scheduler: bool = True,
        meta: Mapping[str, Any] | None = None,
        by_epoch: bool = True,
    ) -> str:
        """Write a checkpoint of the current state to ``out_dir/filename`` atomically (rank 0
        writes; every rank takes part). Returns its path.
        """
        return self.checkpointer.save(
            filename,
            out_dir,
            save_optimizer=save_optimizer,
            save_param_scheduler=save_param_scheduler,
            meta=meta,
            by_epoch=by_epoch,
            async_save=False,
        )

    def load_checkpoint(
        self,
        filename: str,
        map_location: Any = "cpu",
        strict: bool = False,
        revise_keys: Sequence[Sequence[str]] = DEFAULT_REVISE_KEYS,
    ) -> dict[str, Any]:
        """Load model weights from a checkpoint (or a bare state dict) and log what did not fit.

        :raises CheckpointError: the file is unreadable, with ``strict`` any key mismatch, and
            always when not a single key of the model was found in the file.
        """
        checkpoint = self.checkpointer.load(
            filename, map_location=map_location, strict=strict, revise_keys=revise_keys
        )
        self._has_loaded = True
        return checkpoint

    def resume(
        self,
        filename: str,
        resume_optimizer: bool = True,
        resume_param_scheduler: bool = True,
        map_location: Any = "cpu",
    ) -> dict[str, Any]:
        """Restore model, optimizer, schedulers, scaler, loop position, data order, log state and RNG.

        :raises CheckpointError: the file is unreadable or not a training checkpoint.
        """
        checkpoint = self.checkpointer.resume(
            filename, resume_optimizer, resume_param_scheduler, map_location
        )
        self._has_loaded = True
        return checkpoint

    def load_or_resume(self, resume_state: bool = True) -> None:
        """Resume training state (``resume``) or load weights (``load_from``)."""
        self.checkpointer.load_or_resume(self._resume if resume_state else False, self._load_from)

    def wait_for_checkpoints(self) -> None:
        """Block until a checkpoint written in the background is complete (raise if it failed)."""
        self.checkpointer.wait()

    # ------------------------------------------------------------------ stopping
    @property
    def stop_control(self) -> StopController:
        """Signals and stop requests of this run (the loops poll it after each iteration)."""
        return self._stop

    @property
    def stop_requested(self) -> bool:
        """Whether training stops after the current iteration."""
        return self._stop.stop_requested

    def request_stop(
        self, reason: str = "a stop request", exit_code: int = EXIT_TERMINATED
    ) -> None:
        """Stop training after the current iteration, save a resumable checkpoint and raise
        :class:`~torchkiln.errors.RunInterrupted` with ``exit_code``.

        Safe to call from a signal handler. Under torch.distributed the ranks agree on the
        iteration to stop after (see :mod:`torchkiln.runner.stop_control`).
        """
        self._stop.request(reason, exit_code)

    def poll_stop(self) -> bool:
        """Whether training stops now; the loops ask after each iteration (all ranks together)."""
        return self._stop.poll()

    def _on_stop_decided(self) -> None:
        if self._train_loop is not None and not isinstance(self._train_loop, Mapping):
            self._train_loop.stop_training = True

    # ------------------------------------------------------------------ phases
    def train(self) -> Any:
        """Train the model; return it (unwrapped if it was wrapped)."""
        _ = self.train_loop  # first: says clearly when the runner has nothing to train
        self.build_training_components()
        self._observe_optimizer_steps()
        _ = self.val_loop  # build validation now so config errors surface before training
        self._check_model_steps("train_step", "val_step" if self.val_loop is not None else None)
        self._maybe_compile()
        self._log_run_header("train")
        self._stop.reset()
        return self._run_phase(self._train_body, resume_state=True)

    def _train_body(self) -> Any:
        loop = self.train_loop
        resumed = self.checkpointer.resumed_from
        if (
            resumed is not None
            and loop.iter >= loop.max_iters
            and self.checkpointer.is_complete(resumed)
        ):
            self.logger.info(
                f"the run is complete: {os.path.basename(resumed)} is its last checkpoint (epoch {loop.epoch}, "
                f"iteration {loop.iter} of {loop.max_iters}); nothing to train. To train longer, raise "
                "train_cfg.max_epochs (or max_iters) and resume again; to evaluate, use torchkiln val/test"
            )
            return self.model
        with self._stop.agreement():
            result = loop.run()
        if not self.stop_requested:
            self.checkpointer.mark_complete()
        if self.stop_requested:
            path = self.checkpointer.save_on_stop(self.iter)
            reason = self._stop.reason or "a stop request"
            message = (
                f"training stopped by {reason} after iteration {self.iter} ({self._epoch_words()}); "
                f"a resumable checkpoint was saved to {path}"
            )
            self.logger.warning(message)
            raise RunInterrupted(
                message,
                exit_code=self._stop.exit_code,
                hint="continue with `torchkiln train CONFIG --resume` (or resume: true)",
            )
        return result

    def build_training_components(self) -> None:
        """Build the optimizer wrapper and the parameter schedulers from their configs
        (those already built stay as they are) and scale the learning rates once
        (``auto_scale_lr``). ``train()`` and resuming call it; until then
        :attr:`optim_wrapper` and :attr:`param_schedulers` hold their configs, as in MMEngine.
        """
        if self.optim_wrapper is None:
            raise UsageRuntimeError(
                "this runner cannot train: it has no optim_wrapper",
                hint="give train_dataloader, train_cfg and optim_wrapper to the Runner or in the config",
            )
        self.optim_wrapper = self.build_optim_wrapper(self.optim_wrapper)
        if not self._lr_scaled:
            self.scale_lr(self.optim_wrapper, self._auto_scale_lr)
            self._lr_scaled = True
        if self.param_schedulers is not None and not schedulers_built(self.param_schedulers):
            self.param_schedulers = self.build_param_scheduler(self.param_schedulers)

    def _observe_optimizer_steps(self) -> None:
        """Let the optimizer wrapper(s) call ``after_backward``/``before_optimizer_step`` when
        a hook implements either (otherwise the update path stays as it is)."""
        host = self._host
        if not (host.has_impls("after_backward") or host.has_impls("before_optimizer_step")):
            return
        dispatch = self.dispatch

        def observer(mount_point: str, optim_wrapper: Any) -> None:
            getattr(dispatch, mount_point)(self, optim_wrapper)

        wrappers = (
            self.optim_wrapper.values()
            if hasattr(self.optim_wrapper, "values")
            else [self.optim_wrapper]
        )
        for wrapper in wrappers:
            if callable(getattr(wrapper, "observe_steps", None)):
                wrapper.observe_steps(observer)

    def _epoch_words(self) -> str:
        """Where in the epochs training stands, counted as the log counts them (from 1)."""
        loop = self._train_loop
        position = (
            loop.checkpoint_position()
            if hasattr(loop, "checkpoint_position")
            else {"epoch_iter": 1}
        )
        if position.get("epoch_iter", 0):
            return f"in epoch {self.epoch + 1}"
        return f"at the end of epoch {self.epoch}"

    def val(self) -> dict[str, Any]:
        """Validate the model once; return the metrics."""
        if self.val_loop is None:
            raise UsageRuntimeError(
                "this runner cannot validate: its val loop should not be None, but it has no"
                " val_dataloader/val_cfg/val_evaluator",
                hint="give all three to the Runner or in the config",
            )
        self._check_model_steps("val_step")
        self._maybe_compile("val_step")
        self._log_run_header("val")
        return self._run_phase(self.val_loop.run, resume_state=False)

    def test(self) -> dict[str, Any]:
        """Test the model once; return the metrics."""
        if self.test_loop is None:
            raise UsageRuntimeError(
                "this runner cannot test: its test loop should not be None, but it has no"
                " test_dataloader/test_cfg/test_evaluator",
                hint="give all three to the Runner or in the config",
            )
        self._check_model_steps("test_step")
        self._maybe_compile("test_step")
        self._log_run_header("test")
        return self._run_phase(self.test_loop.run, resume_state=False)

    def _run_phase(self, body: Any, resume_state: bool) -> Any:
        """``before_run``, weights, body, ``after_run`` — teardown only if setup completed.

        Training (``resume_state``) runs with the stop-signal handlers installed, from
        ``before_run`` to the end of ``after_run``.
        """
        signals = self._stop.signals(self._flush_logs) if resume_state else contextlib.nullcontext()
        with signals:
            self.dispatch.before_run(self)
            try:
                self._init_model_weights()
                self.load_or_resume(resume_state)
                if resume_state:
                    loop = self._train_loop
                    self.optim_wrapper.initialize_count_status(
                        self.unwrapped_model, loop.iter, loop.max_iters
                    )
                promote_setup_objects()
                result = body()
            except BaseException:
                try:
                    self.dispatch.after_run(self)
                    self.checkpointer.wait()
                except Exception as exc:  # the original error matters more
                    self.logger.error(f"after_run failed while handling an error: {exc}")
                finally:
                    self._flush_logs()
                    self._stop_data_workers()
                raise
            self.dispatch.after_run(self)
            self.checkpointer.wait()
            self._stop_data_workers()
        return result

    def _stop_data_workers(self) -> None:
        """End every DataLoader worker process of the loops built so far (see worker_shutdown)."""
        from torchkiln.runner.worker_shutdown import shutdown_workers

        for loop in (
            self.train_loop_if_built,
            self._built_loop(self._val_loop),
            self._built_loop(self._test_loop),
        ):
            if loop is None or isinstance(loop, Mapping):
                continue
            shutdown_workers(getattr(loop, "pass_iterator", None))
            shutdown_workers(getattr(loop, "dataloader", None))

    @staticmethod
    def _flush_logs() -> None:
        """Write out buffered log lines now (the process may be about to exit)."""
        from torchkiln.logging import flush_all

        try:
            flush_all()
        except Exception:
            pass

    def _log_run_header(self, phase: str) -> None:
        """One line about the run, the plugins and the hooks at INFO; the hook table at DEBUG."""
        from torchkiln.plugin_host import format_hook_table

        self.logger.info(
            f"torchkiln {phase}: work_dir={self._work_dir} seed={self.seed} world_size={self.world_size} "
            f"deterministic={self.deterministic}"
        )
        if phase == "train":
            self.logger.info(_precision_line(self.optim_wrapper))
        if self._entry_point_plugins:
            self.logger.info(
                "plugins: " + ", ".join(f"{n} ({d})" for n, d in self._entry_point_plugins)
            )
        names = [record.name for record in self._host.records()]
        self.logger.info(
            f"hooks: {len(names)} ({', '.join(names)}); "
            "the call order per mount point is logged at DEBUG (log_level: DEBUG)"
        )
        self.logger.debug("hooks in call order:\n" + format_hook_table(self._host))

    def _check_model_steps(self, step: str, validation_step: str | None = None) -> None:
        """Say clearly (once per phase) when the model lacks a step method the phase calls.

        :raises ConfigError: ``step`` is missing.
        :raises AssertionError: training validates and ``validation_step`` is missing.
        """
        from torchkiln.model.model_checks import plain_module_message

        model = self.unwrapped_model
        missing = [
            name
            for name in (step, validation_step)
            if name and not callable(getattr(model, name, None))
        ]
        if not missing:
            return
        message, hint = plain_module_message(model) or ("", "")
        if step in missing:
            raise ConfigError(message, where="model", hint=hint)
        raise ConfigAssertionError(
            f"{message}. If you want to validate during training, the model needs"
            f" {validation_step}",
            where="model",
            hint=f"{hint}; or remove val_dataloader/val_cfg/val_evaluator",
        )

    def _maybe_compile(self, target: str = "train_step") -> None:
        """With ``compile``, replace the model's ``target`` step (``train_step``, ``val_step``
        or ``test_step``) by its ``torch.compile`` version, once."""
        if not self._compile:
            return
        model = self.model
        step = getattr(model, target, None)
        if step is None or hasattr(step, "_torchdynamo_orig_callable"):
            return  # nothing to compile, or compiled already
        import torch

        options = self._compile if isinstance(self._compile, Mapping) else {}
        if self.deterministic:
            from torchkiln.runner.environment import use_deterministic_algorithms

            use_deterministic_algorithms(compiling=True)
        setattr(model, target, torch.compile(step, **options))
        self.logger.info(
            f"{target} compiled with torch.compile({options}); the first iterations are slow"
            " while it compiles, please be patient."
        )

    def _init_model_weights(self) -> None:
        if self._weights_initialized:
            return
        self._weights_initialized = True
        model = self.unwrapped_model
        if hasattr(model, "init_weights"):
            model.init_weights()

    def __repr__(self) -> str:
        return f"Runner(work_dir={self._work_dir!r}, model={type(self.model).__name__})"


_MOUNT_POINTS = frozenset(MOUNT_POINTS)


def _check_scheduler_cfg(param_scheduler: Any) -> None:
    """Check the shape of ``param_scheduler`` as MMEngine's Runner does.

    :raises TypeError: it is not a scheduler, a config dict, a list or a dict of them.
    :raises AssertionError: a per-optimizer dict has a value that is none of them.
    """
    if param_scheduler is None or callable(getattr(param_scheduler, "step", None)):
        return
    if isinstance(param_scheduler, (list, tuple)):
        return
    if not isinstance(param_scheduler, Mapping):
        raise ConfigTypeError(
            "`param_scheduler` should be a scheduler, a config dict, a list of them or a dict"
            f" of such per optimizer, got {type(param_scheduler).__name__}",
            where="param_scheduler",
        )
    if "type" in param_scheduler:
        return
    for name, value in param_scheduler.items():
        if not isinstance(value, (Mapping, list, tuple)) and not callable(
            getattr(value, "step", None)
        ):
            raise ConfigAssertionError(
                "Each value of `param_scheduler` (one per optimizer) should be a scheduler, a"
                f" config dict or a list of them, got {type(value).__name__} for {name!r}",
                where=f"param_scheduler.{name}",
            )


def _precision_line(optim_wrapper: Any) -> str:
    """``mixed precision: ...`` for the run header (on or off, dtype and loss scaling)."""
    wrappers = list(optim_wrapper.values()) if hasattr(optim_wrapper, "values") else [optim_wrapper]
    parts = []
    for wrapper in wrappers:
        dtype = getattr(wrapper, "cast_dtype", None)
        if dtype is None:
            continue
        scaler = getattr(wrapper, "loss_scaler", None)
        scaling = (
            "no loss scaling" if scaler is None else f"loss scale {float(scaler.get_scale()):g}"
        )
        parts.append(
            f"{type(wrapper).__name__} autocast to {str(dtype).removeprefix('torch.')} ({scaling})"
        )
    return "mixed precision: " + ("; ".join(parts) if parts else "off (float32)")


def _remove_if_empty(log_dir: str, work_dir: str | None) -> None:
    """After a failed start: remove ``log_dir`` if its files are all empty, then ``work_dir``
    (only one this start created) if nothing is left in it."""
    import shutil

    from torchkiln.logging import shutdown_logging

    try:
        shutdown_logging()
        entries = [os.path.join(log_dir, name) for name in os.listdir(log_dir)]
        if all(os.path.isfile(path) and os.path.getsize(path) == 0 for path in entries):
            shutil.rmtree(log_dir)
        if work_dir is not None and not os.listdir(work_dir):
            os.rmdir(work_dir)
    except OSError:
        pass  # cleaning up must never hide the error that stopped the start


def _accepted_arguments(cls: type) -> set[str] | None:
    """The keyword arguments ``cls.__init__`` takes (a Runner subclass written for MMEngine
    takes MMEngine's only); None when it takes any (``**kwargs``)."""
    import inspect

    parameters = inspect.signature(cls.__init__).parameters.values()  # type: ignore[misc]  # the class's own __init__ is the one inspected
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters}


def _own_argument(cfg: Any, key: str, given: Any, default: Any) -> Any:
    """``given`` unless it is the default and ``cfg`` sets ``key`` (a subclass that calls
    ``Runner.__init__`` with MMEngine's arguments only leaves torchkiln's in ``cfg``)."""
    if given is not default or cfg is None or not hasattr(cfg, "get"):
        return given
    value = cfg.get(key)
    return default if value is None else plain(value)


def _import_custom(custom_imports: CustomImportsCfg) -> None:
    import importlib

    imports = custom_imports.imports
    for name in [imports] if isinstance(imports, str) else imports:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            if not custom_imports.allow_failed_imports:
                raise ConfigError(
                    f"custom_imports: cannot import {name!r}: {exc}", where="custom_imports.imports"
                ) from None
