"""BaseModel: the model contract the runner drives (``train_step``, ``val_step``, ``test_step``).

``forward(inputs, data_samples=None, mode='tensor')`` has three modes: ``'loss'`` returns a
dict of loss tensors, ``'predict'`` the predictions given to the metrics, ``'tensor'`` the raw
outputs. A dict batch is passed as keyword arguments, a tuple or list batch as positional
arguments.
"""

from __future__ import annotations

import inspect
from abc import abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from torchkiln.errors import ConfigTypeError
from torchkiln.model.base_module import BaseModule
from torchkiln.model.direct_forward import forwards_directly
from torchkiln.registry import MODELS

__all__ = ["BaseModel", "parse_losses", "run_forward"]

_TENSOR = torch.Tensor


def _describe_batch(data: Any) -> str:
    if isinstance(data, Mapping):
        return "a dict with keys " + ", ".join(repr(k) for k in data)
    if isinstance(data, (list, tuple)):
        return f"a {type(data).__name__} of {len(data)} items"
    return f"a {type(data).__name__}"


def run_forward(
    call: Callable[..., Any],
    data: Any,
    mode: str,
    forward: Callable[..., Any],
    owner: str,
) -> Any:
    """Call ``call(**data, mode=mode)`` for dict batches, ``call(*data, mode=mode)`` for sequences.

    When the batch does not fit ``forward``'s signature, the ``TypeError`` says which model,
    which signature and what the batch held (checked only after a failure, so free otherwise).

    :param call: what to call (the model, or its DDP wrapper so gradient hooks fire).
    :param data: the preprocessed batch.
    :param mode: ``'loss'``, ``'predict'`` or ``'tensor'``.
    :param forward: the ``forward`` whose signature the batch must fit.
    :param owner: the model's class name, for messages.
    """
    # The batch is unpacked straight into the call (no copy of it first): this runs every
    # iteration. Arguments are rebuilt only to explain a failure.
    try:
        # The built-in types are checked first: ``isinstance(x, Mapping)`` is an ABC check,
        # a Python-level call, which a plain dict or tuple batch need not pay every iteration.
        if isinstance(data, (list, tuple)):
            return call(*data, mode=mode)
        if isinstance(data, (dict, Mapping)):  # dict first: checked without the ABC
            return call(**data, mode=mode)
    except TypeError as exc:
        _explain_batch_mismatch(exc, forward, owner, data, mode)
        raise
    raise TypeError(
        f"{owner}: the data preprocessor returned {_describe_batch(data)}; expected a dict "
        "(passed to forward as keyword arguments) or a tuple/list (passed as positional arguments)"
    )


def _explain_batch_mismatch(
    exc: TypeError, forward: Callable[..., Any], owner: str, data: Any, mode: str
) -> None:
    """Raise a clearer ``TypeError`` when the batch ``data`` cannot bind to ``forward``."""
    args, kwargs = ((), dict(data)) if isinstance(data, Mapping) else (tuple(data), {})
    _explain_mismatch(exc, forward, owner, data, args, kwargs, mode)


def _explain_mismatch(
    exc: TypeError,
    forward: Callable[..., Any],
    owner: str,
    data: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    mode: str,
) -> None:
    """Raise a clearer ``TypeError`` when the batch cannot bind to ``forward``; else return."""
    try:
        sig = inspect.signature(forward)
    except (TypeError, ValueError):
        return
    shown = sig.replace(
        parameters=[p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()],
        return_annotation=inspect.Signature.empty,
    )
    try:
        sig.bind(*args, **kwargs, mode=mode)
    except TypeError as bind_error:
        raise TypeError(
            f"{owner}.forward{shown} cannot take the batch, {_describe_batch(data)}: {bind_error}; "
            "make the dataset/collate output match forward's parameters, or adapt forward"
        ) from exc


def parse_losses(losses: Any, owner: str = "model") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Sum the entries whose name contains ``'loss'``; return the total and detached log values.

    Each value is a tensor (its mean is used) or a list of tensors (the sum of their means).
    ``log_vars`` holds ``'loss'`` (the total) first, then every entry, all detached tensors on
    the device: nothing here waits for the device; the logger reads them at log intervals.
    It is a plain ``dict`` (ordered, and cheaper to build every iteration than an
    ``OrderedDict``).

    :param losses: what ``forward(mode='loss')`` returned.
    :param owner: the model's class name, for messages.
    """
    if type(losses) is not dict and not isinstance(losses, Mapping):
        raise TypeError(
            f"{owner}.forward(mode='loss') must return a dict of loss tensors (or lists of tensors), "
            f"e.g. {{'loss': tensor}}; it returned {type(losses).__name__}"
        )
    if len(losses) == 1:  # the usual {'loss': scalar tensor}, without the general pass
        value = losses.get("loss")
        if type(value) is _TENSOR and not value.ndim and value.dtype.is_floating_point:
            return value, {"loss": value.detach()}
    # One pass, one detach per entry: this runs every iteration.
    reduced: dict[str, torch.Tensor] = {}
    total: torch.Tensor | None = None
    for name, value in losses.items():
        if isinstance(value, torch.Tensor):
            v = value if value.ndim == 0 and value.dtype.is_floating_point else _mean(value)
        elif (
            isinstance(value, (list, tuple))
            and value
            and all(isinstance(t, torch.Tensor) for t in value)
        ):
            v = _mean(value[0])
            for t in value[1:]:
                v = v + _mean(t)
        else:
            raise TypeError(
                f"{owner}.forward(mode='loss') returned {name!r} as {type(value).__name__}; "
                "expected a tensor or a non-empty list of tensors"
            )
        name = name if type(name) is str else str(name)
        reduced[name] = v
        if "loss" in name:
            total = v if total is None else total + v
    if total is None:
        raise ValueError(
            f"{owner}.forward(mode='loss') returned no entry whose name contains 'loss' "
            f"(got {list(reduced)}); the entries with 'loss' in their name are summed and optimised"
        )
    log_vars: dict[str, torch.Tensor] = {"loss": total.detach()}
    for name, v in reduced.items():
        if name != "loss":
            log_vars[name] = v.detach()
    return total, log_vars


def _mean(t: torch.Tensor) -> torch.Tensor:
    if not (t.is_floating_point() or t.is_complex()):
        t = t.float()
    return t if t.dim() == 0 else t.mean()


class BaseModel(BaseModule):
    """Base class of models trained by the runner.

    Subclasses implement :meth:`forward`; the steps below are usually inherited. A GAN-style
    model overrides :meth:`train_step` and calls ``optim_wrapper['generator'].update_params``.

    :param data_preprocessor: a preprocessor module or its config dict (built through
        ``MODELS``); ``None`` means ``dict(type='BaseDataPreprocessor')``.
    :param init_cfg: weight initialisation config(s), see :class:`BaseModule`.
    """

    def __init__(
        self,
        data_preprocessor: Mapping[str, Any] | nn.Module | None = None,
        init_cfg: Mapping[str, Any] | list[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(init_cfg)
        if data_preprocessor is None:
            data_preprocessor = {"type": "BaseDataPreprocessor"}
        if isinstance(data_preprocessor, nn.Module):
            self.data_preprocessor = data_preprocessor
        elif isinstance(data_preprocessor, Mapping):
            self.data_preprocessor = MODELS.build(data_preprocessor)
        else:
            raise ConfigTypeError(
                f"{type(self).__name__}: data_preprocessor should be a config dict or an "
                f"nn.Module, got {type(data_preprocessor).__name__}",
                where="model.data_preprocessor",
                hint="e.g. data_preprocessor=dict(type='ImgDataPreprocessor', mean=[0.5], std=[0.5])",
            )

    @property
    def data_preprocessor(self) -> nn.Module:
        """The data preprocessor module (a registered submodule).

        Read straight from the submodules: ``nn.Module``'s attribute fallback would cost a
        failed lookup on every training step.
        """
        try:
            return self._modules["data_preprocessor"]  # type: ignore[return-value]  # always set
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no data_preprocessor yet") from None

    @data_preprocessor.setter
    def data_preprocessor(self, value: Any) -> None:
        # nn.Module.__setattr__ stores modules (and None over a module) itself; anything
        # else reaches this setter.
        raise TypeError(
            f"{type(self).__name__}.data_preprocessor must be an nn.Module, got {type(value).__name__}"
        )

    @abstractmethod
    def forward(self, inputs: Any, data_samples: Any = None, mode: str = "tensor") -> Any:
        """Run the model.

        :param inputs: the batch inputs, as the data preprocessor returns them.
        :param data_samples: annotations (labels, targets), if any.
        :param mode: ``'loss'`` -> dict of losses; ``'predict'`` -> predictions for the metrics;
            ``'tensor'`` -> raw outputs.
        """

    def train_step(self, data: Any, optim_wrapper: Any) -> dict[str, torch.Tensor]:
        """One optimisation step: preprocess, forward in ``'loss'`` mode, update parameters.

        :param data: the collated batch from the dataloader.
        :param optim_wrapper: the optimizer wrapper (``optim_context``, ``update_params``).
        :return: detached log values (``'loss'`` first), still on the device.
        """
        with optim_wrapper.optim_context(self):
            data = self._preprocess(data, True)
            losses = self._run_forward(data, mode="loss")
        parsed_losses, log_vars = self.parse_losses(losses)
        optim_wrapper.update_params(parsed_losses)
        return log_vars

    def val_step(self, data: Any) -> Any:
        """Preprocess (``training=False``) and forward in ``'predict'`` mode.

        :param data: the collated batch.
        """
        return self._run_forward(self._preprocess(data, False), mode="predict")

    def test_step(self, data: Any) -> Any:
        """Preprocess (``training=False``) and forward in ``'predict'`` mode.

        :param data: the collated batch.
        """
        return self._run_forward(self._preprocess(data, False), mode="predict")

    def parse_losses(self, losses: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and detached log values from ``forward(mode='loss')``'s dict.

        :param losses: name -> tensor or list of tensors.
        """
        return parse_losses(losses, type(self).__name__)

    def _preprocess(self, data: Any, training: bool) -> Any:
        """Run the data preprocessor (its ``forward`` directly when nothing hooks the call,
        see :mod:`torchkiln.model.direct_forward`)."""
        preprocessor = self.data_preprocessor
        if forwards_directly(preprocessor):
            return preprocessor.forward(data, training)
        return preprocessor(data, training)

    def _run_forward(self, data: Any, mode: str) -> Any:
        """Unpack the batch into ``forward``: ``**`` for dicts, ``*`` for tuples and lists
        (``forward`` directly when nothing hooks the call, see
        :mod:`torchkiln.model.direct_forward`)."""
        call = self.forward if forwards_directly(self) else self
        return run_forward(call, data, mode, self.forward, type(self).__name__)
