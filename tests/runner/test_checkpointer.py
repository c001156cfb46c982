"""The Checkpointer alone: a temp folder, a stand-in state source and a fake clock."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest
import torch

from torchkiln.runner.checkpoint_io import CheckpointError
from torchkiln.runner.checkpointer import BEST_RECORDS_FILE, BestRecord, Checkpointer


class Hub:
    """Keeps runtime info like the message hub."""

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}

    def update_info(self, key: str, value: Any, resumed: bool = True) -> None:
        self.info[key] = value


class State:
    """A state source whose 'model' is one tensor; counts captures and restores."""

    def __init__(self) -> None:
        self.weight = torch.zeros(3)
        self.captures = 0
        self.restored: list[str] = []

    def capture(self, save_optimizer: bool, save_param_scheduler: bool, meta: Any, by_epoch: bool) -> dict[str, Any]:
        self.captures += 1
        return {"meta": {"n": self.captures, **(meta or {})}, "state_dict": {"w": self.weight.clone()}}

    def restore(self, checkpoint: dict[str, Any], filename: str, resume_optimizer: bool, resume_param_scheduler: bool) -> None:
        self.weight = checkpoint["state_dict"]["w"].clone()
        self.restored.append(filename)

    def load_weights(self, checkpoint: dict[str, Any], filename: str, strict: bool, revise_keys: Any) -> None:
        self.weight = checkpoint["state_dict"]["w"].clone()


class MainThreadClock:
    """Advances by 0.5 s per call from the main thread; other threads read 0 (deterministic stalls)."""

    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        if threading.current_thread() is not threading.main_thread():
            return 0.0
        self.now += 0.5
        return self.now


def _checkpointer(tmp_path, **kw: Any) -> tuple[Checkpointer, State, Hub]:
    state, hub = State(), Hub()
    return Checkpointer(str(tmp_path / "run"), state, message_hub=hub, **kw), state, hub


def _pth(folder: str) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.endswith(".pth"))


def test_periodic_saves_point_and_prune(tmp_path):
    checkpointer, state, _ = _checkpointer(tmp_path)
    checkpointer.configure(max_keep_ckpts=2)
    assert checkpointer.latest() is None
    for step in range(1, 5):
        state.weight += 1
        checkpointer.save_periodic(f"epoch_{step}.pth")
    assert _pth(checkpointer.out_dir) == ["epoch_3.pth", "epoch_4.pth"]
    assert checkpointer.record.periodic == ["epoch_3.pth", "epoch_4.pth"]
    assert checkpointer.latest() == os.path.join(checkpointer.out_dir, "epoch_4.pth")
    saved = torch.load(checkpointer.latest(), weights_only=True)
    # recorded before this save pruned epoch_2: a resumed run prunes it (already gone) first
    assert saved["meta"]["checkpointer"]["periodic"] == ["epoch_2.pth", "epoch_3.pth", "epoch_4.pth"]


def test_out_dir_joins_the_work_dir_name(tmp_path):
    checkpointer, _, _ = _checkpointer(tmp_path)
    checkpointer.configure(out_dir=tmp_path / "remote")
    assert checkpointer.out_dir == str(tmp_path / "remote" / "run")
    checkpointer.save_periodic("epoch_1.pth")
    assert _pth(str(tmp_path / "remote" / "run")) == ["epoch_1.pth"]


def test_a_dangling_pointer_is_a_clear_error(tmp_path):
    checkpointer, _, _ = _checkpointer(tmp_path)
    os.makedirs(checkpointer.out_dir)
    with open(os.path.join(checkpointer.out_dir, "last_checkpoint"), "w", encoding="utf-8") as fh:
        fh.write("gone.pth")
    with pytest.raises(CheckpointError, match="gone.pth, which does not exist"):
        checkpointer.latest()


def test_best_records_replace_the_previous_best_and_reach_the_hub(tmp_path):
    checkpointer, _, hub = _checkpointer(tmp_path)
    checkpointer.save_best("acc", 0.5, "greater", "best_acc_epoch_1.pth")
    checkpointer.save_best("acc", 0.7, "greater", "best_acc_epoch_2.pth")
    assert _pth(checkpointer.out_dir) == ["best_acc_epoch_2.pth"]
    assert checkpointer.best("acc") == BestRecord(0.7, os.path.join(checkpointer.out_dir, "best_acc_epoch_2.pth"), "greater")
    assert hub.info["best_score"] == 0.7
    with open(os.path.join(checkpointer.out_dir, BEST_RECORDS_FILE), encoding="utf-8") as fh:
        assert '"score": 0.7' in fh.read()
    assert checkpointer.latest() is None  # best checkpoints do not move the pointer


def test_stop_checkpoints_by_default_and_with_a_template(tmp_path):
    checkpointer, _, _ = _checkpointer(tmp_path)
    checkpointer.configure(max_keep_ckpts=1)
    stop = checkpointer.save_on_stop(7)
    assert os.path.basename(stop) == "iter_7.pth" and checkpointer.latest() == stop
    assert checkpointer.record.stop == stop
    checkpointer.save_periodic("epoch_1.pth")  # a newer periodic one replaces the stop checkpoint
    assert _pth(checkpointer.out_dir) == ["epoch_1.pth"] and checkpointer.record.stop is None

    iter_based, _, _ = _checkpointer(tmp_path / "iters")
    iter_based.configure(max_keep_ckpts=1, stop_filename_tmpl="step_{}.pt")
    path = iter_based.save_on_stop(3)
    assert os.path.basename(path) == "step_3.pt" and iter_based.record.periodic == ["step_3.pt"]


def test_resume_restores_state_and_record_of_the_same_folder_only(tmp_path):
    checkpointer, state, _ = _checkpointer(tmp_path)
    checkpointer.configure(max_keep_ckpts=3)
    state.weight += 5
    checkpointer.save_periodic("epoch_1.pth")
    checkpointer.save_best("loss", 0.2, "less", "best_loss_epoch_1.pth")

    again, fresh_state, hub = _checkpointer(tmp_path)
    again.configure(max_keep_ckpts=3)
    again.load_or_resume(True, None)
    assert torch.equal(fresh_state.weight, torch.full((3,), 5.0))
    assert again.record.periodic == ["epoch_1.pth"]
    assert again.best("loss") is not None and again.best("loss").score == 0.2  # from best_checkpoints.json
    assert hub.info["best_score"] == 0.2

    elsewhere, _, _ = _checkpointer(tmp_path / "other")
    elsewhere.resume(checkpointer.latest())
    assert elsewhere.record.periodic == [] and elsewhere.best("loss") is None


def test_background_saves_report_the_stall_from_the_clock(tmp_path):
    checkpointer, _, hub = _checkpointer(tmp_path, clock=MainThreadClock())
    checkpointer.configure(async_save=True)
    path = checkpointer.save_periodic("epoch_1.pth")
    checkpointer.wait()
    assert os.path.isfile(path) and checkpointer.latest() == path
    assert hub.info["checkpoint_stall_time"] == pytest.approx(0.5)


def test_only_rank_zero_writes(tmp_path):
    state = State()
    checkpointer = Checkpointer(str(tmp_path / "run"), state, rank=1)
    checkpointer.save_periodic("epoch_1.pth")
    assert state.captures == 1  # every rank captures: captures may be collective
    assert not os.path.exists(tmp_path / "run")


def test_listeners_hear_each_complete_file_and_cannot_break_saving(tmp_path):
    checkpointer, _, _ = _checkpointer(tmp_path)
    heard: list[tuple[str, str]] = []
    checkpointer.add_listener(lambda path, kind: heard.append((os.path.basename(path), kind)))
    checkpointer.add_listener(lambda path, kind: 1 / 0)
    checkpointer.save_periodic("epoch_1.pth")
    checkpointer.save_best("acc", 0.5, "greater", "best_acc_epoch_1.pth")
    checkpointer.save_on_stop(3)
    assert heard == [("epoch_1.pth", "periodic"), ("best_acc_epoch_1.pth", "best"), ("iter_3.pth", "stop")]
    assert all(os.path.isfile(os.path.join(checkpointer.out_dir, name)) for name, _ in heard)


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_follow_the_umask(tmp_path, umask, mode):
    checkpointer, _, _ = _checkpointer(tmp_path)
    previous = os.umask(umask)
    try:
        checkpointer.save_periodic("epoch_1.pth")
        checkpointer.save_best("acc", 0.5, "greater", "best_acc_epoch_1.pth")
    finally:
        os.umask(previous)
    for name in ("epoch_1.pth", "last_checkpoint", "best_acc_epoch_1.pth", "best_checkpoints.json"):
        assert os.stat(os.path.join(checkpointer.out_dir, name)).st_mode & 0o777 == mode, name
