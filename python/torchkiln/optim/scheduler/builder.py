"""build_param_schedulers: schedulers from the ``param_scheduler`` config."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from torchkiln.errors import ConfigKeyError, ConfigTypeError, ConfigValueError, TorchkilnError
from torchkiln.logging.mm_logger import print_log
from torchkiln.optim.optimizer.optim_wrapper_dict import OptimWrapperDict
from torchkiln.optim.scheduler.param_scheduler import _ParamScheduler
from torchkiln.registry import PARAM_SCHEDULERS, check_kwargs

__all__ = ["build_param_schedulers"]

WHERE = "param_scheduler"


def build_param_schedulers(
    cfg: Any,
    optim_wrapper: Any,
    *,
    epoch_length: int | None = None,
    max_epochs: int | None = None,
    max_iters: int | None = None,
    train_by_epoch: bool = True,
) -> list[_ParamScheduler] | dict[str, list[_ParamScheduler]]:
    """Build the parameter schedulers for ``optim_wrapper``.

    :param cfg: one scheduler config (``{type: ..., ...}``) or built scheduler, a list of
        them, ``None``, or (for an :class:`OptimWrapperDict`) a dict of such lists by
        optimizer name. A plain list given with an OptimWrapperDict is built once for every
        optimizer.
    :param optim_wrapper: an OptimWrapper (or torch optimizer) or an OptimWrapperDict.
    :param epoch_length: iterations per epoch (``len(train_dataloader)``), needed by
        ``convert_to_iter_based: true``.
    :param max_epochs: end of training in epochs: the default ``end`` of by-epoch schedulers.
    :param max_iters: end of training in iterations: the default ``end`` otherwise.
    :param train_by_epoch: whether training counts epochs; an unconverted by-epoch
        scheduler in iteration-based training steps only at the end of training (a warning).
    :returns: a list of schedulers, or ``{name: list}`` for an OptimWrapperDict.
    """
    options = dict(
        epoch_length=epoch_length,
        max_epochs=max_epochs,
        max_iters=max_iters,
        train_by_epoch=train_by_epoch,
    )
    per_name = isinstance(cfg, Mapping) and "type" not in cfg
    if isinstance(optim_wrapper, OptimWrapperDict):
        if per_name:
            unknown = [name for name in cfg if name not in optim_wrapper]
            if unknown:
                raise ConfigKeyError(
                    f"param_scheduler names {', '.join(map(repr, unknown))}, which optim_wrapper does not have",
                    where=f"{WHERE}.{unknown[0]}",
                    hint=f"optimizers: {', '.join(optim_wrapper.keys())}",
                )
            return {
                name: _build_list(cfg.get(name), wrapper, f"{WHERE}.{name}", options)
                for name, wrapper in optim_wrapper.items()
            }
        return {
            name: _build_list(cfg, wrapper, WHERE, options, copy_only=True)
            for name, wrapper in optim_wrapper.items()
        }
    if per_name:
        raise ConfigValueError(
            "param_scheduler is a dict of lists by optimizer name, but there is only one optimizer",
            where=WHERE,
            hint="give a list of schedulers, or a single {type: ..., ...}",
        )
    return _build_list(cfg, optim_wrapper, WHERE, options)


def _build_list(
    cfg: Any, optim_wrapper: Any, where: str, options: dict[str, Any], copy_only: bool = False
) -> list[_ParamScheduler]:
    if cfg is None:
        return []
    if isinstance(cfg, (Mapping, _ParamScheduler)):
        items: Sequence[Any] = [cfg]
    elif isinstance(cfg, Sequence) and not isinstance(cfg, (str, bytes)):
        items = cfg
    else:
        raise ConfigTypeError(
            f"param_scheduler must be a dict or a list of dicts, got {type(cfg).__name__}",
            where=where,
            hint="e.g. param_scheduler: [{type: LinearLR, start_factor: 0.1, by_epoch: false, end: 100}, "
            "{type: MultiStepLR, milestones: [8, 11]}]",
        )
    schedulers = []
    for index, item in enumerate(items):
        item_where = (
            f"{where}[{index}]" if len(items) > 1 or not isinstance(cfg, Mapping) else where
        )
        if isinstance(item, _ParamScheduler):
            if copy_only:
                raise ConfigValueError(
                    "a built scheduler cannot be shared by several optimizers",
                    where=item_where,
                    hint="give configs, or a dict of scheduler lists by optimizer name",
                )
            schedulers.append(item)
        elif isinstance(item, Mapping):
            schedulers.append(_build_one(dict(item), optim_wrapper, item_where, **options))
        else:
            raise ConfigTypeError(
                f"a scheduler must be a dict with a 'type', got {type(item).__name__}",
                where=item_where,
            )
    return schedulers


def _build_one(
    item: dict[str, Any],
    optim_wrapper: Any,
    where: str,
    *,
    epoch_length: int | None,
    max_epochs: int | None,
    max_iters: int | None,
    train_by_epoch: bool,
) -> _ParamScheduler:
    if "type" not in item:
        raise ConfigKeyError(
            f"a scheduler config needs a 'type', got keys {sorted(item)}",
            where=where,
            hint="e.g. {type: MultiStepLR, milestones: [8, 11]}; see `torchkiln plugins` for param_schedulers",
        )
    if "optimizer" in item:
        raise ConfigValueError(
            "a scheduler config must not set 'optimizer'; the runner passes it",
            where=f"{where}.optimizer",
        )
    convert = bool(item.pop("convert_to_iter_based", False))
    by_epoch = item.get("by_epoch", True)
    if "end" not in item:
        default_end = max_epochs if by_epoch else max_iters
        if default_end is not None:
            item["end"] = default_end
    try:
        scheduler_cls = PARAM_SCHEDULERS.get(item["type"])
        name = getattr(scheduler_cls, "__name__", str(item["type"]))
        if convert:
            if not by_epoch:
                raise ConfigValueError(
                    f"{name}: convert_to_iter_based needs by_epoch: true (its values are in epochs)",
                    where=where,
                    hint="remove convert_to_iter_based for a by_epoch: false scheduler",
                )
            if epoch_length is None:
                raise ConfigValueError(
                    f"{name}: convert_to_iter_based needs the epoch length (len(train_dataloader))",
                    where=where,
                )
            kwargs = {k: v for k, v in item.items() if k != "type"}
            check_kwargs(scheduler_cls, {**kwargs, "optimizer": optim_wrapper}, f"{WHERE}.{name}")
            return scheduler_cls.build_iter_from_epoch(
                optimizer=optim_wrapper, epoch_length=epoch_length, **kwargs
            )
        if by_epoch and not train_by_epoch:
            # As in MMEngine the scheduler is built; it steps at the loop's only epoch end.
            print_log(
                f"{where}: {name} steps by epoch, but training is iteration-based, so it steps"
                " only once, at the end of training; set by_epoch: false (values in iterations)"
                " or convert_to_iter_based: true",
                logger="current",
                level=logging.WARNING,
            )
        return PARAM_SCHEDULERS.build(item, default_args={"optimizer": optim_wrapper})
    except TorchkilnError as exc:
        exc.where = f"{where} ({exc.where})" if exc.where and exc.where != where else where
        raise
