"""CheckpointHook: intervals, file names, the pointer, pruning, best checkpoints, resume."""

from __future__ import annotations

import os

import pytest
import torch

from torchkiln.errors import ConfigError
from torchkiln.hooks.checkpoint_hook import CheckpointHook
from torchkiln.runner.checkpointer import BestRecord


def _files(folder: str) -> list[str]:
    return sorted(f for f in os.listdir(folder) if f.endswith(".pth"))


def _pointer(folder: str) -> str:
    with open(os.path.join(folder, "last_checkpoint"), encoding="utf-8") as fh:
        return fh.read()


def _start(runner, hook):
    runner.hooks = [hook]
    hook.before_run(runner)
    hook.before_train(runner)


def _train(runner, hook, drive, epochs, scores=None, key="accuracy"):
    _start(runner, hook)
    for e in range(epochs):
        drive.train_epoch(runner, [hook])
        if scores is not None:
            drive.val(runner, [hook], {key: scores[e]})
    hook.after_train(runner)


def test_epoch_interval_and_save_last(make_runner, drive):
    runner = make_runner(max_epochs=5, iters_per_epoch=2)
    hook = CheckpointHook(interval=2)
    _train(runner, hook, drive, 5)
    assert _files(runner.work_dir) == ["epoch_2.pth", "epoch_4.pth", "epoch_5.pth"]
    assert _pointer(runner.work_dir) == os.path.join(runner.work_dir, "epoch_5.pth")
    assert all(s["by_epoch"] is True and s["save_optimizer"] and s["save_param_scheduler"] for s in runner.saved)


def test_iteration_interval_and_custom_template(make_runner, drive):
    runner = make_runner(max_epochs=1, iters_per_epoch=7)
    hook = CheckpointHook(interval=3, by_epoch=False, filename_tmpl="step{}.pt")
    _train(runner, hook, drive, 1)
    assert sorted(s["filename"] for s in runner.saved) == ["step3.pt", "step6.pt", "step7.pt"]
    assert all(s["by_epoch"] is False for s in runner.saved)
    assert _pointer(runner.work_dir).endswith("step7.pt")


def test_save_last_false_and_never(make_runner, drive):
    runner = make_runner(max_epochs=3, iters_per_epoch=1)
    _train(runner, CheckpointHook(interval=-1, save_last=False), drive, 3)
    assert runner.saved == []
    assert not os.path.exists(os.path.join(runner.work_dir, "last_checkpoint"))


def test_save_begin(make_runner, drive):
    runner = make_runner(max_epochs=6, iters_per_epoch=1)
    _train(runner, CheckpointHook(interval=2, save_begin=3, save_last=False), drive, 6)
    assert _files(runner.work_dir) == ["epoch_3.pth", "epoch_5.pth"]


def test_out_dir_joins_work_dir_name(make_runner, drive, tmp_path):
    runner = make_runner(max_epochs=1, iters_per_epoch=1)
    hook = CheckpointHook(interval=1, out_dir=str(tmp_path / "remote"))
    _train(runner, hook, drive, 1)
    target = tmp_path / "remote" / os.path.basename(runner.work_dir)
    assert _files(str(target)) == ["epoch_1.pth"]
    assert hook.out_dir == str(target)


def test_max_keep_ckpts_keeps_best_and_latest(make_runner, drive):
    runner = make_runner(max_epochs=5, iters_per_epoch=1)
    hook = CheckpointHook(interval=1, max_keep_ckpts=2, save_best="accuracy")
    _train(runner, hook, drive, 5, scores=[0.5, 0.9, 0.7, 0.6, 0.8])
    assert _files(runner.work_dir) == ["best_accuracy_epoch_2.pth", "epoch_4.pth", "epoch_5.pth"]
    assert runner.checkpointer.record.periodic == ["epoch_4.pth", "epoch_5.pth"]


def test_pruning_never_deletes_a_best_checkpoint(make_runner, drive):
    # A template that collides with the best file name: the periodic file is also the best.
    runner = make_runner(max_epochs=4, iters_per_epoch=1)
    hook = CheckpointHook(interval=1, max_keep_ckpts=1, save_best="acc", filename_tmpl="best_acc_epoch_{}.pth")
    _train(runner, hook, drive, 4, scores=[0.9, 0.1, 0.2, 0.3], key="acc")
    assert _files(runner.work_dir) == ["best_acc_epoch_1.pth", "best_acc_epoch_4.pth"]


def test_pruning_never_deletes_the_pointer_target(make_runner, drive):
    runner = make_runner(max_epochs=2, iters_per_epoch=1)
    hook = CheckpointHook(interval=1, max_keep_ckpts=1)
    _start(runner, hook)
    drive.train_epoch(runner, [hook])
    epoch_1 = os.path.join(runner.work_dir, "epoch_1.pth")
    epoch_2 = os.path.join(runner.work_dir, "epoch_2.pth")
    assert _pointer(runner.work_dir) == epoch_1
    # A newer tracked file appears while the pointer still names epoch_1 (the Checkpointer's
    # memory of its last save is cleared, so only the pointer file protects epoch_1).
    open(epoch_2, "wb").close()
    checkpointer = runner.checkpointer
    checkpointer.record.periodic.append("epoch_2.pth")
    checkpointer.last_saved = None
    checkpointer._prune()
    assert os.path.isfile(epoch_1)
    assert not os.path.exists(epoch_2)
    assert checkpointer.record.periodic == ["epoch_1.pth"]


@pytest.mark.parametrize(
    ("key", "rule"),
    [("accuracy/top1", "greater"), ("loss", "less"), ("val_loss", "less"), ("mIoU", "greater"),
     ("AR@100", "greater"), ("coco/bbox_mAP", "greater"), ("acc_loss", "greater")],
)
def test_rule_inference(key, rule):
    assert CheckpointHook(save_best=key).rules == [rule]


def test_rule_errors():
    with pytest.raises(ConfigError, match="cannot tell"):
        CheckpointHook(save_best="foo")
    with pytest.raises(ConfigError, match="rule must be"):
        CheckpointHook(save_best="acc", rule="bigger")
    with pytest.raises(ConfigError, match="'auto'"):
        CheckpointHook(save_best=["auto", "acc"])
    with pytest.raises(ConfigError, match="one per save_best key"):
        CheckpointHook(save_best=["acc", "loss"], rule=["greater", "less", "less"])
    # One rule in a list applies to every key, as in MMEngine.
    assert CheckpointHook(save_best=["acc", "loss"], rule=["less"]).rules == ["less", "less"]
    with pytest.raises(ConfigError, match="filename_tmpl"):
        CheckpointHook(filename_tmpl="model.pth")
    assert CheckpointHook(save_best="foo", greater_keys=["fo"]).rules == ["greater"]
    assert CheckpointHook(save_best="acc", rule="less").rules == ["less"]


def test_best_replaces_previous_and_keeps_state(make_runner, drive):
    runner = make_runner(max_epochs=4, iters_per_epoch=2)
    hook = CheckpointHook(interval=-1, save_last=False, save_best="accuracy/top1")
    _train(runner, hook, drive, 4, scores=[0.5, 0.4, 0.8, 0.8], key="accuracy/top1")
    assert _files(runner.work_dir) == ["best_accuracy_top1_epoch_3.pth"]
    assert [s["filename"] for s in runner.saved] == ["best_accuracy_top1_epoch_1.pth", "best_accuracy_top1_epoch_3.pth"]
    best = runner.saved[-1]
    assert best["save_optimizer"] and best["save_param_scheduler"]
    assert "optimizer" in best["checkpoint"] and "param_schedulers" in best["checkpoint"]
    # Saved after validation: the counters already count the finished epoch (the runner
    # takes the position from the loop); the validation is complete, not pending.
    assert best["meta"] == {"val_pending": False}
    assert (best["checkpoint"]["meta"]["epoch"], best["checkpoint"]["meta"]["iter"]) == (3, 6)
    assert runner.message_hub.get_info("best_score") == 0.8
    assert runner.message_hub.get_info("best_ckpt") == os.path.join(runner.work_dir, "best_accuracy_top1_epoch_3.pth")
    # No last_checkpoint pointer for best checkpoints.
    assert not os.path.exists(os.path.join(runner.work_dir, "last_checkpoint"))


def test_best_less_rule_and_iteration_names(make_runner, drive):
    runner = make_runner(max_epochs=3, iters_per_epoch=2)
    hook = CheckpointHook(by_epoch=False, save_last=False, save_best="loss")
    _train(runner, hook, drive, 3, scores=[0.5, 0.3, 0.4], key="loss")
    assert _files(runner.work_dir) == ["best_loss_iter_4.pth"]


def test_several_best_keys(make_runner, drive):
    runner = make_runner(max_epochs=2, iters_per_epoch=1)
    hook = CheckpointHook(save_last=False, save_best=["acc", "loss"])
    _start(runner, hook)
    for metrics in ({"acc": 0.5, "loss": 1.0}, {"acc": 0.4, "loss": 0.5}):
        drive.train_epoch(runner, [hook])
        drive.val(runner, [hook], metrics)
    assert _files(runner.work_dir) == ["best_acc_epoch_1.pth", "best_loss_epoch_2.pth"]
    info = runner.message_hub.runtime_info
    assert info["best_score_acc"] == 0.5 and info["best_score_loss"] == 0.5


def test_auto_picks_the_first_metric(make_runner, drive):
    runner = make_runner(max_epochs=1, iters_per_epoch=1)
    hook = CheckpointHook(save_last=False, save_best="auto")
    _train(runner, hook, drive, 1, scores=[0.7], key="accuracy/top1")
    assert hook.key_indicators == ["accuracy/top1"] and hook.rules == ["greater"]
    assert _files(runner.work_dir) == ["best_accuracy_top1_epoch_1.pth"]


def test_missing_best_key_is_a_clear_error(make_runner, drive):
    runner = make_runner(max_epochs=1, iters_per_epoch=1)
    hook = CheckpointHook(save_best="acc/top2")
    _start(runner, hook)
    with pytest.raises(ConfigError, match="acc/top2") as info:
        hook.after_val_epoch(runner, {"acc/top1": 0.5})
    assert "did you mean 'acc/top1'" in str(info.value)


def test_standalone_validation_saves_no_best(make_runner, drive):
    runner = make_runner()
    hook = CheckpointHook(save_best="acc")
    drive.val(runner, [hook], {"acc": 0.9})
    assert runner.saved == []


def test_state_survives_resume_through_checkpoint_meta(make_runner, drive):
    runner = make_runner(max_epochs=4, iters_per_epoch=1)
    hook = CheckpointHook(interval=1, max_keep_ckpts=2, save_best="acc")
    _start(runner, hook)
    for score in (0.6, 0.9):
        drive.train_epoch(runner, [hook])
        drive.val(runner, [hook], {"acc": score})
    saved_path = os.path.join(runner.work_dir, "epoch_2.pth")
    state = torch.load(saved_path, weights_only=True)["meta"]["checkpointer"]
    assert state["periodic"] == ["epoch_1.pth", "epoch_2.pth"]

    # A new process: same work_dir, fresh runner and hook, resumed from epoch_2.
    resumed = make_runner(work_dir=runner.work_dir, max_epochs=4, iters_per_epoch=1)
    hook2 = CheckpointHook(interval=1, max_keep_ckpts=2, save_best="acc")
    resumed.hooks = [hook2]
    hook2.before_run(resumed)
    resumed.checkpointer.resume(saved_path)
    resumed.train_loop.epoch, resumed.train_loop.iter = 2, 2
    hook2.before_train(resumed)
    # epoch_2 was written before its validation (best 0.6 then) and again after that
    # validation found a new best, so it records the 0.9.
    assert state["best"]["acc"]["score"] == 0.9
    best = resumed.checkpointer.best("acc")
    assert best is not None and best.score == 0.9
    assert best.path == os.path.join(runner.work_dir, "best_acc_epoch_2.pth")
    assert resumed.checkpointer.record.periodic == ["epoch_1.pth", "epoch_2.pth"]
    assert resumed.message_hub.get_info("best_score") == 0.9
    drive.train_epoch(resumed, [hook2])
    drive.val(resumed, [hook2], {"acc": 0.7})  # worse than 0.9: no new best
    assert _files(resumed.work_dir) == ["best_acc_epoch_2.pth", "epoch_2.pth", "epoch_3.pth"]
    drive.train_epoch(resumed, [hook2])
    drive.val(resumed, [hook2], {"acc": 0.95})
    assert _files(resumed.work_dir) == ["best_acc_epoch_4.pth", "epoch_3.pth", "epoch_4.pth"]


def test_state_of_an_older_checkpoint_layout_is_read(make_runner, tmp_path):
    runner = make_runner()
    runner.hooks = [CheckpointHook(save_best="acc")]
    older = {
        "meta": {"epoch": 1, "iter": 4, "checkpoint_hook": {
            "out_dir": runner.work_dir, "keys": ["acc"], "rules": ["greater"],
            "best_score": [0.8], "best_ckpt": ["/x/best_acc_epoch_1.pth"], "keep_ckpt_ids": [1],
        }},
        "state_dict": runner.model.state_dict(),
    }
    path = str(tmp_path / "older.pth")
    torch.save(older, path)
    runner.checkpointer.resume(path)
    assert runner.checkpointer.best("acc") == BestRecord(0.8, "/x/best_acc_epoch_1.pth", "greater")


def test_checkpoint_of_another_run_leaves_state_alone(make_runner, drive, tmp_path):
    other = make_runner(max_epochs=1, iters_per_epoch=1)
    hook = CheckpointHook(interval=1, save_best="acc")
    _start(other, hook)
    drive.train_epoch(other, [hook])
    drive.val(other, [hook], {"acc": 0.99})
    runner = make_runner()
    runner.checkpointer.resume(os.path.join(other.work_dir, "best_acc_epoch_1.pth"))
    assert runner.checkpointer.best("acc") is None and runner.checkpointer.record.periodic == []


def test_previous_best_outside_the_folder_is_not_deleted(make_runner, drive, tmp_path):
    foreign = tmp_path / "elsewhere"
    foreign.mkdir()
    (foreign / "best_acc_epoch_1.pth").write_bytes(b"x")
    runner = make_runner(max_epochs=1, iters_per_epoch=1)
    runner.checkpointer.record.best["acc"] = BestRecord(0.1, str(foreign / "best_acc_epoch_1.pth"), "greater")
    hook = CheckpointHook(save_last=False, save_best="acc")
    _train(runner, hook, drive, 1, scores=[0.5], key="acc")
    assert (foreign / "best_acc_epoch_1.pth").exists()
    assert _files(runner.work_dir) == ["best_acc_epoch_1.pth"]


def test_only_rank_zero_touches_files(make_runner, drive):
    runner = make_runner(max_epochs=3, iters_per_epoch=1)
    runner.use_rank(1)
    hook = CheckpointHook(interval=1, max_keep_ckpts=1)
    _train(runner, hook, drive, 3)
    # Every rank captures (captures may be collective) and keeps the same record; only rank 0 writes.
    assert len(runner.saved) == 3
    assert _files(runner.work_dir) == []
    assert not os.path.exists(os.path.join(runner.work_dir, "last_checkpoint"))
    assert runner.checkpointer.record.periodic == ["epoch_3.pth"]


def test_published_keys(make_runner, drive):
    runner = make_runner(max_epochs=1, iters_per_epoch=1)
    hook = CheckpointHook(interval=1, published_keys=["meta", "state_dict"])
    _train(runner, hook, drive, 1)
    published = [f for f in _files(runner.work_dir) if f.startswith("epoch_1-")]
    assert len(published) == 1 and len(published[0]) == len("epoch_1-12345678.pth")
    content = torch.load(os.path.join(runner.work_dir, published[0]), weights_only=True)
    assert sorted(content) == ["meta", "state_dict"]


def test_backend_args_are_rejected():
    with pytest.raises(ConfigError, match="local file system"):
        CheckpointHook(backend_args={"backend": "petrel"})
    with pytest.raises(ValueError, match="local file system"):
        CheckpointHook(file_client_args={"backend": "disk", "enable_mc": True})
    with pytest.raises(ValueError, match="cannot be set at the same time"):
        CheckpointHook(file_client_args={"backend": "disk"}, backend_args={"backend": "local"})


def test_local_backend_args_are_accepted():
    CheckpointHook(backend_args={"backend": "local"})
    CheckpointHook(backend_args={})
    CheckpointHook(file_client_args={"backend": "disk"})  # deprecated spelling, logged


def test_save_best_and_rule_checks_use_mmengine_exception_types():
    with pytest.raises(AssertionError, match='"save_best" should be'):
        CheckpointHook(save_best={"acc": "acc"})
    with pytest.raises(AssertionError, match="Only support one"):
        CheckpointHook(save_best=["auto", "acc"])
    with pytest.raises(AssertionError, match='"rule" should be a str'):
        CheckpointHook(save_best=["acc"], rule=1)
    with pytest.raises(AssertionError, match='Number of "rule" must be'):
        CheckpointHook(save_best=["acc"], rule=["greater", "less"])
    hook = CheckpointHook(save_best=["FID", "IS"], rule=["less"])
    assert hook.rules == ["less", "less"]


def test_rule_errors_carry_mmengine_exception_types():
    from torchkiln.hooks._rules import check_rule

    with pytest.raises(KeyError, match="rule must be"):  # CheckpointHook: KeyError
        CheckpointHook(save_best="acc", rule="bigger")
    with pytest.raises(ValueError, match="cannot tell"):  # no rule inferred: ValueError
        CheckpointHook(save_best="foo")
    with pytest.raises(AssertionError, match="rule must be"):  # the default (EarlyStopping)
        check_rule("the world", "custom_hooks.EarlyStoppingHook.rule")


def test_key_lists_are_kept_as_given():
    assert CheckpointHook(greater_keys="acc").greater_keys == ("acc",)
    assert CheckpointHook(greater_keys=["acc"]).greater_keys == ["acc"]
    assert CheckpointHook(less_keys=["loss_cls"]).less_keys == ["loss_cls"]


def test_a_fresh_run_ignores_an_old_best_record(make_runner, drive):
    runner = make_runner(max_epochs=1, iters_per_epoch=1)
    _train(runner, CheckpointHook(save_last=False, save_best="acc"), drive, 1, scores=[0.9], key="acc")
    with open(os.path.join(runner.work_dir, "best_checkpoints.json"), encoding="utf-8") as fh:
        assert '"score": 0.9' in fh.read()
    fresh = make_runner(work_dir=runner.work_dir, max_epochs=1, iters_per_epoch=1)
    _start(fresh, CheckpointHook(save_last=False, save_best="acc"))
    assert fresh.checkpointer.best("acc") is None


def test_runtime_info_names_the_kept_and_last_checkpoints(make_runner, drive):
    """Each periodic checkpoint carries ``keep_ckpt_ids`` (the steps kept, itself included)
    and ``last_ckpt`` (its own path) in the message hub state it saves."""
    runner = make_runner(max_epochs=4, iters_per_epoch=1)
    hook = CheckpointHook(interval=1, max_keep_ckpts=2)
    _train(runner, hook, drive, 4)
    saved = {s["filename"]: s["checkpoint"]["message_hub"]["runtime_info"] for s in runner.saved}
    assert saved["epoch_1.pth"]["keep_ckpt_ids"] == [1]
    assert saved["epoch_4.pth"]["keep_ckpt_ids"] == [3, 4]
    assert saved["epoch_4.pth"]["last_ckpt"] == os.path.join(runner.work_dir, "epoch_4.pth")
    assert hook.last_ckpt == os.path.join(runner.work_dir, "epoch_4.pth")

    # A hook that starts again (a resume) carries on from the hub's list.
    hook2 = CheckpointHook(interval=1, max_keep_ckpts=2)
    hook2.before_run(runner)
    hook2.before_train(runner)
    assert list(hook2.keep_ckpt_ids) == [3, 4]


def test_a_new_best_saves_the_step_again_whatever_the_interval(make_runner, drive):
    """The periodic checkpoint of a step is written before its validation; a new best saves
    it again (even off the interval) so it records that best."""
    runner = make_runner(max_epochs=3, iters_per_epoch=1)
    hook = CheckpointHook(interval=2, save_best="acc")
    _train(runner, hook, drive, 3, scores=[0.1, 0.2, 0.9], key="acc")
    # epoch 1: no periodic checkpoint yet, so the best is not followed by one.
    assert _files(runner.work_dir) == ["best_acc_epoch_3.pth", "epoch_2.pth", "epoch_3.pth"]
    last = [s for s in runner.saved if s["filename"] == "epoch_3.pth"][-1]
    info = last["checkpoint"]["message_hub"]["runtime_info"]
    assert info["best_ckpt"] == os.path.join(runner.work_dir, "best_acc_epoch_3.pth")
    assert info["best_score"] == 0.9
    assert hook.best_ckpt_path == info["best_ckpt"]


def test_before_train_without_before_run(make_runner, tmp_path):
    """Driven without ``before_run``, ``before_train`` configures the Checkpointer itself and
    offers MMEngine's attributes: storage fronts, out_dir, best paths from the hub."""
    from torchkiln.fileio import FileClient, LocalBackend

    runner = make_runner()
    hook = CheckpointHook(save_best=["acc", "mIoU"], out_dir="elsewhere")
    runner.message_hub.update_info("best_ckpt_acc", "best_acc.pth")
    hook.before_train(runner)
    assert isinstance(hook.file_client, FileClient) and isinstance(hook.file_backend, LocalBackend)
    assert hook.out_dir == os.path.join("elsewhere", os.path.basename(runner.work_dir))
    assert runner.checkpointer.out_dir == os.path.abspath(hook.out_dir)
    assert hook.best_ckpt_path_dict == {"acc": "best_acc.pth", "mIoU": None}
    assert not hasattr(hook, "best_ckpt_path")

    hook = CheckpointHook(file_client_args={"backend": "disk"})
    hook.before_train(runner)
    assert hook.file_backend is hook.file_client


def test_empty_metrics_warn_even_outside_training(make_runner):
    runner = make_runner()
    CheckpointHook(save_best="auto").after_val_epoch(runner, {})
    assert any(level == "warning" and "empty dict" in msg for level, msg in runner.logger.records)
