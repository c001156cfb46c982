"""Typed shape of the sections the engine owns, as frozen, keyword-only attrs classes.

A component dict (``{type: Name, ...}``) is kept as a plain ``dict`` here: its keys belong to
the component, and :mod:`torchkiln.config.components` checks them against the registered
class. Everything else the engine reads has a class below, so an unknown key or a wrong type
is found before anything is built. Defaults follow MMEngine's Runner.
"""

from __future__ import annotations

from typing import Any, Literal, Union

import attrs

__all__ = [
    "LAUNCHERS",
    "LOG_LEVELS",
    "AutoScaleLRCfg",
    "CompileCfg",
    "CustomImportsCfg",
    "DataLoaderCfg",
    "DistCfg",
    "EnvCfg",
    "EvalLoopCfg",
    "LoadFromCfg",
    "MpCfg",
    "PluginsCfg",
    "RandomnessCfg",
    "RunConfig",
    "TrainLoopCfg",
    "top_level_keys",
]

Component = dict[str, Any]
Launcher = Literal["none", "pytorch", "slurm", "mpi"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LAUNCHERS: tuple[str, ...] = ("none", "pytorch", "slurm", "mpi")
LOG_LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class FieldValueError(ValueError):
    """A field holds a value of the right type that is still wrong (e.g. 0 epochs)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and value < 1:
        raise FieldValueError(attribute.name, f"must be >= 1, got {value}")


def _non_negative(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and value < 0:
        raise FieldValueError(attribute.name, f"must be >= 0, got {value}")


# ---------------------------------------------------------------------- loops
@attrs.frozen(kw_only=True)
class TrainLoopCfg:
    """``train_cfg`` without ``type``: the built-in epoch- or iteration-based loop.

    ``by_epoch: true`` (the default) runs ``max_epochs`` epochs; ``by_epoch: false`` runs
    ``max_iters`` iterations. ``dynamic_intervals`` is a list of ``[milestone, interval]``
    pairs.
    """

    by_epoch: bool | None = None
    max_epochs: int | None = attrs.field(default=None, validator=_positive)
    max_iters: int | None = attrs.field(default=None, validator=_positive)
    val_begin: int = attrs.field(default=1, validator=_non_negative)
    val_interval: int = attrs.field(default=1, validator=_positive)
    dynamic_intervals: list[tuple[int, int]] | None = None


@attrs.frozen(kw_only=True)
class EvalLoopCfg:
    """``val_cfg`` / ``test_cfg`` without ``type``: the built-in ValLoop / TestLoop."""

    fp16: bool = False


# ---------------------------------------------------------------------- data
@attrs.frozen(kw_only=True)
class DataLoaderCfg:
    """``train_dataloader`` / ``val_dataloader`` / ``test_dataloader``.

    ``dataset``, ``sampler``, ``batch_sampler``, ``collate_fn`` and ``worker_init_fn`` are
    component dicts (the two functions may also be a FUNCTIONS name); the rest are
    ``torch.utils.data.DataLoader`` arguments (``generator`` as an int seed).
    """

    dataset: Component
    batch_size: int | None = attrs.field(default=1, validator=_positive)
    num_workers: int = attrs.field(default=0, validator=_non_negative)
    persistent_workers: bool = False
    pin_memory: bool = False
    drop_last: bool = False
    shuffle: bool | None = None
    sampler: Component | None = None
    batch_sampler: Component | None = None
    collate_fn: Union[Component, str, None] = None  # noqa: UP007 - a FUNCTIONS name or component
    worker_init_fn: Union[Component, str, None] = None  # noqa: UP007
    prefetch_factor: int | None = attrs.field(default=None, validator=_positive)
    timeout: float = 0.0
    multiprocessing_context: str | None = None
    generator: int | None = None
    pin_memory_device: str = ""
    in_order: bool = True
    #: Use only this many batches per epoch (every rank's share): quick trial runs.
    num_batch_per_epoch: int | None = attrs.field(default=None, validator=_positive)


# ---------------------------------------------------------------------- environment
@attrs.frozen(kw_only=True)
class RandomnessCfg:
    """``randomness``: the seed and determinism switches."""

    seed: int | None = None
    deterministic: bool = False
    diff_rank_seed: bool = False


@attrs.frozen(kw_only=True)
class MpCfg:
    """``env_cfg.mp_cfg``: multiprocessing start method and OpenCV threads."""

    mp_start_method: Literal["fork", "spawn", "forkserver"] | None = None
    opencv_num_threads: int | None = attrs.field(default=None, validator=_non_negative)


@attrs.frozen(kw_only=True)
class DistCfg:
    """``env_cfg.dist_cfg``: arguments of ``torch.distributed.init_process_group``."""

    backend: str | None = None
    init_method: str | None = None
    timeout: int | float | None = None
    port: int | None = None
    device_id: int | None = None


@attrs.frozen(kw_only=True)
class EnvCfg:
    """``env_cfg``: cuDNN benchmark, multiprocessing and distributed set-up."""

    cudnn_benchmark: bool = False
    mp_cfg: MpCfg | None = None
    dist_cfg: DistCfg | None = None
    resource_limit: int | None = attrs.field(default=None, validator=_positive)


@attrs.frozen(kw_only=True)
class AutoScaleLRCfg:
    """``auto_scale_lr``: scale the learning rate by ``total batch / base_batch_size``."""

    base_batch_size: int = attrs.field(validator=_positive)
    enable: bool = False


def _revise_pairs(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    for item in value or ():
        if len(item) != 2:
            raise FieldValueError(
                attribute.name,
                f"items must be [pattern, replacement] pairs of strings, got {list(item)!r}; "
                "e.g. revise_keys: [['^backbone\\\\.', '']]",
            )


@attrs.frozen(kw_only=True)
class LoadFromCfg:
    """``load_from`` as a dict: weights to load, how strictly, and key renames."""

    path: str
    strict: bool = False
    revise_keys: list[list[str]] | None = attrs.field(default=None, validator=_revise_pairs)


@attrs.frozen(kw_only=True)
class CompileCfg:
    """``compile`` as a dict: the ``torch.compile`` options used for the train step."""

    backend: str = "inductor"
    mode: str | None = None
    fullgraph: bool = False
    dynamic: bool | None = None
    options: dict[str, Any] | None = None
    disable: bool = False


@attrs.frozen(kw_only=True)
class CustomImportsCfg:
    """``custom_imports``: modules imported before anything is built (to register components)."""

    imports: list[str] | str
    allow_failed_imports: bool = False


@attrs.frozen(kw_only=True)
class PluginsCfg:
    """``plugins``: which ``torchkiln.plugins`` entry-point plugins load at run start.

    ``disable`` names plugins (entry-point or distribution names) never to load; ``options``
    gives the arguments a plugin that is a Hook class is built with, by entry-point name.
    Names match in any spelling packaging treats as the same (``Example-Counter`` is
    ``example_counter``).
    """

    disable: list[str] = attrs.Factory(list)
    options: dict[str, dict[str, Any]] = attrs.Factory(dict)


# ---------------------------------------------------------------------- the top level
@attrs.frozen(kw_only=True)
class RunConfig:
    """The top level: the MMEngine Runner's arguments plus ``plugins``, ``vars`` and friends."""

    model: Component | None = None
    work_dir: str | None = None
    experiment_name: str | None = None
    train_dataloader: DataLoaderCfg | None = None
    val_dataloader: DataLoaderCfg | None = None
    test_dataloader: DataLoaderCfg | None = None
    train_cfg: Union[TrainLoopCfg, Component, None] = None  # noqa: UP007 - a Union the converter dispatches on
    val_cfg: Union[EvalLoopCfg, Component, None] = None  # noqa: UP007
    test_cfg: Union[EvalLoopCfg, Component, None] = None  # noqa: UP007
    optim_wrapper: Component | None = None
    param_scheduler: Union[Component, list[Component], dict[str, list[Component]], None] = None  # noqa: UP007
    val_evaluator: Union[Component, list[Component], None] = None  # noqa: UP007
    test_evaluator: Union[Component, list[Component], None] = None  # noqa: UP007
    default_hooks: dict[str, Component | None] | None = None
    custom_hooks: list[Component] | None = None
    data_preprocessor: Component | None = None
    load_from: Union[str, LoadFromCfg, None] = None  # noqa: UP007
    resume: bool | str = False
    launcher: Launcher = "none"
    env_cfg: EnvCfg | None = None
    randomness: RandomnessCfg | None = None
    log_processor: Component | None = None
    log_level: LogLevel = "INFO"
    visualizer: Component | None = None
    default_scope: str | None = None
    auto_scale_lr: AutoScaleLRCfg | None = None
    model_wrapper_cfg: Component | None = None
    compile: Union[bool, CompileCfg] = False  # noqa: UP007
    custom_imports: CustomImportsCfg | None = None
    runner_type: str | None = None
    plugins: PluginsCfg | None = None
    vars: dict[str, Any] | None = None


def top_level_keys() -> list[str]:
    """Every top-level key the engine owns, in declaration order."""
    return [a.name for a in attrs.fields(RunConfig)]


def _attrs_class_of(annotation: Any) -> type | None:
    """The attrs class a field holds (``X``, ``X | None``, ``Union[X, bool]``), if exactly one."""
    import typing

    if isinstance(annotation, str):
        annotation = eval(annotation, globals())
    if isinstance(annotation, type) and attrs.has(annotation):
        return annotation
    found = [a for a in typing.get_args(annotation) if isinstance(a, type) and attrs.has(a)]
    return found[0] if len(found) == 1 else None


def is_engine_key(path: list[str]) -> bool:
    """Whether the schema itself defines ``path`` (``load_from``, ``val_cfg.fp16``,
    ``env_cfg.dist_cfg.backend``), so an override may set it even when the config leaves it
    out. Paths into component dicts (``model.depth``) are not the schema's.
    """
    cls: type | None = RunConfig
    for segment in path:
        if cls is None:
            return False
        field = attrs.fields_dict(cls).get(segment)
        if field is None:
            return False
        cls = _attrs_class_of(field.type)
    return True
