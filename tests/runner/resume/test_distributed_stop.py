"""Under torch.distributed (two gloo processes) a stop request on one rank stops both after the
same iteration, rank 0 saves the checkpoint, and resuming from it is exact — with
``diff_rank_seed``, so each rank's own random state must come back."""

from __future__ import annotations

import pickle

import pytest
import torch
import torch.distributed as tdist
import torch.multiprocessing as mp
from resume_helpers import build_runner, prepare_fork
from resume_support import config

from torchkiln.errors import RunInterrupted
from torchkiln.hooks.hook import Hook

WORLD = 2


class StopOnRank(Hook):
    """``request_stop`` on one rank only, after iteration ``n`` (as if only it got SIGTERM)."""

    priority = "LOWEST"

    def __init__(self, rank: int, n: int) -> None:
        self.rank = rank
        self.n = n

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.rank == self.rank and runner.iter + 1 == self.n:
            runner.request_stop("SIGTERM on rank 1")


def _worker(rank: int, init_file: str, folder: str, phase: str) -> None:
    torch.set_num_threads(1)
    tdist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    out: dict = {}
    try:
        cfg = config(f"{folder}/{'straight' if phase == 'straight' else 'cut'}", by_epoch=False, max_iters=10,
                     interval=-1, progress=False)
        cfg["custom_hooks"] = []  # no EMA: keep the two-process runs small
        cfg["randomness"] = {"seed": 3, "diff_rank_seed": True}  # each rank its own dropout masks
        hooks = (StopOnRank(1, 3),) if phase == "cut" else ()
        runner = build_runner(cfg, resume=phase == "resume", hooks=hooks)
        try:
            runner.train()
            out["code"] = 0
        except RunInterrupted as exc:
            out["code"] = exc.exit_code
            out["message"] = str(exc)
        out["iter"] = runner.iter
        out["weights"] = {k: v.detach().clone() for k, v in runner.unwrapped_model.state_dict().items()}
    finally:
        tdist.destroy_process_group()
    with open(f"{folder}/{phase}_rank{rank}.pkl", "wb") as fh:
        pickle.dump(out, fh)


def _run(tmp_path, phase: str) -> list[dict]:
    prepare_fork()
    mp.start_processes(_worker, args=(str(tmp_path / f"init_{phase}"), str(tmp_path), phase), nprocs=WORLD,
                       join=True, start_method="fork")
    return [pickle.loads((tmp_path / f"{phase}_rank{r}.pkl").read_bytes()) for r in range(WORLD)]


@pytest.mark.dist
def test_ranks_agree_on_the_stop_and_resume_exactly(tmp_path):
    cut = _run(tmp_path, "cut")
    # Rank 1 asked after iteration 3; the flags are reduced one iteration late: both stop after 4.
    assert [r["iter"] for r in cut] == [4, 4]
    assert [r["code"] for r in cut] == [143, 143]
    assert "stopped by SIGTERM on rank 1 after iteration 4" in cut[1]["message"]
    assert "stopped by a stop request on another rank after iteration 4" in cut[0]["message"]
    ckpt = torch.load(tmp_path / "cut" / "iter_4.pth", weights_only=True)
    assert ckpt["meta"]["world_size"] == 2 and ckpt["meta"]["iter"] == 4
    assert len(ckpt["rng_per_rank"]) == 2
    assert not torch.equal(ckpt["rng_per_rank"][0]["rng"]["torch"], ckpt["rng_per_rank"][1]["rng"]["torch"])
    assert (tmp_path / "cut" / "last_checkpoint").read_text() == str(tmp_path / "cut" / "iter_4.pth")
    resumed = _run(tmp_path, "resume")
    straight = _run(tmp_path, "straight")
    for rank in range(WORLD):
        assert resumed[rank]["iter"] == straight[rank]["iter"] == 10
        for key, value in straight[rank]["weights"].items():
            assert torch.equal(value, resumed[rank]["weights"][key]), (rank, key)
