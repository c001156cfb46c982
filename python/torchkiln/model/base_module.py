"""BaseModule: an ``nn.Module`` initialised from ``init_cfg``, reporting who set each weight.

Order inside ``init_weights()`` (MMEngine's, so that the most specific config wins):

1. this module's ``init_cfg`` entries other than ``Pretrained`` (``layer`` matches anywhere
   below, then ``override`` on named children);
2. every child's own ``init_weights()`` (BaseModules, and any module defining one, found
   through plain containers such as ``nn.Sequential``), so a child's ``init_cfg`` takes
   precedence over the parent's ``layer`` and ``override``;
3. this module's ``Pretrained`` entries, which overwrite everything they load.

Which initializer last wrote each parameter is tracked through the tensors' in-place version
counters (exact, and free of any value comparison), and kept by the top-level module as
``_params_init_info`` (parameter name -> description).
"""

from __future__ import annotations

import logging
import sys
import warnings
from abc import ABCMeta
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from torch import nn

from torchkiln.model.weight_init import PretrainedInit, _as_cfg_list, initialize

__all__ = ["BaseModule", "ModuleDict", "ModuleList", "Sequential"]

logger = logging.getLogger(__name__)


class _InitRecorder:
    """Collects, during one top-level ``init_weights()``, the last writer of each parameter."""

    def __init__(self, root: nn.Module) -> None:
        self.names: dict[nn.Parameter, str] = {p: n for n, p in root.named_parameters()}
        # name -> (description, tensor version when recorded)
        self.info: dict[str, tuple[str, int]] = {}

    def _record_changes(
        self, params: list[nn.Parameter], before: list[int], what: str, keep_newer: bool
    ) -> None:
        for p, version in zip(params, before):
            now = p._version
            if now == version:
                continue
            name = self.names.get(p)
            if name is None:
                continue
            if keep_newer and self.info.get(name, ("", -1))[1] == now:
                continue  # a more specific record was made inside the call
            self.info[name] = (what, now)

    def applier(self, owner: nn.Module) -> Any:
        """A callable ``(module, init)`` that runs ``init(module)`` and records what it changed."""

        def run(module: nn.Module, init: Any) -> None:
            params = list(module.parameters())
            before = [p._version for p in params]
            init(module)
            self._record_changes(
                params, before, f"{init.describe()} (init_cfg of {type(owner).__name__})", False
            )

        return run

    def call_init_weights(self, child: nn.Module) -> None:
        """Run ``child.init_weights()``; record changes not already recorded more precisely."""
        params = list(child.parameters())
        before = [p._version for p in params]
        child.init_weights()  # type: ignore[operator]  # nn.Module types attribute access as Tensor | Module
        self._record_changes(params, before, f"init_weights() of {type(child).__name__}", True)


_RECORDER: ContextVar[_InitRecorder | None] = ContextVar("torchkiln_init_recorder", default=None)


def _is_pretrained(cfg: Mapping[str, Any]) -> bool:
    kind = cfg.get("type")
    return (
        kind == "Pretrained"
        or kind is PretrainedInit
        or (isinstance(kind, str) and kind.endswith("::Pretrained"))
    )


def _init_targets(module: nn.Module) -> Iterator[nn.Module]:
    """Children that initialise themselves, looking through plain containers and wrappers."""
    for child in module.children():
        target = child
        if not hasattr(target, "init_weights") and isinstance(
            getattr(target, "module", None), nn.Module
        ):
            # a model wrapper (DDP) around a BaseModule
            target = target.module  # type: ignore[assignment]  # nn.Module types attribute access as Tensor | Module
        if callable(getattr(target, "init_weights", None)):
            yield target
        else:
            yield from _init_targets(target)


def _report_init_info(module: BaseModule) -> None:
    """Write ``module``'s init report to the log files of the current ``MMLogger`` (the run's
    text log during a run, as MMEngine does), whatever their level; at DEBUG on this module's
    logger when that logger has no file."""
    files: list[logging.Handler] = []
    mm_logger = sys.modules.get("torchkiln.logging.mm_logger")  # no MMLogger unless loaded
    if mm_logger is not None and mm_logger.MMLogger._instance_dict:
        current = mm_logger.MMLogger.get_current_instance()
        files = [h for h in current.handlers if isinstance(h, logging.FileHandler)]
    if not files and not logger.isEnabledFor(logging.DEBUG):
        return
    text = f"weight initialisation of {type(module).__name__}:\n{module.format_init_info()}"
    if not files:
        logger.debug(text)
        return
    record = logging.LogRecord(current.name, logging.DEBUG, __file__, 0, text, None, None)
    for handler in files:
        handler.handle(record)  # past the handler's level: the report is asked for here


class BaseModule(nn.Module, metaclass=ABCMeta):
    """An ``nn.Module`` with ``init_cfg`` driven weight initialisation.

    :param init_cfg: an initializer config dict or a list of them, e.g.
        ``dict(type='Kaiming', layer='Conv2d')``; ``None`` keeps PyTorch's defaults.
    """

    def __init__(self, init_cfg: Mapping[str, Any] | list[Mapping[str, Any]] | None = None) -> None:
        super().__init__()
        if init_cfg is not None:
            _as_cfg_list(init_cfg)  # fail at construction on a malformed init_cfg
            init_cfg = (
                [dict(c) for c in init_cfg]
                if isinstance(init_cfg, (list, tuple))
                else dict(init_cfg)
            )
        self.init_cfg = init_cfg
        self._is_init = False
        self._params_init_info: dict[str, str] = {}

    @property
    def is_init(self) -> bool:
        """Whether ``init_weights()`` has run (it runs once; later calls warn and do nothing)."""
        return self._is_init

    @is_init.setter
    def is_init(self, value: bool) -> None:
        self._is_init = bool(value)

    def init_weights(self) -> None:
        """Initialise this module and its children from their ``init_cfg`` (once).

        A second call warns and changes nothing, the init report included.
        """
        if self._is_init:
            warnings.warn(
                f"init_weights() of {type(self).__name__} was already called; skipping",
                stacklevel=2,
            )
            return
        recorder = _RECORDER.get()
        token = None
        if recorder is None:
            recorder = _InitRecorder(self)
            token = _RECORDER.set(recorder)
        try:
            cfgs = _as_cfg_list(self.init_cfg) if self.init_cfg else []
            pretrained = [c for c in cfgs if _is_pretrained(c)]
            others = [c for c in cfgs if not _is_pretrained(c)]
            if others:
                initialize(self, others, _record=recorder.applier(self))
            for child in _init_targets(self):
                if not getattr(child, "is_init", False):
                    recorder.call_init_weights(child)
            if pretrained:
                initialize(self, pretrained, _record=recorder.applier(self))
            self._is_init = True
        finally:
            if token is not None:
                _RECORDER.reset(token)
                self._params_init_info = {name: what for name, (what, _) in recorder.info.items()}
                _report_init_info(self)

    def params_init_info(self) -> dict[str, str]:
        """For every parameter name, what initialised it in the last top-level ``init_weights()``.

        Parameters no initializer touched keep their layer's default initialisation and say so.
        """
        out: dict[str, str] = {}
        for name, _ in self.named_parameters():
            what = self._params_init_info.get(name)
            if what is None:
                owner_name = name.rpartition(".")[0]
                owner = self.get_submodule(owner_name) if owner_name else self
                what = f"default initialisation of {type(owner).__name__}"
            out[name] = what
        return out

    def format_init_info(self) -> str:
        """``params_init_info()`` as aligned text lines, one per parameter, with its shape."""
        info = self.params_init_info()
        shapes = {n: tuple(p.shape) for n, p in self.named_parameters()}
        width = max((len(n) for n in info), default=0)
        return "\n".join(f"{n:<{width}}  {shapes[n]!s:<16} {what}" for n, what in info.items())

    def extra_repr(self) -> str:
        """Shows ``init_cfg`` next to the usual module summary."""
        base = super().extra_repr()
        if not self.init_cfg:
            return base
        return f"{base}, init_cfg={self.init_cfg}" if base else f"init_cfg={self.init_cfg}"


class Sequential(BaseModule, nn.Sequential):
    """``nn.Sequential`` with an ``init_cfg``.

    :param args: the modules, in order.
    :param init_cfg: initializer config(s).
    """

    def __init__(
        self, *args: nn.Module, init_cfg: Mapping[str, Any] | list[Mapping[str, Any]] | None = None
    ):
        BaseModule.__init__(self, init_cfg)
        nn.Sequential.__init__(self, *args)


class ModuleList(BaseModule, nn.ModuleList):
    """``nn.ModuleList`` with an ``init_cfg``.

    :param modules: the modules.
    :param init_cfg: initializer config(s).
    """

    def __init__(
        self,
        modules: Any = None,
        init_cfg: Mapping[str, Any] | list[Mapping[str, Any]] | None = None,
    ):
        BaseModule.__init__(self, init_cfg)
        nn.ModuleList.__init__(self, modules)


class ModuleDict(BaseModule, nn.ModuleDict):
    """``nn.ModuleDict`` with an ``init_cfg``.

    :param modules: name -> module mapping.
    :param init_cfg: initializer config(s).
    """

    def __init__(
        self,
        modules: Any = None,
        init_cfg: Mapping[str, Any] | list[Mapping[str, Any]] | None = None,
    ):
        BaseModule.__init__(self, init_cfg)
        nn.ModuleDict.__init__(self, modules)
