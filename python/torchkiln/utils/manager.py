"""``ManagerMixin``: classes whose instances are kept by name, one registry per class.

``MyThing.get_instance("a", **kwargs)`` creates the instance named ``"a"`` the first time and
returns the same object afterwards; ``MyThing.get_current_instance()`` is the instance made
last. Each class gets its own ``_instance_dict``, so subclasses do not share instances.
"""

from __future__ import annotations

import inspect
import threading
import warnings
from collections import OrderedDict
from typing import Any, ClassVar, TypeVar

from torchkiln.errors import UsageTypeError, UsageValueError

__all__ = ["ManagerMeta", "ManagerMixin"]

T = TypeVar("T", bound="ManagerMixin")

_lock = threading.RLock()


class ManagerMeta(type):
    """Gives each class its own ``_instance_dict``; its ``__init__`` must take ``name``."""

    def __init__(cls, *args: Any) -> None:
        super().__init__(*args)
        cls._instance_dict: OrderedDict[str, Any] = OrderedDict()
        params = inspect.signature(cls.__init__).parameters  # type: ignore[misc]  # the class's own __init__
        if "name" not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            raise UsageTypeError(
                f"{cls.__name__}.__init__ must take a 'name' argument: instances are kept by name"
            )


class ManagerMixin(metaclass=ManagerMeta):
    """Base class for named, process-wide instances.

    :param name: the instance's name, a non-empty string.
    """

    _instance_dict: ClassVar[OrderedDict[str, Any]]

    def __init__(self, name: str = "", **kwargs: Any) -> None:
        if not isinstance(name, str) or not name:
            raise UsageValueError(
                f"{type(self).__name__} needs a non-empty string name, got {name!r}"
            )
        self._instance_name = name

    @classmethod
    def get_instance(cls: type[T], name: str, **kwargs: Any) -> T:
        """The instance called ``name``, created with ``kwargs`` if there is none yet (the
        arguments of a later call are ignored, with a warning)."""
        with _lock:
            if not isinstance(name, str):
                raise UsageTypeError(f"instance names are strings, got {type(name).__name__}")
            instance = cls._instance_dict.get(name)
            if instance is None:
                instance = cls(name=name, **kwargs)
                cls._instance_dict[name] = instance
            elif kwargs:
                warnings.warn(
                    f"{cls.__name__} {name!r} already exists: the arguments "
                    f"{sorted(kwargs)} are ignored",
                    UserWarning,
                    stacklevel=2,
                )
            return instance

    @classmethod
    def get_current_instance(cls: type[T]) -> T:
        """The instance created last.

        :raises RuntimeError: when none has been created yet.
        """
        with _lock:
            if not cls._instance_dict:
                raise RuntimeError(
                    f"no {cls.__name__} exists yet: call {cls.__name__}.get_instance(name) first"
                )
            return next(reversed(cls._instance_dict.values()))

    @classmethod
    def check_instance_created(cls, name: str) -> bool:
        """Whether an instance called ``name`` exists."""
        return name in cls._instance_dict

    @property
    def instance_name(self) -> str:
        """The name this instance was created with."""
        return self._instance_name
