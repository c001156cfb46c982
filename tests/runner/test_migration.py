"""MMEngine documentation patterns that run with only the import lines changed."""

from __future__ import annotations

import copy
import os

import pytest

import torch
import torch.nn.functional as F
from kiln_toys import make_loader
from torch import nn
from torch.optim import SGD

from torchkiln import BaseMetric, BaseModel, Runner
from torchkiln.registry import LOOPS, METRICS
from torchkiln.runner import EpochBasedTrainLoop


class MMToyNet(BaseModel):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, imgs, labels, mode):
        x = self.net(imgs)
        if mode == "loss":
            return {"loss": F.cross_entropy(x, labels)}
        elif mode == "predict":
            return x, labels


class Accuracy(BaseMetric):
    def process(self, data_batch, data_samples):
        score, gt = data_samples
        self.results.append({"batch_size": len(gt), "correct": (score.argmax(dim=1) == gt).sum().cpu()})

    def compute_metrics(self, results):
        total_correct = sum(item["correct"] for item in results)
        total_size = sum(item["batch_size"] for item in results)
        return dict(accuracy=100 * total_correct / total_size)


def test_fifteen_minute_tutorial(tmp_path):
    runner = Runner(
        model=MMToyNet(),
        work_dir=str(tmp_path / "work_dir"),
        train_dataloader=make_loader(32, 8, shuffle=True),
        optim_wrapper=dict(optimizer=dict(type=SGD, lr=0.001, momentum=0.9)),
        train_cfg=dict(by_epoch=True, max_epochs=2, val_interval=1),
        val_dataloader=make_loader(16, 8),
        val_cfg=dict(),
        val_evaluator=dict(type=Accuracy),
    )
    runner.train()
    assert runner.epoch == 2 and runner.iter == 8
    metrics = runner.val()
    assert 0 <= float(metrics["accuracy"]) <= 100


def test_minimal_runner_with_string_optimizer(tmp_path):
    model = MMToyNet()
    before = [p.clone() for p in model.parameters()]
    runner = Runner(
        model=model,
        work_dir=str(tmp_path),
        train_dataloader=make_loader(16, 4),
        train_cfg=dict(by_epoch=True, max_epochs=5),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01)),
    )
    runner.train()
    assert runner.iter == 20
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    # the exact final config is not dumped without a cfg, but a log folder exists
    assert os.path.isdir(runner.log_dir)


@pytest.fixture()
def restore_registries():
    """Forced registrations in these tests must not leak into other test modules."""
    saved = [(r, copy.copy(r._forced), {k: dict(v) for k, v in r._entries.items()}) for r in (METRICS, LOOPS)]
    yield
    for registry, forced, entries in saved:
        registry._forced = forced
        registry._entries = entries


def test_custom_metric_registered_with_force(tmp_path, restore_registries):
    @METRICS.register_module(force=True)
    class Accuracy(BaseMetric):  # noqa: F811 - shadows the built-in on purpose
        def process(self, data_batch, data_samples):
            score, gt = data_samples
            self.results.append(((score.argmax(1) == gt).sum().item(), len(gt)))

        def compute_metrics(self, results):
            return {"custom_acc": 100.0 * sum(r[0] for r in results) / sum(r[1] for r in results)}

    runner = Runner(
        model=MMToyNet(),
        work_dir=str(tmp_path),
        train_dataloader=make_loader(8, 4),
        train_cfg=dict(by_epoch=True, max_epochs=1, val_interval=1),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01)),
        val_dataloader=make_loader(8, 4),
        val_cfg=dict(),
        val_evaluator=dict(type="Accuracy"),
    )
    runner.train()
    assert "custom_acc" in runner.val()


def test_custom_loop_running_each_batch_twice(tmp_path, restore_registries):
    @LOOPS.register_module(force=True)
    class TwiceEpochBasedTrainLoop(EpochBasedTrainLoop):
        def run_iter(self, idx, data_batch) -> None:
            super().run_iter(idx, data_batch)
            super().run_iter(idx, data_batch)

    runner = Runner(
        model=MMToyNet(),
        work_dir=str(tmp_path),
        train_dataloader=make_loader(8, 4),
        train_cfg=dict(type="TwiceEpochBasedTrainLoop", max_epochs=2, val_interval=1),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01)),
    )
    runner.train()
    assert isinstance(runner.train_loop, TwiceEpochBasedTrainLoop)
    assert runner.iter == 8  # 2 epochs x 2 batches x 2


def test_test_from_new_work_dir_with_load_from(tmp_path):
    runner = Runner(
        model=MMToyNet(),
        work_dir=str(tmp_path / "train"),
        train_dataloader=make_loader(8, 4),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=1)),
    )
    trained = runner.train()
    ckpt = tmp_path / "train" / "epoch_2.pth"
    assert ckpt.is_file()

    fresh = MMToyNet()
    tester = Runner(
        model=fresh,
        work_dir=str(tmp_path / "test"),
        test_dataloader=make_loader(8, 4),
        test_cfg=dict(),
        test_evaluator=dict(type=Accuracy),
        load_from=str(ckpt),
    )
    metrics = tester.test()
    assert "accuracy" in metrics
    for a, b in zip(trained.parameters(), fresh.parameters()):
        assert torch.equal(a, b)


class ToyGAN(BaseModel):
    def __init__(self):
        super().__init__()
        self.generator = nn.Linear(2, 4)
        self.discriminator = nn.Linear(4, 1)

    def forward(self, inputs, labels=None, mode="tensor"):
        return self.generator(inputs[:, :2])

    def train_step(self, data, optim_wrapper):
        real, _ = data
        noise = torch.randn(real.shape[0], 2)
        with optim_wrapper["discriminator"].optim_context(self.discriminator):
            fake = self.generator(noise).detach()
            d_loss = F.softplus(-self.discriminator(real)).mean() + F.softplus(self.discriminator(fake)).mean()
        optim_wrapper["discriminator"].update_params(d_loss)
        with optim_wrapper["generator"].optim_context(self.generator):
            g_loss = F.softplus(-self.discriminator(self.generator(noise))).mean()
        optim_wrapper["generator"].update_params(g_loss)
        return {"loss_d": d_loss.detach(), "loss_g": g_loss.detach()}


def test_gan_with_two_optimizers(tmp_path):
    model = ToyGAN()
    g0 = model.generator.weight.clone()
    d0 = model.discriminator.weight.clone()
    runner = Runner(
        model=model,
        work_dir=str(tmp_path),
        train_dataloader=make_loader(8, 4),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(
            constructor="MultiOptimWrapperConstructor",
            generator=dict(optimizer=dict(type="Adam", lr=1e-3)),
            discriminator=dict(optimizer=dict(type="SGD", lr=1e-2)),
        ),
    )
    runner.train()
    assert not torch.equal(g0, model.generator.weight)
    assert not torch.equal(d0, model.discriminator.weight)
    assert set(runner.optim_wrapper.keys()) == {"generator", "discriminator"}
