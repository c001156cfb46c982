"""Type checks for sequences: ``is_seq_of``, ``is_list_of`` and ``is_tuple_of``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

__all__ = ["is_list_of", "is_seq_of", "is_tuple_of"]


def is_seq_of(
    seq: Any, expected_type: type | tuple[type, ...], seq_type: type | None = None
) -> bool:
    """Whether ``seq`` is a sequence (of ``seq_type`` when given) whose items are all
    ``expected_type`` instances. An empty sequence passes.

    :param seq: the object to check.
    :param expected_type: the type (or tuple of types) every item must have.
    :param seq_type: the sequence type ``seq`` must have; any ``Sequence`` when None.
    """
    container: type = Sequence if seq_type is None else seq_type
    if not isinstance(seq, container):
        return False
    return all(isinstance(item, expected_type) for item in cast("Sequence[Any]", seq))


def is_list_of(seq: Any, expected_type: type | tuple[type, ...]) -> bool:
    """Whether ``seq`` is a list whose items are all ``expected_type`` instances."""
    return is_seq_of(seq, expected_type, seq_type=list)


def is_tuple_of(seq: Any, expected_type: type | tuple[type, ...]) -> bool:
    """Whether ``seq`` is a tuple whose items are all ``expected_type`` instances."""
    return is_seq_of(seq, expected_type, seq_type=tuple)
