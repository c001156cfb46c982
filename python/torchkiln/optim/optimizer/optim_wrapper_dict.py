"""OptimWrapperDict: several named OptimWrappers, for models with several optimizers (GANs)."""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, ValuesView
from typing import Any, NoReturn

from torch import nn

from torchkiln.errors import (
    ConfigAssertionError,
    UsageKeyError,
    UsageNotImplementedError,
    did_you_mean,
)
from torchkiln.optim.optimizer.optim_wrapper import OptimWrapper

__all__ = ["OptimWrapperDict"]


class OptimWrapperDict:
    """A read-only mapping of names to :class:`OptimWrapper` objects.

    A model with several optimizers updates each one itself in its ``train_step``::

        optim_wrapper['generator'].update_params(g_loss)

    Whole-dict operations that make sense for every optimizer (``zero_grad``, learning
    rates, state dicts, count status) are offered here; ``update_params``, ``backward``,
    ``step`` and ``optim_context`` are not, since they need to know which optimizer.

    :param optim_wrappers: ``name=OptimWrapper`` pairs.
    """

    def __init__(self, **optim_wrappers: OptimWrapper) -> None:
        for name, wrapper in optim_wrappers.items():
            if not isinstance(wrapper, OptimWrapper):
                raise ConfigAssertionError(
                    f"`OptimWrapperDict` only accepts OptimWrapper entries, and {name!r} is a "
                    f"{type(wrapper).__name__}",
                    where=f"optim_wrapper.{name}",
                    hint="build each entry with build_optim_wrapper or use constructor: MultiOptimWrapperConstructor",
                )
        self.optim_wrappers: dict[str, OptimWrapper] = dict(optim_wrappers)

    # ------------------------------------------------------------------ mapping
    def __getitem__(self, name: str) -> OptimWrapper:
        try:
            return self.optim_wrappers[name]
        except KeyError:
            raise UsageKeyError(
                f"no optimizer named {name!r}; known: {', '.join(self.optim_wrappers) or 'none'}",
                where="optim_wrapper",
                hint=did_you_mean(name, self.optim_wrappers),
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self.optim_wrappers

    def __len__(self) -> int:
        return len(self.optim_wrappers)

    def __iter__(self) -> Iterator[str]:
        return iter(self.optim_wrappers)

    def keys(self) -> KeysView[str]:
        """Names of the optimizers."""
        return self.optim_wrappers.keys()

    def values(self) -> ValuesView[OptimWrapper]:
        """The wrappers."""
        return self.optim_wrappers.values()

    def items(self) -> ItemsView[str, OptimWrapper]:
        """``(name, wrapper)`` pairs."""
        return self.optim_wrappers.items()

    # ------------------------------------------------------------------ whole-dict operations
    @property
    def param_groups(self) -> dict[str, list[dict[str, Any]]]:
        """``{name: that optimizer's param_groups}``."""
        return {name: wrapper.param_groups for name, wrapper in self.items()}

    def get_lr(self) -> dict[str, list[float]]:
        """``{'<name>.lr': [lr of each param group], ...}``, with ``'<name>.base_lr'`` before
        it for a wrapper that reports a ``base_lr`` (one with several param groups)."""
        lrs: dict[str, list[float]] = {}
        for name, wrapper in self.items():
            for key, values in wrapper.get_lr().items():
                lrs[f"{name}.{key}"] = values
        return lrs

    def get_momentum(self) -> dict[str, list[float]]:
        """``{'<name>.momentum': [...], ...}``."""
        return {
            f"{name}.momentum": wrapper.get_momentum()["momentum"] for name, wrapper in self.items()
        }

    def zero_grad(self, **kwargs: Any) -> None:
        """Zero the gradients of every optimizer."""
        for wrapper in self.values():
            wrapper.zero_grad(**kwargs)

    def initialize_count_status(self, model: nn.Module, init_counts: int, max_counts: int) -> None:
        """Call :meth:`OptimWrapper.initialize_count_status` on every wrapper."""
        for wrapper in self.values():
            wrapper.initialize_count_status(model, init_counts, max_counts)

    def state_dict(self) -> dict[str, dict[str, Any]]:
        """``{name: wrapper.state_dict()}``."""
        return {name: wrapper.state_dict() for name, wrapper in self.items()}

    def load_state_dict(self, state_dict: dict[str, dict[str, Any]]) -> None:
        """Load each wrapper's state from ``{name: state}``; unknown names are an error."""
        for name, state in state_dict.items():
            if name not in self.optim_wrappers:
                raise ConfigAssertionError(
                    f"the optimizer state names {name!r}, which this OptimWrapperDict does not have",
                    where="optimizer state_dict",
                    hint=f"known optimizers: {', '.join(self.optim_wrappers)}",
                )
            self.optim_wrappers[name].load_state_dict(state)

    # ------------------------------------------------------------------ not for a dict
    def _which(self, method: str) -> NoReturn:
        first = next(iter(self.optim_wrappers), "name")
        name = method.partition("(")[0]
        raise UsageNotImplementedError(
            f"`{name}` should be called on one of the optimizers of this OptimWrapperDict "
            f"({', '.join(self.optim_wrappers)}), e.g. optim_wrapper[{first!r}].{method}"
        )

    def update_params(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not available: use ``optim_wrapper['name'].update_params(loss)``."""
        self._which("update_params(loss)")

    def backward(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not available: use ``optim_wrapper['name'].backward(loss)``."""
        self._which("backward(loss)")

    def step(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not available: use ``optim_wrapper['name'].step()``."""
        self._which("step()")

    def optim_context(self, model: nn.Module) -> NoReturn:
        """Not available: use ``optim_wrapper['name'].optim_context(model)``."""
        self._which("optim_context(model)")

    def __repr__(self) -> str:
        # one line per optimizer, each led by its name
        lines = (f"name: {name}, {wrapper!r}" for name, wrapper in self.items())
        return "OptimWrapperDict(\n" + "".join(f"  {line}\n" for line in lines) + ")"
