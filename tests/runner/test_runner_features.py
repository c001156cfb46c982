"""Runner features beyond the basic loop: seeds, auto_scale_lr, compile, intervals, hooks config."""

from __future__ import annotations

import pytest
import torch
from kiln_toys import ToyModel, make_loader

from torchkiln import Hook, Runner
from torchkiln.evaluation import BaseMetric


class CountMetric(BaseMetric):
    def process(self, data_batch, data_samples):
        self.results.append(len(data_samples[1]))

    def compute_metrics(self, results):
        return {"seen": float(sum(results))}


def _runner(tmp_path, **kw):
    args = dict(
        model=ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            batch_size=4,
            dataset=dict(type="DigitsDataset", split="train"),
            sampler=dict(type="DefaultSampler", shuffle=True),
            collate_fn=dict(type="default_collate"),
        ),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(checkpoint=None, logger=None),
    )
    args.update(kw)
    return Runner(**args)


class Digits4(ToyModel):
    """ToyModel on the first 4 pixels of each digit (keeps runs tiny)."""

    def forward(self, inputs, labels=None, mode="tensor"):
        return super().forward(inputs[:, :4].float(), labels if labels is None else labels % 3, mode)


def _train_limited(tmp_path, seed, iters=20):
    torch.manual_seed(123)  # the model is built here, before the runner seeds
    runner = _runner(
        tmp_path,
        model=Digits4(),
        train_cfg=dict(by_epoch=False, max_iters=iters),
        train_dataloader=dict(
            batch_size=4, dataset=dict(type="DigitsDataset", split="train", augment=True),
            sampler=dict(type="InfiniteSampler", shuffle=True), collate_fn=dict(type="default_collate"),
        ),
        randomness=dict(seed=seed, deterministic=True),
    )
    runner.train()
    return {k: v.clone() for k, v in runner.model.state_dict().items()}


def test_same_seed_same_weights_other_seed_differs(tmp_path):
    a = _train_limited(tmp_path / "a", seed=7)
    b = _train_limited(tmp_path / "b", seed=7)
    c = _train_limited(tmp_path / "c", seed=8)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_auto_scale_lr(tmp_path):
    runner = _runner(
        tmp_path,
        model=Digits4(),
        train_cfg=dict(by_epoch=False, max_iters=1),
        auto_scale_lr=dict(enable=True, base_batch_size=16),
    )
    runner.train()
    # world 1 x batch 4 / base 16 -> lr x 0.25
    assert runner.optim_wrapper.param_groups[0]["lr"] == pytest.approx(0.025)


def test_compile_train_step_with_eager_backend(tmp_path):
    runner = _runner(
        tmp_path, model=Digits4(), train_cfg=dict(by_epoch=False, max_iters=2), compile=dict(backend="eager")
    )
    runner.train()
    assert runner.iter == 2
    assert hasattr(runner.model.train_step, "_torchdynamo_orig_callable") or "compile" in repr(runner.model.train_step).lower()


def test_dynamic_intervals_and_val_begin(tmp_path):
    seen_epochs = []

    class ValRecorder(Hook):
        def after_val_epoch(self, runner, metrics):
            seen_epochs.append(runner.epoch)

    runner = Runner(
        model=ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=make_loader(4, 4),
        train_cfg=dict(by_epoch=True, max_epochs=7, val_begin=2, val_interval=1, dynamic_intervals=[[4, 3]]),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        val_dataloader=make_loader(4, 4),
        val_cfg=dict(),
        val_evaluator=CountMetric(),
        custom_hooks=[ValRecorder()],
        default_hooks=dict(checkpoint=None),
    )
    runner.train()
    # epochs 2, 3 every epoch; from epoch 4 every 3 epochs (6), and always the last one (7)
    assert seen_epochs == [2, 3, 6, 7]


def test_iter_based_validation_interval(tmp_path):
    seen = []

    class ValRecorder(Hook):
        def after_val_epoch(self, runner, metrics):
            seen.append((runner.iter, metrics["seen"]))

    runner = Runner(
        model=ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=make_loader(8, 4),
        train_cfg=dict(by_epoch=False, max_iters=7, val_interval=3),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        val_dataloader=make_loader(6, 4),
        val_cfg=dict(),
        val_evaluator=CountMetric(),
        custom_hooks=[ValRecorder()],
        default_hooks=dict(checkpoint=None),
    )
    runner.train()
    assert seen == [(3, 6.0), (6, 6.0), (7, 6.0)]
    assert runner.epoch == 3  # 7 iterations over 2 batches per pass


def test_default_hooks_merge_and_remove(tmp_path):
    runner = _runner(tmp_path, default_hooks=dict(checkpoint=None, logger=dict(interval=3), timer=None))
    names = [type(h).__name__ for h in runner.hook_host.get_plugins()]
    assert "CheckpointHook" not in names and "IterTimerHook" not in names
    logger = next(h for h in runner.hook_host.get_plugins() if type(h).__name__ == "LoggerHook")
    assert logger.interval == 3
    assert {"RuntimeInfoHook", "ParamSchedulerHook", "DistSamplerSeedHook"} <= set(names)


def test_custom_hook_priority_from_config(tmp_path):
    order = []

    class First(Hook):
        def before_train(self, runner):
            order.append("first")

    class Last(Hook):
        def before_train(self, runner):
            order.append("last")

    from torchkiln.registry import HOOKS

    HOOKS.register_module(name="FirstProbeHook", module=First, force=True)
    HOOKS.register_module(name="LastProbeHook", module=Last, force=True)
    runner = _runner(
        tmp_path,
        model=Digits4(),
        train_cfg=dict(by_epoch=False, max_iters=1),
        custom_hooks=[dict(type="LastProbeHook", priority="LOWEST"), dict(type="FirstProbeHook", priority=0)],
    )
    runner.train()
    assert order == ["first", "last"]


def test_early_stop_flag_ends_training(tmp_path):
    class StopAfterTwo(Hook):
        def after_train_epoch(self, runner):
            if runner.epoch + 1 == 2:
                runner.train_loop.stop_training = True

    runner = Runner(
        model=ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=make_loader(8, 4),
        train_cfg=dict(by_epoch=True, max_epochs=10),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        custom_hooks=[StopAfterTwo()],
        default_hooks=dict(checkpoint=None),
    )
    runner.train()
    assert runner.epoch == 2


def test_mode_switches_only_when_mode_changes(tmp_path, monkeypatch):
    calls = []
    model = ToyModel()
    original_train = model.train

    def counting_train(mode=True):
        calls.append(mode)
        return original_train(mode)

    monkeypatch.setattr(model, "train", counting_train)
    runner = Runner(
        model=model,
        work_dir=str(tmp_path),
        train_dataloader=make_loader(16, 4),
        train_cfg=dict(by_epoch=True, max_epochs=3),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(checkpoint=None),
    )
    runner.train()
    # already in train mode after construction: no switch in 3 epochs x 4 iterations
    assert calls == []
