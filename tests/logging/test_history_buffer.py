"""HistoryBuffer and the Python log buffer: statistics, bounds, state."""

from __future__ import annotations

import json

import pytest
import torch

from torchkiln.logging import HistoryBuffer
from torchkiln.logging import history_buffer as history_buffer_module
from torchkiln.logging import message_hub as message_hub_module
from torchkiln.logging._py_log_buffer import REQUIRED_METHODS, PyLogBuffer

try:
    from torchkiln._native import LogBuffer as NativeLogBuffer
except ImportError:  # the extension is not built
    NativeLogBuffer = None


@pytest.fixture(autouse=True, params=["python", "native"])
def backend(request, monkeypatch):
    """Run every test on both log buffer backends: the numbers must not depend on it."""
    if request.param == "native":
        if NativeLogBuffer is None:
            pytest.skip("torchkiln._native is not built")
        factory = NativeLogBuffer
    else:
        factory = PyLogBuffer
    monkeypatch.setattr(history_buffer_module, "new_log_buffer", factory)
    monkeypatch.setattr(message_hub_module, "new_log_buffer", factory)
    return factory


def test_window_statistics():
    buf = HistoryBuffer([5.0, 1.0, 4.0, 2.0, 3.0])
    assert buf.current() == 3.0
    assert buf.mean() == 3.0
    assert buf.mean(2) == 2.5
    assert buf.mean(window=3) == 3.0
    assert buf.min() == 1.0 and buf.min(3) == 2.0
    assert buf.max() == 5.0 and buf.max(2) == 3.0
    assert buf.median() == 3.0 and buf.median(4) == 2.5
    assert buf.mean(100) == 3.0  # windows beyond the history take everything
    assert buf.count == 5 and buf.global_mean == 3.0
    assert len(buf) == 5


def test_a_value_with_a_count_is_the_sum_of_that_many_samples():
    buf = HistoryBuffer()
    buf.update(1.0, count=1)
    buf.update(6.0, count=3)  # 3 samples summing to 6 (MMEngine's meaning)
    assert buf.mean() == pytest.approx((1.0 + 6.0) / 4)
    assert buf.mean(1) == pytest.approx(2.0)
    assert buf.global_mean == pytest.approx(7 / 4)
    assert buf.count == 4
    assert buf.median() == 3.5 and buf.current() == 6.0  # order statistics read values as is
    assert buf.data == ([1.0, 6.0], [1, 3])


def test_bounded_history_keeps_global_statistics():
    buf = HistoryBuffer(max_length=3)
    for value in range(1, 11):  # 1..10
        buf.update(value)
    assert buf.data == ([8.0, 9.0, 10.0], [1, 1, 1])
    assert buf.mean() == 9.0
    assert buf.global_mean == 5.5 and buf.count == 10
    assert buf.min() == 8.0


def test_empty_buffer_and_bad_inputs():
    buf = HistoryBuffer()
    assert buf.count == 0 and buf.data == ([], [])
    with pytest.raises(ValueError, match="no value"):
        buf.current()
    with pytest.raises(ValueError, match="no value"):
        buf.mean()
    buf.update(1.0)
    with pytest.raises(ValueError, match="window"):
        buf.mean(0)
    with pytest.raises(ValueError, match="one element"):
        buf.update(torch.ones(2))
    with pytest.raises(ValueError, match="count_history"):
        HistoryBuffer([1.0, 2.0], [1])


def test_tensors_numpy_and_bools_are_accepted():
    import numpy as np

    buf = HistoryBuffer()
    buf.update(torch.tensor(2.0, requires_grad=True) * 1)
    buf.update(torch.tensor([4.0], dtype=torch.float64))
    buf.update(np.float32(6.0))
    buf.update(True)
    assert buf.data == ([2.0, 4.0, 6.0, 1.0], [1, 1, 1, 1])
    assert buf.mean() == 3.25


def test_one_element_numpy_arrays_are_accepted():
    """A 1-d one-element array is a scalar too (``float()`` refuses it on recent numpy)."""
    import numpy as np

    buf = HistoryBuffer()
    buf.update(np.array([5]))
    buf.update(np.array([[2.5]], dtype=np.float32))
    assert buf.data == ([5.0, 2.5], [1, 1])


def test_state_round_trip_is_plain_data():
    buf = HistoryBuffer(max_length=4)
    for value in [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]:
        buf.update(torch.tensor(value))
    state = buf.state_dict()
    assert state == json.loads(json.dumps(state))  # plain data only
    assert state == {"values": [3.0, 4.0, 5.0, 6.0], "counts": [1, 1, 1, 1], "global_sum": 21.0, "global_count": 6}
    other = HistoryBuffer(max_length=4)
    other.load_state_dict(state)
    assert other.data == buf.data and other.global_mean == 3.5 and other.count == 6
    smaller = HistoryBuffer(max_length=2)
    smaller.load_state_dict(state)
    assert smaller.data == ([5.0, 6.0], [1, 1])


def test_log_buffer_interface(backend):
    store = backend(3)
    assert all(callable(getattr(store, name)) for name in REQUIRED_METHODS)
    store.update_many({"a": 1.0, "b": 10.0})
    store.update_many({"a": 3.0, "b": 20.0}, count=2)  # sums over 2 samples
    assert store.keys() == ["a", "b"]
    assert store.mean("a") == pytest.approx(4 / 3) and store.mean("b", 1) == 10.0
    assert store.global_mean("b") == pytest.approx(10.0) and store.count("b") == 3
    with pytest.raises(KeyError):
        store.current("missing")
    copy = backend(3)
    copy.load_state_dict(store.state_dict())
    assert copy.state_dict() == store.state_dict()
    with pytest.raises(ValueError):
        store.mean("a", 0)
    with pytest.raises(ValueError):
        backend(0)


def test_history_buffer_uses_the_selected_backend(backend):
    assert isinstance(HistoryBuffer()._store, backend)
    hub = message_hub_module.MessageHub("backend")
    assert isinstance(hub._store, backend)


def test_update_rows_stores_in_order_and_checks_every_row_first(backend):
    store = backend(3)
    store.update_rows([("a", 1.0, 1), ("b", 2.0, 3), ("a", 5.0, 1)])
    assert store.data("a") == ([1.0, 5.0], [1, 1]) and store.count("b") == 3
    with pytest.raises(ValueError, match="non-negative"):
        store.update_rows([("a", 7.0, 1), ("c", 1.0, -2)])
    assert store.data("a") == ([1.0, 5.0], [1, 1]) and "c" not in store.keys()  # nothing stored


def test_negative_counts_are_rejected_by_both_backends(backend):
    store = backend(3)
    with pytest.raises(ValueError, match="non-negative"):
        store.update("x", 1.0, -1)
    with pytest.raises(ValueError, match="non-negative"):
        store.update_many({"x": 1.0}, -1)
    assert "x" not in store.keys()


def test_update_rows_converts_non_numbers_in_one_call(backend):
    store = backend(4)
    calls = []

    def convert(values):
        calls.append(list(values))
        return [float(v.value) for v in values]

    class Waiting:  # stands for a tensor waiting for conversion
        def __init__(self, value):
            self.value = value

    store.update_rows([("a", Waiting(1.5), 1), ("a", 2, 1), ("b", Waiting(7), 2)], convert)
    assert len(calls) == 1 and [w.value for w in calls[0]] == [1.5, 7]
    assert store.data("a") == ([1.5, 2.0], [1, 1]) and store.data("b") == ([7.0], [2])
    with pytest.raises(ValueError, match="no convert"):
        store.update_rows([("a", Waiting(1), 1)])
    with pytest.raises(ValueError, match="returned 0 numbers for 1 values"):
        store.update_rows([("a", Waiting(1), 1)], lambda values: [])
    assert store.data("a") == ([1.5, 2.0], [1, 1])


def test_pending_tensors_of_several_dtypes_keep_their_order():
    hub = message_hub_module.MessageHub("dtypes")
    hub.update_scalar("k", torch.tensor(1.0))
    hub.update_scalar("k", torch.tensor(2, dtype=torch.int64))
    hub.update_scalar("k", 3.0)
    hub.update_scalar("k", torch.tensor(4.0, dtype=torch.float64))
    assert hub.get_scalar("k").data == ([1.0, 2.0, 3.0, 4.0], [1, 1, 1, 1])


def test_named_statistics_and_registering_more():
    buf = HistoryBuffer([1.0, 2.0, 6.0], [1, 1, 2])
    assert buf.statistics("mean") == buf.mean() == 2.25
    assert buf.statistics("max", 2) == 6.0 and buf.statistics("current") == 6.0

    def spread(buffer, window_size=None):
        return buffer.max(window_size) - buffer.min(window_size)

    try:
        assert HistoryBuffer.register_statistics(spread) is spread
        assert buf.statistics("spread") == 5.0 and buf.statistics("spread", window_size=2) == 4.0
        with pytest.raises(ValueError, match="registered already") as error:
            HistoryBuffer.register_statistics(spread)
        assert isinstance(error.value, AssertionError)  # what MMEngine raises there
    finally:
        HistoryBuffer._statistics_methods.pop("spread", None)
    with pytest.raises(KeyError, match="no statistic named 'spread'"):
        buf.statistics("spread")


def test_counts_may_be_numpy_ints_or_whole_floats():
    import numpy as np

    buf = HistoryBuffer(np.array([2.0, 9.0]), np.array([1, 3]))
    buf.update(np.float32(4.0), 2.0)
    assert buf.data == ([2.0, 9.0, 4.0], [1, 3, 2]) and buf.mean() == 15.0 / 6
    assert (buf._log_history == np.array([2.0, 9.0, 4.0])).all()
    for bad in (-1, 0.5, "2", True):
        with pytest.raises(ValueError, match="non-negative int"):
            buf.update(1.0, bad)
    with pytest.raises(TypeError, match="one element"):
        buf.update(np.array([1.0, 2.0]))
    with pytest.raises(AssertionError):  # MMEngine asserts on mismatched lengths
        HistoryBuffer([1.0, 2.0], [1])


def test_a_history_pickles_with_its_pending_tensors_converted():
    import copy
    import pickle

    buf = HistoryBuffer([1.0], max_length=3)
    buf.update(torch.tensor(5.0, requires_grad=True) * 2, 4)
    assert not buf.ready
    restored = pickle.loads(pickle.dumps(buf))
    assert restored.data == ([1.0, 10.0], [1, 4]) and restored.max_length == 3
    assert restored.global_mean == 11.0 / 5
    restored.update(2.0)
    restored.update(3.0)
    assert restored.data == ([10.0, 2.0, 3.0], [4, 1, 1]) and buf.data == ([1.0, 10.0], [1, 4])
    assert copy.deepcopy(buf).data == buf.data


@pytest.mark.parametrize("length", [3, 10, 17, 128, 129, 300, 1000])
def test_window_means_equal_numpys_bit_for_bit(length):
    """A window's mean is ``numpy.sum(values) / numpy.sum(counts)``, float for float (numpy's
    pairwise summation order), so logged values match MMEngine's exactly."""
    import numpy as np

    rng = np.random.default_rng(length)
    values = rng.standard_normal(length) * 10.0 ** rng.integers(-6, 6, length)
    counts = rng.integers(1, 5, length)
    buf = HistoryBuffer(values.tolist(), counts.tolist(), max_length=length)
    for window in (1, 7, 8, 10, length // 2 or 1, length):
        expected = np.sum(values[-window:]) / np.sum(counts[-window:])
        assert buf.mean(window) == expected
    assert buf.mean() == np.sum(values) / np.sum(counts)
