"""``BaseDataElement``: the container that carries one sample's annotations and predictions.

A data element keeps two kinds of fields apart:

- **metainfo** (image size, file name, scale factor, ...): set with ``set_metainfo`` or the
  ``metainfo=`` argument, read as attributes, never changed by attribute assignment;
- **data** (boxes, labels, masks, nested data elements, ...): set as attributes or with
  ``set_data``, moved between devices by ``to``/``cpu``/``cuda`` and converted by
  ``numpy``/``to_tensor``/``detach``.

Subclasses can expose a data field through a property whose setter calls
``set_field(value, '_name', dtype=...)`` to type-check it; ``keys()`` then reports the public
name only. The semantics follow MMEngine's class of the same name, so task data samples written
for MMEngine (detection, segmentation, classification) work unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

__all__ = ["BaseDataElement"]

_FIELD_SETS = ("_metainfo_fields", "_data_fields")


def _indent(text: str, spaces: int) -> str:
    """Indent every line of ``text`` but the first by ``spaces``."""
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return "\n".join([lines[0], *(" " * spaces + line for line in lines[1:])])


def _describe(obj: Any) -> str:
    """The text ``repr`` shows for a value: nested data elements and dicts are indented."""
    if isinstance(obj, dict):
        return "".join(f"\n{key}: {_indent(_describe(value), 4)}" for key, value in obj.items())
    if isinstance(obj, BaseDataElement):
        body = "\n\n    META INFORMATION"
        body += _indent(_describe(dict(obj.metainfo_items())), 4)
        body += "\n\n    DATA FIELDS"
        body += _indent(_describe(dict(obj.items())), 4)
        return f"<{type(obj).__name__}({body}\n) at {hex(id(obj))}>"
    return repr(obj)


class BaseDataElement:
    """A sample's metainfo and data fields, with dict-like access and device conversion.

    :param metainfo: meta information (deep-copied), e.g. ``dict(img_shape=(H, W))``.
    :param kwargs: data fields, e.g. ``bboxes=tensor``.

    Example::

        sample = BaseDataElement(metainfo=dict(img_id=3), gt_label=torch.tensor([1]))
        sample.pred_score = torch.rand(10)
        sample.keys()            # ['gt_label', 'pred_score'] (in some order)
        sample.metainfo          # {'img_id': 3}
        sample.cuda().numpy()
    """

    def __init__(self, *, metainfo: dict | None = None, **kwargs: Any) -> None:
        self._metainfo_fields: set[str] = set()
        self._data_fields: set[str] = set()
        if metainfo is not None:
            self.set_metainfo(metainfo=metainfo)
        if kwargs:
            self.set_data(kwargs)

    # --- setting fields -------------------------------------------------------------------

    def set_metainfo(self, metainfo: dict) -> None:
        """Add or replace metainfo fields (the values are deep-copied)."""
        assert isinstance(metainfo, dict), f"metainfo must be a dict, got {type(metainfo).__name__}"
        for name, value in copy.deepcopy(metainfo).items():
            self.set_field(name=name, value=value, field_type="metainfo", dtype=None)

    def set_data(self, data: dict) -> None:
        """Add or replace data fields (``setattr`` for each item, so subclass checks apply)."""
        assert isinstance(data, dict), f"data must be a dict, got {type(data).__name__}"
        for name, value in data.items():
            setattr(self, name, value)

    def update(self, instance: BaseDataElement) -> None:
        """Copy every metainfo and data field of ``instance`` into this element."""
        assert isinstance(instance, BaseDataElement), (
            f"update takes a BaseDataElement, got {type(instance).__name__}"
        )
        self.set_metainfo(dict(instance.metainfo_items()))
        self.set_data(dict(instance.items()))

    def set_field(
        self,
        value: Any,
        name: str,
        dtype: type | tuple[type, ...] | None = None,
        field_type: str = "data",
    ) -> None:
        """Set field ``name`` to ``value`` as a ``'data'`` or ``'metainfo'`` field.

        :param dtype: when given, ``value`` must be an instance of it (AssertionError if not).
        :raises AttributeError: when ``name`` is already a field of the other kind.
        """
        assert field_type in ("metainfo", "data"), (
            f"field_type must be 'metainfo' or 'data', got {field_type!r}"
        )
        if dtype is not None:
            assert isinstance(value, dtype), f"{name} must be a {dtype}, got {type(value).__name__}"
        if field_type == "metainfo":
            if name in self._data_fields:
                raise AttributeError(
                    f"cannot set {name!r} as a metainfo field: it is already a data field"
                )
            self._metainfo_fields.add(name)
        else:
            if name in self._metainfo_fields:
                raise AttributeError(
                    f"cannot set {name!r} as a data field: it is already a metainfo field; "
                    f"change it with set_metainfo(dict({name}=value))"
                )
            self._data_fields.add(name)
        super().__setattr__(name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FIELD_SETS:
            if hasattr(self, name):
                raise AttributeError(f"{name} is a private attribute and cannot be replaced")
            super().__setattr__(name, value)
            return
        self.set_field(name=name, value=value, field_type="data", dtype=None)

    def __delattr__(self, name: str) -> None:
        if name in _FIELD_SETS:
            raise AttributeError(f"{name} is a private attribute and cannot be deleted")
        super().__delattr__(name)
        self._metainfo_fields.discard(name)
        self._data_fields.discard(name)

    __delitem__ = __delattr__

    # --- reading fields -------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """The value of field ``key``, or ``default`` when there is none."""
        return getattr(self, key, default)

    def pop(self, *args: Any) -> Any:
        """Remove field ``args[0]`` and return its value, or ``args[1]`` when absent.

        :raises KeyError: when the field is absent and no default is given.
        """
        assert 1 <= len(args) <= 2, "pop takes a key and an optional default"
        name = args[0]
        for fields in (self._metainfo_fields, self._data_fields):
            if name in fields:
                fields.remove(name)
                return self.__dict__.pop(*args)
        if len(args) == 2:
            return args[1]
        raise KeyError(f"{name} is neither a metainfo nor a data field")

    def __contains__(self, item: str) -> bool:
        return item in self._data_fields or item in self._metainfo_fields

    def _private_twins(self) -> set[str]:
        """``'_x'`` for every data field ``x`` that a subclass property stores as ``_x``."""
        return {
            "_" + key
            for key in self._data_fields
            if isinstance(getattr(type(self), key, None), property)
        }

    def keys(self) -> list[str]:
        """The names of the data fields."""
        return list(self._data_fields - self._private_twins())

    def metainfo_keys(self) -> list[str]:
        """The names of the metainfo fields."""
        return list(self._metainfo_fields)

    def all_keys(self) -> list[str]:
        """The names of the metainfo fields, then of the data fields."""
        return self.metainfo_keys() + self.keys()

    def values(self) -> list[Any]:
        """The values of the data fields, in ``keys()`` order."""
        return [getattr(self, key) for key in self.keys()]

    def metainfo_values(self) -> list[Any]:
        """The values of the metainfo fields, in ``metainfo_keys()`` order."""
        return [getattr(self, key) for key in self.metainfo_keys()]

    def all_values(self) -> list[Any]:
        """The values of every field, in ``all_keys()`` order."""
        return self.metainfo_values() + self.values()

    def items(self) -> Iterator[tuple[str, Any]]:
        """``(name, value)`` of every data field."""
        for key in self.keys():
            yield key, getattr(self, key)

    def metainfo_items(self) -> Iterator[tuple[str, Any]]:
        """``(name, value)`` of every metainfo field."""
        for key in self.metainfo_keys():
            yield key, getattr(self, key)

    def all_items(self) -> Iterator[tuple[str, Any]]:
        """``(name, value)`` of every field, metainfo first."""
        yield from self.metainfo_items()
        yield from self.items()

    @property
    def metainfo(self) -> dict[str, Any]:
        """The metainfo fields as a dict."""
        return dict(self.metainfo_items())

    # --- copies ---------------------------------------------------------------------------

    def new(self, *, metainfo: dict | None = None, **kwargs: Any) -> BaseDataElement:
        """An element of the same class: this one's metainfo and data unless given anew.

        ``metainfo`` replaces the metainfo; keyword arguments replace the data.
        """
        element = type(self)()
        element.set_metainfo(dict(self.metainfo_items()) if metainfo is None else metainfo)
        element.set_data(kwargs if kwargs else dict(self.items()))
        return element

    def clone(self) -> BaseDataElement:
        """A shallow copy: same class, same metainfo, the same data values."""
        element = type(self)()
        element.set_metainfo(dict(self.metainfo_items()))
        element.set_data(dict(self.items()))
        return element

    def _map_data(self, convert: Any) -> BaseDataElement:
        """A new element whose data values are ``convert(value)``."""
        element = self.new()
        for key, value in self.items():
            element.set_data({key: convert(value)})
        return element

    # --- devices and types ----------------------------------------------------------------

    def to(self, *args: Any, **kwargs: Any) -> BaseDataElement:
        """A new element with ``.to(*args, **kwargs)`` applied to every data value that has it."""
        return self._map_data(
            lambda value: value.to(*args, **kwargs) if hasattr(value, "to") else value
        )

    def cpu(self) -> BaseDataElement:
        """A new element with tensors (and nested elements) on the CPU."""
        return self._map_data(
            lambda value: (
                value.cpu() if isinstance(value, (torch.Tensor, BaseDataElement)) else value
            )
        )

    def cuda(self) -> BaseDataElement:
        """A new element with tensors (and nested elements) on the current CUDA device."""
        return self._map_data(
            lambda value: (
                value.cuda() if isinstance(value, (torch.Tensor, BaseDataElement)) else value
            )
        )

    def detach(self) -> BaseDataElement:
        """A new element with tensors detached from the autograd graph."""
        return self._map_data(
            lambda value: (
                value.detach() if isinstance(value, (torch.Tensor, BaseDataElement)) else value
            )
        )

    def numpy(self) -> BaseDataElement:
        """A new element with tensors converted to numpy arrays (detached, on the CPU)."""

        def convert(value: Any) -> Any:
            if isinstance(value, torch.Tensor):
                return value.detach().cpu().numpy()
            if isinstance(value, BaseDataElement):
                return value.numpy()
            return value

        return self._map_data(convert)

    def to_tensor(self) -> BaseDataElement:
        """A new element with numpy arrays converted to tensors."""

        def convert(value: Any) -> Any:
            if isinstance(value, np.ndarray):
                return torch.from_numpy(value)
            if isinstance(value, BaseDataElement):
                return value.to_tensor()
            return value

        return self._map_data(convert)

    def to_dict(self) -> dict[str, Any]:
        """Every field as a plain dict (nested elements become dicts too)."""
        return {
            key: value.to_dict() if isinstance(value, BaseDataElement) else value
            for key, value in self.all_items()
        }

    def __repr__(self) -> str:
        return _describe(self)
