"""MessageHub: instances, scalars without device syncs, runtime info, bounded state."""

from __future__ import annotations

import json

import pytest
import torch

from torchkiln.logging import LogProcessor, MessageHub
from torchkiln.logging import message_hub as message_hub_module
from torchkiln.logging._py_log_buffer import PyLogBuffer
from torchkiln.logging import history_buffer
from torchkiln.logging.history_buffer import HistoryBuffer, _read_batched, pending_limit

try:
    from torchkiln._native import LogBuffer as NativeLogBuffer
except ImportError:  # the extension is not built
    NativeLogBuffer = None


@pytest.fixture(autouse=True, params=["python", "native"])
def backend(request, monkeypatch):
    """Run every test on both log buffer backends."""
    if request.param == "native" and NativeLogBuffer is None:
        pytest.skip("torchkiln._native is not built")
    factory = NativeLogBuffer if request.param == "native" else PyLogBuffer
    monkeypatch.setattr(message_hub_module, "new_log_buffer", factory)
    return factory


@pytest.fixture(autouse=True)
def _fresh_hubs():
    MessageHub.reset_instances()
    yield
    MessageHub.reset_instances()


# Everything that would copy a device value to the host.
_SYNC_METHODS = ("item", "tolist", "__float__", "__int__", "__index__", "__bool__", "cpu", "numpy", "__format__")


@pytest.fixture
def sync_calls(monkeypatch):
    """Counts calls of every Tensor method that reads a value on the host."""
    counts = {name: 0 for name in _SYNC_METHODS}
    for name in _SYNC_METHODS:
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _name=name, _original=original, **kwargs):
            counts[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    return counts


def test_instances_and_current():
    assert MessageHub.get_current_instance().instance_name == "torchkiln"
    run = MessageHub.get_instance("run-1")
    assert MessageHub.get_current_instance() is run
    assert MessageHub.get_instance("run-1") is run and MessageHub.check_instance_created("run-1")
    other = MessageHub.get_instance("run-2")
    assert MessageHub.get_current_instance() is other
    assert MessageHub.get_instance("run-1") is run and MessageHub.get_current_instance() is run


def test_scalars_and_info():
    hub = MessageHub("h")
    hub.update_scalar("train/loss", 1.0)
    # a value with a count is the sum over that many samples: 2 of 4 right, then 4 of 4
    hub.update_scalars({"train/loss": 3.0, "train/acc": {"value": 2.0, "count": 4}})
    hub.update_scalars({"train/acc": 4.0}, count=4)
    assert hub.get_scalar("train/loss").mean() == 2.0
    assert hub.get_scalar("train/acc").mean() == 0.75 and hub.get_scalar("train/acc").count == 8
    assert list(hub.log_scalars) == ["train/loss", "train/acc"]
    assert all(isinstance(b, HistoryBuffer) for b in hub.log_scalars.values())
    hub.update_info("epoch", 3)
    hub.update_info_dict({"iter": 30, "max_iters": 100})
    assert hub.get_info("epoch") == 3 and hub.get_info("missing", 7) == 7
    assert hub.runtime_info == {"epoch": 3, "iter": 30, "max_iters": 100}


def test_missing_scalar_is_a_key_error_with_suggestion():
    hub = MessageHub("h")
    hub.update_scalar("train/loss", 1.0)
    with pytest.raises(KeyError, match="did you mean 'train/loss'"):
        hub.get_scalar("train/los")


def test_rejected_value_creates_no_key():
    hub = MessageHub("h")
    with pytest.raises(ValueError):
        hub.update_scalar("train/loss", torch.ones(3))
    assert "train/loss" not in hub.log_scalars


def test_tensor_updates_never_sync_and_reads_convert_at_the_next_read(sync_calls):
    hub = MessageHub("h")
    processor = LogProcessor(window_size=5)
    runner = type("R", (), {})()
    runner.message_hub, runner.epoch, runner.iter, runner.max_iters = hub, 0, 0, 100
    runner.train_dataloader = range(20)
    weights = torch.ones(3, requires_grad=True)
    reads = 0
    for i in range(20):
        loss = (weights * (i + 1)).sum()          # requires grad: detached on update
        hub.update_scalar("train/loss", loss)
        hub.update_scalars({"train/loss_cls": loss / 3, "train/grad_norm": torch.tensor(0.5, dtype=torch.float64)})
        hub.update_scalar("train/lr", 0.1)
        hub.update_scalar("train/time", 0.01)
        runner.iter = i
        if (i + 1) % 10 == 0:                      # a log interval
            assert sum(sync_calls.values()) == 30 * reads  # nothing since the last read
            tag, _ = processor.get_log_after_iter(runner, i, "train")
            reads += 1
            # CPU tensors are read one by one, each once: 3 tensors for each of 10 iterations
            assert sync_calls["item"] == 30 * reads
        else:
            assert sync_calls["item"] == 30 * reads
    assert {k: v for k, v in sync_calls.items() if v} == {"item": 60}
    assert tag["loss"] == pytest.approx(3 * sum(range(16, 21)) / 5)
    assert tag["loss_cls"] == pytest.approx(sum(range(16, 21)) / 5)
    assert hub.get_scalar("train/loss").count == 20
    assert hub.get_scalar("train/loss").global_mean == pytest.approx(3 * 10.5)


def test_device_tensors_are_read_in_one_transfer_per_device_and_dtype(sync_calls):
    # (CPU tensors stand in for device ones: _read_batched is what non-CPU tensors get.)
    values = [torch.tensor(1.5), torch.tensor(2.5, dtype=torch.float64), torch.tensor(3.5), torch.tensor(4.5)]
    assert _read_batched(values) == [1.5, 2.5, 3.5, 4.5]  # order kept across the groups
    assert {k: v for k, v in sync_calls.items() if v} == {"tolist": 2}  # float32, float64
    assert _read_batched(values[:1] + values[2:]) == [1.5, 3.5, 4.5]
    assert sync_calls["tolist"] == 3  # one dtype: one transfer


def test_cpu_tensors_are_read_one_by_one_and_others_batched(monkeypatch):
    batched = []
    monkeypatch.setattr(history_buffer, "_read_batched", lambda tensors: batched.append(tensors) or [9.0] * len(tensors))
    assert history_buffer._to_floats([torch.tensor(1.0), torch.tensor(2.0)]) == [1.0, 2.0]
    assert batched == []
    meta = torch.empty((), device="meta")  # not on the CPU: the batched reader takes every value
    assert history_buffer._to_floats([torch.tensor(1.0), meta]) == [9.0, 9.0]
    assert len(batched) == 1 and len(batched[0]) == 2


def test_pending_values_are_bounded(sync_calls):
    hub = MessageHub("h", max_length=4)
    limit = pending_limit(4)
    for i in range(2 * limit + 2):
        hub.update_scalars({"train/loss": torch.tensor(float(i)), "train/lr": 0.1})
    # Both keys share one queue of at most ``limit`` entries: converted at every ``limit``
    # entries, the last 4 (2 iterations) still waiting.
    assert sync_calls["item"] == 2 * limit  # the loss values of four full queues, read on the CPU
    assert len(hub._pending.entries) == 4
    assert hub.get_scalar("train/loss").data == ([2 * limit - 2.0, 2 * limit - 1.0, 2 * limit, 2 * limit + 1.0], [1] * 4)
    assert hub.get_scalar("train/loss").count == 2 * limit + 2
    assert hub.get_scalar("train/lr").count == 2 * limit + 2


def test_counts_are_checked_when_given():
    hub = MessageHub("h")
    hub.update_scalar("k", torch.tensor(1.0))
    for bad in (-1, 1.5):
        with pytest.raises(ValueError, match="non-negative int"):
            hub.update_scalar("k", torch.tensor(2.0), count=bad)
        with pytest.raises(ValueError, match="non-negative int"):
            hub.update_scalars({"k": 2.0}, count=bad)
    assert hub.get_scalar("k").data == ([1.0], [1])


def test_floats_and_tensors_keep_their_order():
    hub = MessageHub("h")
    hub.update_scalar("k", torch.tensor(1.0))
    hub.update_scalar("k", 2.0)  # queued behind the pending tensor
    hub.update_scalar("k", torch.tensor(3.0))
    assert hub.get_scalar("k").data == ([1.0, 2.0, 3.0], [1, 1, 1])
    assert hub.get_scalar("k").current() == 3.0


def test_state_round_trip_is_bounded_plain_data():
    hub = MessageHub("h", max_length=3)
    for i in range(5):
        hub.update_scalar("train/loss", torch.tensor(float(i)))
    hub.update_scalar("train/skip", 1.0, resumed=False)
    hub.update_info("epoch", 2)
    hub.update_info("cfg", {"a": [1, 2.5, "x", None]})
    hub.update_info("model", torch.nn.Linear(1, 1))          # not plain data: left out
    hub.update_info("scratch", 5, resumed=False)
    state = hub.state_dict()
    assert json.loads(json.dumps(state)) == state
    assert state == {
        "log_scalars": {"train/loss": {"values": [2.0, 3.0, 4.0], "counts": [1, 1, 1],
                                       "global_sum": 10.0, "global_count": 5}},
        "runtime_info": {"epoch": 2, "cfg": {"a": [1, 2.5, "x", None]}},
    }
    restored = MessageHub("r", max_length=3)
    restored.update_info("keep", 1)
    restored.load_state_dict(state)
    assert restored.get_scalar("train/loss").data == ([2.0, 3.0, 4.0], [1, 1, 1])
    assert restored.get_scalar("train/loss").global_mean == 2.0
    assert restored.runtime_info == {"keep": 1, "epoch": 2, "cfg": {"a": [1, 2.5, "x", None]}}
    restored.update_scalar("train/loss", 5.0)  # continues the restored history
    assert restored.get_scalar("train/loss").data[0] == [3.0, 4.0, 5.0]
    copy = MessageHub("c", max_length=3)
    copy.load_state_dict(hub)
    assert copy.state_dict() == state


def test_a_count_equal_to_one_is_stored_as_one():
    hub = MessageHub("h")
    hub.update_scalar("train/loss", 1.0)
    hub.update_scalar("train/loss", 3.0, count=1.0)  # equal to 1: the per-iteration path
    buffer = hub.get_scalar("train/loss")
    assert buffer.count == 2 and buffer.data == ([1.0, 3.0], [1, 1])
    with pytest.raises(ValueError, match="non-negative int"):
        hub.update_scalar("train/loss", 3.0, count=2.5)


def test_made_from_histories_info_and_resumed_keys():
    loss = HistoryBuffer([4.0, 6.0], [2, 2])
    hub = MessageHub(
        "made", log_scalars={"train/loss": loss}, runtime_info={"epoch": 2, "tmp": 1},
        resumed_keys={"tmp": False},
    )
    assert hub.get_scalar("train/loss").data == ([4.0, 6.0], [2, 2])
    assert hub.get_scalar("train/loss").mean() == 2.5
    assert hub.get_info("epoch") == 2
    assert hub.state_dict()["runtime_info"] == {"epoch": 2}
    with pytest.raises(TypeError, match="must be a HistoryBuffer") as error:
        MessageHub("bad", log_scalars={"a": 1})
    assert isinstance(error.value, AssertionError)
    with pytest.raises(ValueError, match="neither in log_scalars nor in runtime_info"):
        MessageHub("bad", runtime_info={"iter": 1}, resumed_keys={"iters": False})
    with pytest.raises(TypeError, match="must be a dict"):
        MessageHub("bad", runtime_info=[1])


def test_pop_info():
    hub = MessageHub("pop")
    hub.update_info("best_ckpt", "epoch_3.pth", resumed=False)
    assert hub.pop_info("best_ckpt") == "epoch_3.pth"
    assert hub.pop_info("best_ckpt", "gone") == "gone" and hub.get_info("best_ckpt") is None
    hub.update_info("best_ckpt", "epoch_4.pth")  # back again, saved like any new key
    assert hub.state_dict()["runtime_info"] == {"best_ckpt": "epoch_4.pth"}


def test_a_hub_pickles_and_goes_on(backend):
    import pickle

    hub = MessageHub("pickled", max_length=3)
    for i in range(4):
        hub.update_scalar("train/loss", torch.tensor(float(i)))  # pending tensors
    hub.update_scalar("train/acc", 6.0, count=3)
    hub.update_info("epoch", 1)
    restored = pickle.loads(pickle.dumps(hub))
    assert type(restored._store) is backend
    assert restored.state_dict() == hub.state_dict()
    assert restored.get_scalar("train/acc").mean() == 2.0
    restored.update_scalar("train/loss", torch.tensor(9.0))
    assert restored.get_scalar("train/loss").data == ([2.0, 3.0, 9.0], [1, 1, 1])
    assert hub.get_scalar("train/loss").data == ([1.0, 2.0, 3.0], [1, 1, 1])


def test_load_state_dict_takes_histories_and_resumed_keys(capsys, monkeypatch):
    from collections import OrderedDict

    from torchkiln.logging import MMLogger

    monkeypatch.setattr(MMLogger, "_instance_dict", OrderedDict())  # a fresh current logger
    hub = MessageHub("loaded")
    hub.load_state_dict({
        "log_scalars": {"a": 1, "b": HistoryBuffer([3.0])},
        "runtime_info": {"c": 1, "e": 2},
        "resumed_keys": {"a": True, "b": True, "e": False, "f": True},
    })
    assert list(hub.log_scalars) == ["b"] and hub.get_scalar("b").current() == 3.0
    assert hub.runtime_info == {"c": 1, "e": 2}
    assert hub.state_dict()["runtime_info"] == {"c": 1}
    assert "'a' in log_scalars is not a scalar history" in capsys.readouterr().out


def test_the_log_line_shows_the_mean_per_sample_of_counted_values():
    import types

    hub = MessageHub("counted")
    for _ in range(3):
        hub.update_scalar("train/lr", 0.1)
        hub.update_scalars({"train/loss": {"value": 6.0, "count": 4}, "train/time": 0.5})
    runner = types.SimpleNamespace(message_hub=hub, epoch=0, iter=2, max_iters=3,
                                   train_dataloader=range(3))
    tag, line = LogProcessor(window_size=2).get_log_after_iter(runner, 2, "train")
    assert tag["loss"] == 1.5 and "loss: 1.5000" in line  # 12 over 8 samples


def test_mmengine_names_the_default_hub_and_a_forgotten_current_hub_is_replaced():
    default = MessageHub.get_current_instance()
    assert default.instance_name == "torchkiln"
    assert MessageHub.get_instance("mmengine") is default  # MMEngine's name for it
    assert MessageHub.check_instance_created("mmengine")
    MessageHub.get_instance("run")
    saved = MessageHub._instance_dict
    MessageHub._instance_dict = {}  # code written for MMEngine resets instances like this
    try:
        fresh = MessageHub.get_current_instance()
        assert fresh is not default and fresh.instance_name == "torchkiln"
        assert MessageHub.get_instance("mmengine") is fresh
    finally:
        MessageHub._instance_dict = saved
