"""DDP, separate DDP and FSDP2 under two real gloo processes (forked once, CPU).

One fork of two workers runs every scenario in turn and pickles what it saw; the tests
below check those records against single-process references computed here.
"""

from __future__ import annotations

import datetime
import os
import pickle
from pathlib import Path

import pytest
import torch
import torch.distributed as tdist
import torch.multiprocessing as mp
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

from torchkiln import Hook, Runner
from torchkiln.data import DefaultSampler
from torchkiln.evaluation import BaseMetric
from torchkiln.evaluation.metrics.accuracy import Accuracy
from torchkiln.model import DigitsMLP
from torchkiln.model.wrappers import unwrap_model, wrap_model
from torchkiln.optim import OptimWrapper

WORLD = 2
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.dist


# ---------------------------------------------------------------------- scenario helpers
def _accumulation_data() -> tuple[torch.Tensor, torch.Tensor]:
    """(steps, ranks, batch, 4) inputs and (steps, ranks, batch) labels."""
    g = torch.Generator().manual_seed(1)
    return torch.randn(4, WORLD, 6, 4, generator=g), torch.randint(0, 3, (4, WORLD, 6), generator=g)


def _small_mlp() -> DigitsMLP:
    torch.manual_seed(0)
    return DigitsMLP(hidden=8, in_features=4, num_classes=3, init_cfg=[])


def _counting_allreduce(state: dict, bucket):  # a DDP communication hook
    state["calls"] += 1
    return default_hooks.allreduce_hook(None, bucket)


def _scenario_no_sync(rank: int) -> dict:
    model = _small_mlp()
    ddp = wrap_model(model, None)
    calls = {"calls": 0}
    ddp.register_comm_hook(calls, _counting_allreduce)
    wrapper = OptimWrapper(torch.optim.SGD(ddp.parameters(), lr=0.1), accumulative_counts=2)
    xs, ys = _accumulation_data()
    per_step, first_grads = [], None
    for step in range(4):
        before = calls["calls"]
        ddp.train_step({"inputs": xs[step, rank], "labels": ys[step, rank]}, wrapper)
        per_step.append(calls["calls"] - before)
        if step == 0:
            first_grads = [p.grad.clone() for p in model.parameters()]
    return {
        "type": type(ddp).__name__,
        "reducer_calls": per_step,
        "first_grads": first_grads,
        "params": [p.detach().clone() for p in model.parameters()],
    }


class _OrderMetric(BaseMetric):
    """Records the dataset index of every sample it is shown."""

    def process(self, data_batch, data_samples):
        self.results.extend(int(i) for i in data_batch)

    def compute_metrics(self, results):
        return {"order": list(results), "count": len(results)}


def _scenario_metrics(rank: int) -> dict:
    out = {}
    dataset = list(range(7))
    for round_up in (True, False):
        for shuffle in (False, True):
            sampler = DefaultSampler(dataset, shuffle=shuffle, seed=3, round_up=round_up)
            loader = torch.utils.data.DataLoader(dataset, batch_size=2, sampler=sampler)
            order, accuracy = _OrderMetric(), Accuracy(topk=1)
            batches = []
            for batch in loader:
                batches.append(len(batch))
                order.process(batch, batch)
                # Sample i is predicted right unless i % 3 == 0 (samples 0, 3, 6 are wrong).
                labels = torch.zeros(len(batch), dtype=torch.long)
                scores = torch.stack([torch.tensor([1.0, 0.0]) if int(i) % 3 else torch.tensor([0.0, 1.0]) for i in batch])
                accuracy.process(None, {"pred_scores": scores, "gt_labels": labels})
            out[(round_up, shuffle)] = {
                "batches": batches,
                "order": order.evaluate(len(dataset)),
                "accuracy": accuracy.evaluate(len(dataset)),
            }
    return out


def _digits_loader(batch_size: int, sampler: dict) -> dict:
    return {"batch_size": batch_size, "num_workers": 0, "dataset": {"type": "DigitsDataset", "split": "train"}, "sampler": sampler}


def _runner_cfg(work_dir: str, **overrides) -> dict:
    cfg = {
        "model": {"type": "DigitsMLP", "hidden": [32, 16]},
        "work_dir": work_dir,
        "train_dataloader": _digits_loader(32, {"type": "InfiniteSampler", "shuffle": True}),
        "train_cfg": {"by_epoch": False, "max_iters": 4},
        "optim_wrapper": {"optimizer": {"type": "SGD", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4}},
        "default_hooks": {"logger": None, "checkpoint": {"type": "CheckpointHook", "interval": 2, "by_epoch": False}},
        "randomness": {"seed": 7},
    }
    cfg.update(overrides)
    return cfg


def _full_weights(runner: Runner) -> dict[str, torch.Tensor]:
    # Collective for FSDP (gathers whole tensors): every rank calls it.
    return {k: v.detach().cpu().clone() for k, v in unwrap_model(runner.model).state_dict().items()}


class _SeeWeights(Hook):
    """Keeps the weights training starts from (after ``init_weights``, before the first step)."""

    def before_train(self, runner) -> None:
        self.weights = {k: v.clone() for k, v in unwrap_model(runner.model).state_dict().items()}


def _scenario_runner_epochs(rank: int, tmp: str) -> dict:
    """Epoch-based run with diff_rank_seed; each rank gets its own work_dir to see who writes."""
    work_dir = os.path.join(tmp, f"epochs_rank{rank}")
    runner = Runner.from_cfg(
        _runner_cfg(
            work_dir,
            train_dataloader=_digits_loader(64, {"type": "DefaultSampler", "shuffle": True}),
            train_cfg={"by_epoch": True, "max_epochs": 2},
            default_hooks={"logger": {"type": "LoggerHook", "interval": 5}, "checkpoint": {"type": "CheckpointHook", "interval": 1}},
            randomness={"seed": 11, "diff_rank_seed": True},
        )
    )
    seen = _SeeWeights()
    runner.register_hook(seen)
    runner.train()
    sampler = runner.train_dataloader.sampler
    return {
        "model_type": type(runner.model).__name__,
        "seed": runner.seed,
        "sampler_seed": sampler.seed,
        "sampler_epoch": sampler.epoch,
        "epoch_indices": sampler.indices(),
        "init": seen.weights,
        "final": _full_weights(runner),
        "files": sorted(str(p.relative_to(work_dir)) for p in Path(work_dir).rglob("*")) if os.path.isdir(work_dir) else None,
    }


# Validation batch sizes on the 359-sample val split (180 per rank with round_up): with 64,
# rank 1's last batch holds 51 samples and the repeated one; with 179, the repeat is alone.
VAL_LOSS_CASES = ((64, True), (179, False))  # (batch size, shuffle)


def _val_cfg(work_dir: str, batch_size: int, shuffle: bool) -> dict:
    return {
        "model": {"type": "DigitsMLP", "hidden": [32, 16]},
        "work_dir": work_dir,
        "val_dataloader": {
            "batch_size": batch_size,
            "num_workers": 0,
            "dataset": {"type": "DigitsDataset", "split": "val"},
            "sampler": {"type": "DefaultSampler", "shuffle": shuffle, "round_up": True},
        },
        "val_cfg": {},
        "val_evaluator": {"type": "Accuracy"},
        "default_hooks": {"logger": None, "checkpoint": None},
        "randomness": {"seed": 7},
    }


def _scenario_val_loss(rank: int, tmp: str) -> dict:
    out = {}
    for batch_size, shuffle in VAL_LOSS_CASES:
        runner = Runner.from_cfg(_val_cfg(os.path.join(tmp, f"val_{batch_size}"), batch_size, shuffle))
        out[batch_size] = {"metrics": runner.val(), "weights": _full_weights(runner)}
    return out


def _scenario_gan(rank: int, tmp: str) -> dict:
    from torchkiln.config import Config

    cfg = Config.fromfile(str(ROOT / "configs" / "gan_toy.yaml")).to_dict()
    cfg.update(
        work_dir=os.path.join(tmp, "gan"),
        train_cfg={"by_epoch": False, "max_iters": 3},
        default_hooks={"logger": None, "checkpoint": None},
        model_wrapper_cfg={"type": "MMSeparateDistributedDataParallel"},
        param_scheduler=None,
    )
    cfg["train_dataloader"]["sampler"] = {"type": "InfiniteSampler", "shuffle": True}
    cfg["train_dataloader"]["batch_size"] = 16
    runner = Runner.from_cfg(cfg)
    init = {k: v.clone() for k, v in unwrap_model(runner.model).state_dict().items()}
    runner.train()
    return {
        "model_type": type(runner.model).__name__,
        "child_types": {name: type(child).__name__ for name, child in runner.model.module.named_children()},
        "init": init,
        "final": _full_weights(runner),
    }


def _scenario_fsdp(rank: int, tmp: str) -> dict:
    from torchkiln.dist import load_sharded_checkpoint, save_sharded_checkpoint

    out: dict = {}
    ddp = Runner.from_cfg(_runner_cfg(os.path.join(tmp, "ddp")))
    ddp.train()
    out["ddp"] = _full_weights(ddp)

    fsdp_dir = os.path.join(tmp, "fsdp")
    fsdp = Runner.from_cfg(_runner_cfg(fsdp_dir, model_wrapper_cfg={"type": "FSDPWrapper", "shard_modules": ["Linear"]}))
    fsdp.train()
    module = unwrap_model(fsdp.model)
    out["fsdp_type"] = type(fsdp.model).__name__
    out["local_shapes"] = {n: tuple(p.to_local().shape) for n, p in module.named_parameters()}
    out["fsdp"] = _full_weights(fsdp)
    out["fsdp_optimizer"] = fsdp.optim_wrapper.state_dict()  # collective: whole tensors

    # Resume from the full checkpoint written at iteration 2, on a fresh sharded model.
    resumed = Runner.from_cfg(
        _runner_cfg(
            os.path.join(tmp, "fsdp_resumed"),
            model_wrapper_cfg={"type": "FSDPWrapper", "shard_modules": ["Linear"]},
            resume=os.path.join(fsdp_dir, "iter_2.pth"),
        )
    )
    resumed.train()
    out["resumed_iter"] = resumed.iter
    out["resumed"] = _full_weights(resumed)

    # Sharded checkpoint: save, disturb the weights and optimizer state, load, compare.
    sharded = os.path.join(tmp, "sharded")
    save_sharded_checkpoint(sharded, fsdp.model, fsdp.optim_wrapper)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(1.0)
    fsdp.optim_wrapper.optimizer.state.clear()
    load_sharded_checkpoint(sharded, fsdp.model, fsdp.optim_wrapper)
    out["sharded_reloaded"] = _full_weights(fsdp)
    out["sharded_optimizer"] = fsdp.optim_wrapper.state_dict()
    out["sharded_files"] = sorted(os.listdir(sharded))
    return out


def _worker(rank: int, init_file: str, tmp: str) -> None:
    torch.set_num_threads(1)
    tdist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD, timeout=datetime.timedelta(seconds=120)
    )
    try:
        out = {
            "no_sync": _scenario_no_sync(rank),
            "metrics": _scenario_metrics(rank),
            "val_loss": _scenario_val_loss(rank, tmp),
            "epochs": _scenario_runner_epochs(rank, tmp),
            "gan": _scenario_gan(rank, tmp),
            "fsdp": _scenario_fsdp(rank, tmp),
        }
    finally:
        tdist.destroy_process_group()
    with open(os.path.join(tmp, f"rank{rank}.pkl"), "wb") as f:
        pickle.dump(out, f)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp_in_processes")
    mp.start_processes(_worker, args=(str(tmp / "init"), str(tmp)), nprocs=WORLD, join=True, start_method="fork")
    return [pickle.loads((tmp / f"rank{r}.pkl").read_bytes()) for r in range(WORLD)], tmp


def _assert_same(a: dict, b: dict, atol: float = 0.0) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if atol:
            torch.testing.assert_close(a[key], b[key], atol=atol, rtol=1e-5, msg=key)
        else:
            assert torch.equal(a[key], b[key]), key


# ---------------------------------------------------------------------- gradient accumulation
def test_no_sync_skips_all_reduce_on_accumulation_steps(results):
    ranks, _ = results
    for r in ranks:
        calls = r["no_sync"]["reducer_calls"]
        assert r["no_sync"]["type"] == "KilnDistributedDataParallel"
        assert calls[0] == 0 and calls[2] == 0, calls  # window of 2: the first step stays local
        assert calls[1] >= 1 and calls[3] >= 1, calls
    # Before the window closes, each rank holds only its own gradients.
    g0, g1 = ranks[0]["no_sync"]["first_grads"], ranks[1]["no_sync"]["first_grads"]
    assert any(not torch.allclose(a, b) for a, b in zip(g0, g1))


def test_accumulated_ddp_matches_one_process_on_the_global_batch(results):
    ranks, _ = results
    model = _small_mlp()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), accumulative_counts=2)
    xs, ys = _accumulation_data()
    for step in range(4):
        model.train_step({"inputs": xs[step].reshape(-1, 4), "labels": ys[step].reshape(-1)}, wrapper)
    expected = [p.detach() for p in model.parameters()]
    for r in ranks:
        for got, want in zip(r["no_sync"]["params"], expected):
            torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


# ---------------------------------------------------------------------- metrics
@pytest.mark.parametrize("round_up", [True, False])
@pytest.mark.parametrize("shuffle", [False, True])
def test_metrics_gather_uneven_last_batches_without_padding(results, round_up, shuffle):
    ranks, _ = results
    r0, r1 = (r["metrics"][(round_up, shuffle)] for r in ranks)
    assert r0["batches"] == [2, 2]
    assert r1["batches"] == ([2, 2] if round_up else [2, 1])  # padded, or an uneven last batch
    expected_order = DefaultSampler(list(range(7)), shuffle=shuffle, seed=3).indices()
    for r in (r0, r1):
        assert r["order"] == {"order": expected_order, "count": 7}
        assert r["accuracy"] == {"accuracy/top1": pytest.approx(400 / 7)}


# ---------------------------------------------------------------------- the runner under DDP
@pytest.mark.parametrize(("batch_size", "shuffle"), VAL_LOSS_CASES)
def test_val_loss_of_two_ranks_equals_one_process(results, batch_size, shuffle, tmp_path):
    """The sample round_up repeats on rank 1 is left out of val/loss as it is of the metrics."""
    import torch.nn.functional as F

    from torchkiln.data import DigitsDataset

    ranks, _ = results
    r0, r1 = (r["val_loss"][batch_size] for r in ranks)
    assert r0["metrics"] == r1["metrics"]
    _assert_same(r0["weights"], r1["weights"])
    one = Runner.from_cfg(_val_cfg(str(tmp_path), batch_size, shuffle))
    unwrap_model(one.model).load_state_dict(r0["weights"])
    single = one.val()
    assert r0["metrics"]["accuracy/top1"] == pytest.approx(single["accuracy/top1"])
    assert r0["metrics"]["loss"] == pytest.approx(single["loss"], rel=1e-6)
    # Both are the mean cross entropy over the 359 samples.
    dataset = DigitsDataset(split="val")
    inputs = torch.stack([torch.as_tensor(dataset[i][0]) for i in range(len(dataset))])
    labels = torch.as_tensor([int(dataset[i][1]) for i in range(len(dataset))])
    with torch.no_grad():
        expected = F.cross_entropy(unwrap_model(one.model)(inputs), labels).item()
    assert len(dataset) == 359
    assert single["loss"] == pytest.approx(expected, rel=1e-6)


def test_runner_wraps_and_keeps_replicas_identical_with_diff_rank_seed(results):
    ranks, _ = results
    e0, e1 = ranks[0]["epochs"], ranks[1]["epochs"]
    assert e0["model_type"] == e1["model_type"] == "KilnDistributedDataParallel"
    assert e1["seed"] == e0["seed"] + 1  # diff_rank_seed
    assert e0["sampler_seed"] == e1["sampler_seed"]  # shards still come from one permutation
    # Different seeds initialised different weights; the first step made rank 0's the truth.
    assert any(not torch.equal(e0["init"][k], e1["init"][k]) for k in e0["init"])
    _assert_same(e0["final"], e1["final"])


def test_sampler_shards_are_disjoint_and_the_epoch_advances(results):
    ranks, _ = results
    e0, e1 = ranks[0]["epochs"], ranks[1]["epochs"]
    assert e0["sampler_epoch"] == e1["sampler_epoch"] == 1  # DistSamplerSeedHook set it before epoch 2
    shard0, shard1 = e0["epoch_indices"], e1["epoch_indices"]
    assert len(shard0) == len(shard1) == 719
    assert set(shard0) | set(shard1) == set(range(1438))
    assert not set(shard0) & set(shard1)


def test_only_rank_zero_writes_files(results):
    ranks, _ = results
    files0, files1 = ranks[0]["epochs"]["files"], ranks[1]["epochs"]["files"]
    assert "epoch_2.pth" in files0 and "last_checkpoint" in files0
    assert any(f.endswith(".log") for f in files0)
    assert not files1  # rank 1's work_dir: never created, or empty


def test_separate_ddp_trains_a_gan_identically_on_both_ranks(results):
    ranks, _ = results
    g0, g1 = ranks[0]["gan"], ranks[1]["gan"]
    assert g0["model_type"] == "KilnSeparateDistributedDataParallel"
    assert g0["child_types"]["generator"] == g0["child_types"]["discriminator"] == "KilnDistributedDataParallel"
    assert set(g0["final"]) == set(g0["init"])  # state dict keys of the plain model
    assert any(not torch.equal(g0["init"][k], g0["final"][k]) for k in g0["init"])
    _assert_same(g0["final"], g1["final"])


# ---------------------------------------------------------------------- FSDP2
def test_fsdp_shards_parameters_and_trains_like_ddp(results):
    ranks, _ = results
    f0, f1 = ranks[0]["fsdp"], ranks[1]["fsdp"]
    assert f0["fsdp_type"] == "KilnFullyShardedDataParallel"
    # Each rank holds half of every weight's rows (32x64 -> 16 rows each; the 10-row head -> 5).
    assert f0["local_shapes"]["backbone.0.weight"] == (16, 64)
    assert f1["local_shapes"]["backbone.0.weight"] == (16, 64)
    assert f0["local_shapes"]["head.weight"] == (5, 16)
    _assert_same(f0["fsdp"], f1["fsdp"])
    _assert_same(f0["fsdp"], f0["ddp"], atol=1e-6)


def test_fsdp_full_checkpoint_is_a_plain_checkpoint(results):
    ranks, tmp = results
    checkpoint = torch.load(tmp / "fsdp" / "iter_4.pth", map_location="cpu", weights_only=True)
    _assert_same(checkpoint["state_dict"], ranks[0]["fsdp"]["fsdp"])
    # It loads into a plain single-process model.
    model = DigitsMLP(hidden=[32, 16])
    model.load_state_dict(checkpoint["state_dict"], strict=True)
    # Optimizer state holds whole tensors, shaped like the parameters.
    state = checkpoint["optimizer"]["state"]
    shapes = [tuple(p.shape) for p in model.parameters()]
    assert [tuple(state[i]["momentum_buffer"].shape) for i in range(len(shapes))] == shapes
    assert not (tmp / "fsdp_rank1").exists()


def test_fsdp_resume_from_a_full_checkpoint_continues_exactly(results):
    ranks, _ = results
    for r in ranks:
        assert r["fsdp"]["resumed_iter"] == 4
        _assert_same(r["fsdp"]["resumed"], ranks[0]["fsdp"]["fsdp"])


def test_fsdp_sharded_checkpoint_round_trip(results):
    ranks, _ = results
    for r in ranks:
        f = r["fsdp"]
        assert ".metadata" in f["sharded_files"]
        assert sum(name.endswith(".distcp") for name in f["sharded_files"]) == WORLD
        _assert_same(f["sharded_reloaded"], f["fsdp"])
        before, after = f["fsdp_optimizer"]["state"], f["sharded_optimizer"]["state"]
        assert before.keys() == after.keys()
        for index in before:
            assert torch.equal(before[index]["momentum_buffer"], after[index]["momentum_buffer"])
