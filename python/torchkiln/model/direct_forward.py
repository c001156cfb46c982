"""When a module's ``forward`` may be called directly instead of through ``nn.Module.__call__``.

``nn.Module.__call__`` reaches ``forward`` through two Python frames that pack and unpack
``*args, **kwargs``, even when the module has no hooks. ``BaseModel.train_step`` makes two
such calls every iteration (the data preprocessor and the model itself), so it calls
``forward`` directly whenever :func:`forwards_directly` says that ``__call__`` would do
nothing else. Kept because it saves more than 1% of a raw training step (measured in
docs/benchmarks.md, "Hot-path shortcuts").

``__call__`` does something else when any of these holds, and then it is used:

- the module or any module globally has forward, forward-pre, backward or backward-pre hooks
  (this covers FSDP2's ``fully_shard`` and other tools built on hooks);
- the module was compiled in place (``module.compile()``);
- TorchScript is tracing, or the autograd profiler runs (its traces name modules by their
  ``__call__`` frames);
- ``__call__`` itself was replaced, on the class or on ``nn.Module`` (``torch.fx`` does this
  while it traces).

If a torch release renames the internals read here, :data:`SUPPORTED` is false and every
call goes through ``__call__``.
"""

from __future__ import annotations

import torch
import torch.autograd.profiler as _profiler
import torch.nn.modules.module as _module
from torch import nn

__all__ = ["SUPPORTED", "forwards_directly"]

_MODULE_CALL = nn.Module.__call__
_is_tracing = getattr(torch._C, "_is_tracing", None)

SUPPORTED: bool = (
    _is_tracing is not None
    and hasattr(nn.Module, "_compiled_call_impl")
    and hasattr(_profiler, "_is_profiler_enabled")
    and all(
        hasattr(_module, name)
        for name in (
            "_global_forward_hooks",
            "_global_forward_pre_hooks",
            "_global_backward_hooks",
            "_global_backward_pre_hooks",
        )
    )
    and all(
        hasattr(nn.Module(), name)
        for name in (
            "_forward_hooks",
            "_forward_pre_hooks",
            "_backward_hooks",
            "_backward_pre_hooks",
        )
    )
)


def forwards_directly(module: nn.Module) -> bool:
    """Whether ``module.forward(...)`` now does exactly what ``module(...)`` would.

    :param module: the module about to be called.
    """
    return (
        SUPPORTED
        and type(module).__call__ is _MODULE_CALL
        and getattr(module, "_compiled_call_impl", None) is None  # set by module.compile()
        and not (
            module._forward_hooks
            or module._forward_pre_hooks
            or module._backward_hooks
            or module._backward_pre_hooks
        )
        and not (
            _module._global_forward_hooks
            or _module._global_forward_pre_hooks
            or _module._global_backward_hooks
            or _module._global_backward_pre_hooks
        )
        and not _profiler._is_profiler_enabled
        and not _is_tracing()  # type: ignore[misc]  # checked for None at import
    )
