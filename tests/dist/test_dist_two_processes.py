"""Collectives and sampler sharding across two real gloo processes (forked, CPU)."""

from __future__ import annotations

import pickle

import pytest
import torch
import torch.distributed as tdist
import torch.multiprocessing as mp

from torchkiln import dist
from torchkiln.data import DefaultSampler, InfiniteSampler

WORLD = 2


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    tdist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        out = {"info": dist.get_dist_info(), "distributed": dist.is_distributed(), "main": dist.is_main_process()}
        out["gathered"] = dist.all_gather_object({"rank": rank, "items": list(range(rank + 1))})
        out["broadcast"] = dist.broadcast_object({"from": rank}, src=1)
        t = torch.tensor([float(rank), 10.0 * rank])
        out["mean"] = dist.all_reduce(t, op="mean").tolist()
        out["max"] = dist.all_reduce(torch.tensor([rank]), op="max").item()
        out["all_gather"] = [x.tolist() for x in dist.all_gather(torch.tensor([rank, rank * 2]))]
        b = torch.tensor([rank + 5])
        out["tensor_broadcast"] = dist.broadcast(b, src=0).item()
        out["seed"] = dist.sync_random_seed()
        out["seed_given"] = dist.sync_random_seed(100 + rank)  # rank 0's value wins

        # collect_results: sizes not divisible by the world size, padded and unpadded.
        for name, round_up, shuffle in (("pad", True, False), ("nopad", False, False), ("shuffled", True, True)):
            sampler = DefaultSampler(range(7), shuffle=shuffle, seed=5, round_up=round_up)
            local = list(sampler)
            out[f"{name}_local"] = local
            out[f"{name}_collected"] = dist.collect_results([f"s{i}" for i in local], 7)
        inf = InfiniteSampler(range(5), seed=2)
        it = iter(inf)
        out["infinite"] = [next(it) for _ in range(12)]
        out["default_seed"] = DefaultSampler(range(4)).seed  # drawn by rank 0, shared
        out["gather"] = [x.tolist() for x in dist.gather(torch.tensor([rank + 1]), dst=1)]
        out["gather_object"] = dist.gather_object({"r": rank}, dst=0)
        box = [f"from{rank}", rank]
        dist.broadcast_object_list(box, src=1)
        out["object_list"] = box
        reduced = {"b": torch.tensor([float(rank)]), "a": torch.tensor([2.0 * rank])}
        dist.all_reduce_dict(reduced, op="mean")
        out["reduced_dict"] = {k: v.tolist() for k, v in reduced.items()}
        layer = torch.nn.Linear(1, 1)
        torch.nn.init.constant_(layer.weight, float(rank))
        dist.all_reduce_params(layer.parameters(), op="sum")
        out["reduced_weight"] = layer.weight.item()
        out["collected_cpu"] = dist.collect_results_cpu([f"s{rank}"], 2)
        out["backend"] = dist.get_backend()
        out["comm_device"] = str(dist.get_comm_device())
        dist.init_local_group(node_rank=0, num_gpus_per_node=2)
        out["local_size"] = dist.get_local_size()
        called = []
        dist.master_only(lambda: called.append(rank))()
        out["master_called"] = called
        dist.barrier()
    finally:
        tdist.destroy_process_group()
    with open(f"{out_dir}/rank{rank}.pkl", "wb") as f:
        pickle.dump(out, f)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist2")
    mp.start_processes(_worker, args=(str(tmp / "init"), str(tmp)), nprocs=WORLD, join=True, start_method="fork")
    return [pickle.loads((tmp / f"rank{r}.pkl").read_bytes()) for r in range(WORLD)]


@pytest.mark.dist
def test_rank_queries(results):
    assert [r["info"] for r in results] == [(0, 2), (1, 2)]
    assert all(r["distributed"] for r in results)
    assert [r["main"] for r in results] == [True, False]
    assert [r["master_called"] for r in results] == [[0], []]


@pytest.mark.dist
def test_object_and_tensor_collectives(results):
    expected = [{"rank": 0, "items": [0]}, {"rank": 1, "items": [0, 1]}]
    for r in results:
        assert r["gathered"] == expected
        assert r["broadcast"] == {"from": 1}
        assert r["mean"] == [0.5, 5.0]
        assert r["max"] == 1
        assert r["all_gather"] == [[0, 0], [1, 2]]
        assert r["tensor_broadcast"] == 5
        assert r["seed_given"] == 100
    assert results[0]["seed"] == results[1]["seed"]
    assert results[0]["default_seed"] == results[1]["default_seed"]


@pytest.mark.dist
def test_collect_results_restores_order_and_drops_padding(results):
    r0, r1 = results
    assert r0["pad_local"] == [0, 2, 4, 6]
    assert r1["pad_local"] == [1, 3, 5, 0]  # padded with the first index
    assert r0["nopad_local"] == [0, 2, 4, 6]
    assert r1["nopad_local"] == [1, 3, 5]
    for r in results:
        assert r["pad_collected"] == [f"s{i}" for i in range(7)]
        assert r["nopad_collected"] == [f"s{i}" for i in range(7)]
        # Shuffled: the gathered order is the epoch's permutation, as one process sees it.
        single = DefaultSampler(range(7), shuffle=True, seed=5)
        assert r["shuffled_collected"] == [f"s{i}" for i in single.indices()]
    assert sorted(set(r0["shuffled_local"]) | set(r1["shuffled_local"])) == list(range(7))


@pytest.mark.dist
def test_infinite_sampler_ranks_interleave_into_the_single_stream(results):
    single = iter(InfiniteSampler(range(5), seed=2))
    stream = [next(single) for _ in range(24)]
    assert results[0]["infinite"] == stream[0::2]
    assert results[1]["infinite"] == stream[1::2]


@pytest.mark.dist
def test_mmengine_named_collectives(results):
    assert [r["gather"] for r in results] == [[], [[1], [2]]]
    assert [r["gather_object"] for r in results] == [[{"r": 0}, {"r": 1}], None]
    for r in results:
        assert r["object_list"] == ["from1", 1]
        assert r["reduced_dict"] == {"a": [1.0], "b": [0.5]}
        assert r["reduced_weight"] == 1.0
        assert (r["backend"], r["comm_device"], r["local_size"]) == ("gloo", "cpu", 2)
    assert [r["collected_cpu"] for r in results] == [["s0", "s1"], None]
