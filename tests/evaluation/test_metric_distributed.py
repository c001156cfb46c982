"""Metrics gathered across two gloo processes equal the single-process result exactly."""

from __future__ import annotations

import pickle

import pytest
import torch
import torch.distributed as tdist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader

from torchkiln.data import DefaultSampler
from torchkiln.evaluation import Accuracy, BaseMetric, Evaluator

WORLD = 2
SIZE = 11  # not divisible by the world size: rank 1 gets one padded sample
BATCH = 4  # per rank 6 samples: batches of 4 and 2


def _dataset() -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(SIZE, 5, generator=g)
    labels = torch.randint(0, 5, (SIZE,), generator=g)
    return [(scores[i], labels[i], i) for i in range(SIZE)]


class OrderMetric(BaseMetric):
    """Records sample ids, to check the gathered order."""

    default_prefix = "order"

    def process(self, data_batch, data_samples):
        self.results.extend(data_batch[2].tolist())

    def compute_metrics(self, results):
        return {"ids": results}


class FailingMetric(BaseMetric):
    def process(self, data_batch, data_samples):
        self.results.append(1)

    def compute_metrics(self, results):
        raise ValueError("boom")


def _evaluate(evaluator: Evaluator, sampler) -> dict:
    loader = DataLoader(_dataset(), batch_size=BATCH, sampler=sampler)
    for scores, labels, ids in loader:
        evaluator.process((scores, labels), data_batch=(scores, labels, ids))
    return evaluator.evaluate(SIZE)


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    tdist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    out = {}
    try:
        ev = Evaluator([Accuracy(topk=(1, 3)), OrderMetric()])
        sampler = DefaultSampler(_dataset(), shuffle=True, seed=4)
        out["local"] = len(list(sampler))
        out["metrics"] = _evaluate(ev, sampler)
        failing = FailingMetric()
        failing.process(None, None)
        try:
            failing.evaluate(SIZE)
        except Exception as exc:  # noqa: BLE001 - recorded for the parent
            out["error"] = f"{type(exc).__name__}: {exc}"
        tdist.barrier()
    finally:
        tdist.destroy_process_group()
    with open(f"{out_dir}/rank{rank}.pkl", "wb") as f:
        pickle.dump(out, f)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("metric2")
    mp.start_processes(_worker, args=(str(tmp / "init"), str(tmp)), nprocs=WORLD, join=True, start_method="fork")
    return [pickle.loads((tmp / f"rank{r}.pkl").read_bytes()) for r in range(WORLD)]


@pytest.mark.dist
def test_gathered_metrics_equal_single_process(results):
    single = _evaluate(Evaluator([Accuracy(topk=(1, 3)), OrderMetric()]), sampler=list(range(SIZE)))
    assert single["order/ids"] == list(range(SIZE))
    assert [r["local"] for r in results] == [6, 6]
    shuffled_order = DefaultSampler(_dataset(), shuffle=True, seed=4).indices()
    for r in results:
        m = r["metrics"]
        assert m["accuracy/top1"] == single["accuracy/top1"]
        assert m["accuracy/top3"] == single["accuracy/top3"]
        assert m["order/ids"] == shuffled_order  # dataset order of the epoch, padding dropped
        assert sorted(m["order/ids"]) == list(range(SIZE))


@pytest.mark.dist
def test_failure_on_rank_zero_reaches_every_rank(results):
    assert results[0]["error"] == "ValueError: boom"
    assert results[1]["error"] == "RuntimeError: FailingMetric.compute_metrics failed on rank 0: ValueError: boom"
