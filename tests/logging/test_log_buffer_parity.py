"""The pure-Python log buffer and the Rust one agree on every input.

Hypothesis draws sequences of operations (good and bad arguments alike: negative, huge and
fractional counts, windows below 1, keys and values of the wrong type, invalid states,
converters that fail) and runs each sequence against both backends. After every operation
the results, or the types of the errors raised, must be equal, and so must the whole state.
"""

from __future__ import annotations

import math
import pickle
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from torchkiln.logging._py_log_buffer import PyLogBuffer

native = pytest.importorskip("torchkiln._native")
NativeLogBuffer = native.LogBuffer


class Waiting:
    """Stands for a tensor waiting for conversion (``update_rows`` hands it to ``convert``)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Waiting({self.value!r})"


def _convert_ok(values: list[Any]) -> list[float]:
    return [w.value if isinstance(w, Waiting) else 0.0 for w in values]


def _convert_short(values: list[Any]) -> list[float]:
    return _convert_ok(values)[:-1]


def _convert_fails(values: list[Any]) -> list[float]:
    raise RuntimeError("conversion failed")


CONVERTERS = {"none": None, "ok": _convert_ok, "short": _convert_short, "fails": _convert_fails}

good_keys = st.sampled_from(["a", "b", "c"])
keys = st.one_of(good_keys, good_keys, good_keys, st.integers(0, 3), st.none())
good_values = st.one_of(st.floats(), st.integers(-(2**70), 2**70))
values = st.one_of(
    good_values, good_values, st.booleans(), st.just(10**400), st.just("1.5"), st.none()
)
good_counts = st.integers(0, 5)
counts = st.one_of(
    good_counts,
    good_counts,
    st.integers(-3, -1),
    st.integers(2**62, 2**64),
    st.integers(-(2**64), -(2**63) - 1),
    st.booleans(),
    st.floats(-2, 3),
    st.just("1"),
)
windows = st.one_of(
    st.none(), st.integers(-2, 8), st.integers(2**63 - 2, 2**64), st.floats(0, 3), st.booleans()
)
well_formed_states = st.builds(
    lambda n, m, v, c, s, g: {
        "values": v[:n],
        "counts": c[: n if m is None else m],
        "global_sum": s,
        "global_count": g,
    },
    st.integers(0, 6),
    st.one_of(st.none(), st.none(), st.integers(0, 6)),  # None: as many counts as values
    st.lists(good_values, min_size=6, max_size=6),
    st.lists(st.one_of(good_counts, good_counts, st.integers(-2, -1)), min_size=6, max_size=6),
    good_values,
    st.one_of(st.integers(-2, 10), st.integers(0, 2**63 - 1)),
)
key_states = st.one_of(
    well_formed_states,
    well_formed_states,
    well_formed_states,
    st.fixed_dictionaries(
        {},
        optional={
            "values": st.one_of(st.lists(values, max_size=6), st.just("123"), st.just({1: 2})),
            "counts": st.one_of(st.lists(counts, max_size=6), st.just(None)),
            "global_sum": values,
            "global_count": counts,
        },
    ),
    st.just([]),
    st.none(),
)
rows = st.one_of(
    st.tuples(keys, st.one_of(values, st.builds(Waiting, st.floats())), counts),
    st.tuples(good_keys, st.floats()),
    st.lists(good_values, min_size=3, max_size=3),
)

operations = st.one_of(
    st.tuples(st.just("update"), keys, values, counts),
    st.tuples(st.just("update"), good_keys, good_values, good_counts),
    st.tuples(
        st.just("update_many"),
        st.one_of(st.dictionaries(keys, values, max_size=3), st.lists(good_values), st.none()),
        counts,
    ),
    st.tuples(
        st.just("update_rows"), st.lists(rows, max_size=4), st.sampled_from(list(CONVERTERS))
    ),
    st.tuples(st.sampled_from(["current", "global_mean", "count", "data", "key_state_dict"]), keys),
    st.tuples(st.sampled_from(["mean", "min", "max", "median"]), keys, windows),
    st.tuples(st.sampled_from(["keys", "state_dict", "len", "clear", "pickle"])),
    st.tuples(st.just("contains"), keys),
    st.tuples(st.just("load_key_state_dict"), keys, key_states),
    st.tuples(
        st.just("load_state_dict"),
        st.one_of(
            st.builds(lambda k: {"keys": k}, st.dictionaries(keys, key_states, max_size=3)),
            st.just({}),
            st.just({"keys": [1, 2]}),
        ),
    ),
)


def _apply(buffer: Any, op: tuple[Any, ...]) -> tuple[Any, Any]:
    """Run ``op`` on ``buffer``; returns (the buffer to go on with, the outcome)."""
    name, *args = op
    try:
        if name == "pickle":
            buffer = pickle.loads(pickle.dumps(buffer))
            return buffer, ("ok", buffer.capacity)
        if name == "len":
            return buffer, ("ok", len(buffer))
        if name == "contains":
            return buffer, ("ok", args[0] in buffer)
        if name == "update_rows":
            return buffer, ("ok", buffer.update_rows(args[0], CONVERTERS[args[1]]))
        return buffer, ("ok", getattr(buffer, name)(*args))
    except Exception as exc:  # the outcome is the error's type
        return buffer, ("error", type(exc).__name__)


def _same(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN (and 0.0 equals -0.0, as ``==`` has it)."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(capacity=st.integers(1, 5), ops=st.lists(operations, max_size=25))
def test_both_backends_give_the_same_results_and_errors(capacity, ops):
    python, rust = PyLogBuffer(capacity), NativeLogBuffer(capacity)
    for op in ops:
        python, expected = _apply(python, op)
        rust, got = _apply(rust, op)
        assert _same(expected, got), f"{op!r}: python {expected!r}, native {got!r}"
        assert _same(python.state_dict(), rust.state_dict()), f"states differ after {op!r}"


@settings(max_examples=100, deadline=None)
@given(capacity=st.one_of(st.integers(-3, 5), st.integers(2**63, 2**64), st.floats(), st.none()))
def test_both_backends_accept_and_refuse_the_same_capacities(capacity):
    outcomes = []
    for backend in (PyLogBuffer, NativeLogBuffer):
        try:
            outcomes.append(("ok", backend(capacity).capacity))
        except Exception as exc:
            outcomes.append(("error", type(exc).__name__))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("backend", [PyLogBuffer, NativeLogBuffer])
def test_negative_counts_are_refused_everywhere(backend):
    """Every way a count gets in refuses a negative one, and nothing is stored."""
    buffer = backend(4)
    bad_state = {"values": [1.0], "counts": [-1], "global_sum": 1.0, "global_count": 1}
    attempts = [
        lambda: buffer.update("k", 1.0, -1),
        lambda: buffer.update_many({"k": 1.0}, -1),
        lambda: buffer.update_rows([("k", 1.0, -1)]),
        lambda: buffer.load_key_state_dict("k", bad_state),
        lambda: buffer.load_key_state_dict("k", dict(bad_state, counts=[1], global_count=-5)),
        lambda: buffer.load_state_dict({"keys": {"k": bad_state}}),
    ]
    for attempt in attempts:
        with pytest.raises(ValueError, match="negative"):
            attempt()
    assert buffer.keys() == []


@pytest.mark.parametrize("backend", [PyLogBuffer, NativeLogBuffer])
def test_pickling_round_trips_exactly(backend):
    buffer = backend(5)
    for i, value in enumerate([0.1, -0.0, float("inf"), 1e308, 5e-324]):
        buffer.update("x", value, i)
    buffer.update("y", 2.5, 2**63 - 1)
    buffer.update("y", 1.0, 7)  # the running count saturates
    copy = pickle.loads(pickle.dumps(buffer))
    assert type(copy) is backend and copy.capacity == 5
    assert copy.state_dict() == buffer.state_dict()
    assert [math.copysign(1, v) for v in copy.data("x")[0]] == [1, -1, 1, 1, 1]
    assert copy.count("y") == 2**63 - 1
    copy.update("x", 4.0)  # a live buffer, not a snapshot
    expected = ([-0.0, float("inf"), 1e308, 5e-324, 4.0], [1, 2, 3, 4, 1])
    assert copy.data("x") == expected
    with pytest.raises(ValueError, match="capacity"):
        copy.__setstate__({"keys": {}})
    assert copy.data("x") == expected  # a failed load changes nothing


@pytest.mark.parametrize(
    "values",
    [
        [1e308, 1e308, 1.0],
        [math.inf, -math.inf, 2.0, 3.0],
        [math.nan, 1.0, -math.nan, -2.0],
        [-0.0, 0.0, -0.0],
        [5e-324, -5e-324, 1.0, math.inf],
    ],
)
def test_statistics_agree_on_edge_values(values):
    python, rust = PyLogBuffer(8), NativeLogBuffer(8)
    for i, value in enumerate(values):
        python.update("k", value, i % 3)
        rust.update("k", value, i % 3)
    for name in ("mean", "min", "max", "median"):
        for window in (None, 1, 2, 3, 100):
            expected, got = getattr(python, name)("k", window), getattr(rust, name)("k", window)
            assert _same(expected, got), f"{name}({window}) of {values}: {expected} != {got}"
    assert _same(python.global_mean("k"), rust.global_mean("k"))
