"""torchkiln.dist without a process group, and init_dist's launcher handling."""

from __future__ import annotations

import datetime
import os

import pytest
import torch
import torch.distributed as tdist

from torchkiln import dist
from torchkiln.errors import UsageError


@pytest.fixture
def clean_env():
    """init_dist writes RANK, MASTER_ADDR, ... into os.environ: restore it all afterwards."""
    saved = dict(os.environ)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "LOCAL_WORLD_SIZE"):
        os.environ.pop(name, None)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_queries_without_process_group():
    assert not dist.is_distributed()
    assert dist.get_rank() == 0
    assert dist.get_world_size() == 1
    assert dist.get_local_rank() == 0
    assert dist.get_dist_info() == (0, 1)
    assert dist.is_main_process()


def test_collectives_are_identity_in_one_process():
    t = torch.tensor([1.0, 2.0])
    assert dist.all_reduce(t, op="mean") is t
    assert t.tolist() == [1.0, 2.0]
    assert dist.broadcast(t) is t
    assert dist.all_gather(t) == [t]
    assert dist.all_gather_object({"a": 1}) == [{"a": 1}]
    assert dist.broadcast_object([1, 2]) == [1, 2]
    dist.barrier()
    assert dist.collect_results([1, 2, 3, 4], 3) == [1, 2, 3]
    assert dist.sync_random_seed(123) == 123
    assert 0 <= dist.sync_random_seed() < 2**31


def test_all_reduce_rejects_bad_op_and_integer_mean():
    with pytest.raises(ValueError, match="unknown reduce op"):
        dist.all_reduce(torch.ones(1), op="avg")
    with pytest.raises(TypeError, match="floating-point"):
        dist.all_reduce(torch.ones(1, dtype=torch.long), op="mean")


def test_master_only_runs_on_rank_zero(monkeypatch):
    calls = []

    @dist.master_only
    def write(x):
        calls.append(x)
        return x * 2

    assert write(3) == 6
    assert write.__name__ == "write"
    monkeypatch.setattr("torchkiln.dist.utils.get_rank", lambda: 1)
    assert write(4) is None
    assert calls == [3]


@pytest.mark.parametrize(
    ("nodelist", "host"),
    [
        ("node7", "node7"),
        ("node7,node9", "node7"),
        ("gpu[03-05,9],cpu1", "gpu03"),
        ("gpu-a100-[12,15-17]", "gpu-a100-12"),
        ("rack[2-3]-n[01-04]", "rack2-n01"),
        ("  a[5],b[1-2]", "a5"),
    ],
)
def test_first_slurm_host(nodelist, host):
    assert dist.first_slurm_host(nodelist) == host


def test_init_dist_unknown_launcher_suggests():
    with pytest.raises(UsageError) as info:
        dist.init_dist("slrum")
    assert "did you mean 'slurm'" in str(info.value)


def test_init_dist_none_does_nothing():
    assert dist.init_dist("none") == (0, 1)
    assert dist.init_dist(None) == (0, 1)
    assert not dist.is_distributed()


def test_init_dist_pytorch_requires_torchrun_env(clean_env):
    with pytest.raises(UsageError, match="RANK, WORLD_SIZE"):
        dist.init_dist("pytorch")


_ENVS = {
    "pytorch": {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1"},
    "slurm": {"SLURM_PROCID": "0", "SLURM_NTASKS": "1", "SLURM_LOCALID": "0", "SLURM_NODELIST": "localhost"},
    "mpi": {"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "1", "OMPI_COMM_WORLD_LOCAL_RANK": "0"},
}


@pytest.mark.parametrize("launcher", sorted(_ENVS))
def test_init_dist_world_of_one(monkeypatch, clean_env, launcher):
    for name, value in _ENVS[launcher].items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PATH", "/nonexistent")  # no scontrol: the node list is parsed
    port = dist.find_free_port()
    try:
        info = dist.init_dist(launcher, backend="gloo", timeout=30, port=port)
        assert info == (0, 1)
        assert dist.is_distributed()
        assert tdist.get_backend() == "gloo"
        assert os.environ["RANK"] == "0" and os.environ["WORLD_SIZE"] == "1"
        assert os.environ["MASTER_PORT"] == str(port)
        if launcher == "slurm":
            assert os.environ["MASTER_ADDR"] == "localhost"
        # Once initialised, a second call is a no-op.
        assert dist.init_dist(launcher) == (0, 1)
        t = torch.tensor([3.0])
        assert dist.all_reduce(t, op="mean").item() == 3.0
        assert dist.collect_results(["a", "b", "c"], 2) == ["a", "b"]
    finally:
        if tdist.is_initialized():
            tdist.destroy_process_group()


def test_timeout_conversion_is_a_timedelta(monkeypatch, clean_env):
    seen = {}
    monkeypatch.setattr(tdist, "init_process_group", lambda **kw: seen.update(kw))
    for name, value in _ENVS["mpi"].items():
        monkeypatch.setenv(name, value)
    dist.init_dist("mpi", timeout=12)
    assert seen["timeout"] == datetime.timedelta(seconds=12)
    assert seen["backend"] == ("nccl" if torch.cuda.is_available() else "gloo")
    assert seen["init_method"] == "env://"
    assert os.environ["MASTER_PORT"] == "29500"
    assert os.environ["MASTER_ADDR"] == "127.0.0.1"
