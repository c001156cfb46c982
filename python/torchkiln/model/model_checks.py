"""What a model must be for the Runner: a BaseModel (``train_step``/``val_step``/``test_step``)."""

from __future__ import annotations

from typing import Any

__all__ = ["plain_module_message"]

_STEPS = ("train_step", "val_step", "test_step")


def plain_module_message(model_or_cls: Any) -> tuple[str, str] | None:
    """``(message, hint)`` when ``model_or_cls`` lacks the step methods the loops call (a plain
    ``torch.nn.Module``), else None."""
    cls = model_or_cls if isinstance(model_or_cls, type) else type(model_or_cls)
    missing = [name for name in _STEPS if not callable(getattr(cls, name, None))]
    if not missing:
        return None
    return (
        f"model {cls.__module__}.{cls.__qualname__} has no {', '.join(missing)}: the loops train "
        "and evaluate a torchkiln BaseModel, and a plain torch.nn.Module is not one",
        "subclass torchkiln.BaseModel and return {'loss': ...} from forward(mode='loss') and "
        "predictions from forward(mode='predict') (docs/user_guide.md, section 3), or use a "
        "plugin's wrapper such as torchkiln-vision's TorchvisionClassifier",
    )
