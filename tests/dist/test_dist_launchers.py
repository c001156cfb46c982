"""Launchers without starting processes: fake SLURM/OpenMPI/torchrun environments, dist_cfg,
``--nproc`` on the command line and how a failed worker is reported."""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as tdist

from torchkiln import cli, dist
from torchkiln.dist import torchrun
from torchkiln.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "configs" / "quickstart.yaml")
_LAUNCH_VARS = (
    "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID",
    "TORCHELASTIC_ERROR_FILE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
    "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NODELIST",
    "SLURM_NTASKS_PER_NODE", "SLURM_STEP_ID",
)


@pytest.fixture
def env(monkeypatch):
    """A clean launcher environment; init_dist's writes to os.environ are undone afterwards."""
    saved = dict(os.environ)
    for name in _LAUNCH_VARS:
        os.environ.pop(name, None)
    yield monkeypatch
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def captured(monkeypatch):
    """init_process_group replaced by a recorder: nothing connects anywhere."""
    seen: dict = {}
    monkeypatch.setattr(tdist, "init_process_group", lambda **kw: seen.update(kw))
    return seen


def _set(env, **values: str) -> None:
    for name, value in values.items():
        env.setenv(name, value)


# ---------------------------------------------------------------------- launchers
def test_slurm_variables_make_rank_world_and_master(env, captured, tmp_path):
    _set(env, SLURM_PROCID="5", SLURM_NTASKS="8", SLURM_LOCALID="1", SLURM_NODELIST="gpu[03-04]",
         SLURM_NTASKS_PER_NODE="4", PATH=str(tmp_path))  # no scontrol: the node list is parsed
    dist.init_dist("slurm", port=29611)
    assert (captured["rank"], captured["world_size"]) == (5, 8)
    assert captured["backend"] == ("nccl" if torch.cuda.is_available() else "gloo")
    assert captured["init_method"] == "env://"
    assert os.environ["MASTER_ADDR"] == "gpu03"
    assert os.environ["MASTER_PORT"] == "29611"
    assert (os.environ["RANK"], os.environ["WORLD_SIZE"], os.environ["LOCAL_RANK"]) == ("5", "8", "1")
    assert os.environ["LOCAL_WORLD_SIZE"] == "4"


def test_slurm_master_comes_from_scontrol_when_present(env, captured, tmp_path):
    scontrol = tmp_path / "scontrol"
    scontrol.write_text("#!/bin/sh\n[ \"$1 $2\" = 'show hostnames' ] && printf 'node-a\\nnode-b\\n'\n")
    scontrol.chmod(0o755)
    _set(env, SLURM_PROCID="0", SLURM_NTASKS="2", SLURM_NODELIST="weird-list", PATH=str(tmp_path))
    dist.init_dist("slurm")
    assert os.environ["MASTER_ADDR"] == "node-a"
    assert os.environ["MASTER_PORT"] == "29500"  # the default
    assert os.environ["LOCAL_RANK"] == "0"  # SLURM_LOCALID missing


def test_mpi_variables_make_rank_world_and_local_rank(env, captured):
    _set(env, OMPI_COMM_WORLD_RANK="3", OMPI_COMM_WORLD_SIZE="4", OMPI_COMM_WORLD_LOCAL_RANK="1",
         OMPI_COMM_WORLD_LOCAL_SIZE="2", MASTER_ADDR="10.0.0.7")
    dist.init_dist("mpi", backend="gloo", timeout=90, port=29700)
    assert (captured["rank"], captured["world_size"], captured["backend"]) == (3, 4, "gloo")
    assert captured["timeout"] == datetime.timedelta(seconds=90)
    assert os.environ["MASTER_ADDR"] == "10.0.0.7"  # a multi-node MPI job names its master
    assert os.environ["MASTER_PORT"] == "29700"
    assert (os.environ["LOCAL_RANK"], os.environ["LOCAL_WORLD_SIZE"]) == ("1", "2")


def test_pytorch_launcher_keeps_torchruns_master(env, captured):
    _set(env, RANK="1", WORLD_SIZE="4", LOCAL_RANK="1", MASTER_ADDR="host0", MASTER_PORT="31000")
    dist.init_dist("pytorch", port=29999)
    assert (captured["rank"], captured["world_size"]) == (1, 4)
    assert (os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"]) == ("host0", "31000")


@pytest.mark.parametrize(
    ("launcher", "missing"),
    [("slurm", "SLURM_PROCID, SLURM_NTASKS, SLURM_NODELIST"), ("mpi", "OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE")],
)
def test_launcher_without_its_environment_says_how_to_start(env, captured, launcher, missing):
    with pytest.raises(UsageError, match=missing) as info:
        dist.init_dist(launcher)
    assert info.value.hint
    assert not captured


def test_dist_cfg_options(env, captured):
    _set(env, RANK="0", WORLD_SIZE="2")
    dist.init_dist("pytorch", backend=None, timeout=datetime.timedelta(minutes=2), init_method=None, device_id=0)
    assert captured["timeout"] == datetime.timedelta(minutes=2)
    assert captured["init_method"] == "env://"  # None values are left out
    assert captured["device_id"] == torch.device("cuda", 0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_nccl_without_cuda_is_a_usage_error(env, captured):
    _set(env, RANK="0", WORLD_SIZE="2")
    with pytest.raises(UsageError, match="no usable CUDA") as info:
        dist.init_dist("pytorch", backend="nccl")
    assert "gloo" in info.value.hint
    assert not captured


def test_runner_passes_env_cfg_dist_cfg_to_init_dist(env, monkeypatch, tmp_path):
    from kiln_toys import ToyModel

    from torchkiln import Runner

    calls = []
    monkeypatch.setattr(dist, "init_dist", lambda launcher, **kw: calls.append((launcher, kw)))
    Runner(model=ToyModel(), work_dir=str(tmp_path), launcher="slurm",
           env_cfg={"dist_cfg": {"backend": "gloo", "timeout": 45, "port": 29123}})
    assert calls == [("slurm", {"backend": "gloo", "timeout": 45, "port": 29123})]


def test_runner_warns_when_launched_with_launcher_none(env, tmp_path):
    from kiln_toys import ToyModel

    from torchkiln import Runner

    _set(env, WORLD_SIZE="2", RANK="0")
    with pytest.warns(UserWarning, match="launcher is 'none'"):
        runner = Runner(model=ToyModel(), work_dir=str(tmp_path))
    assert (runner.rank, runner.world_size, runner.distributed) == (0, 1, False)


# ---------------------------------------------------------------------- --nproc
@pytest.mark.parametrize(
    ("values", "launched"),
    [
        ({}, False),
        ({"RANK": "0"}, True),
        ({"LOCAL_RANK": "1"}, True),
        ({"TORCHELASTIC_RUN_ID": "x"}, True),
        ({"OMPI_COMM_WORLD_RANK": "0"}, True),
        ({"SLURM_PROCID": "0"}, False),  # a SLURM batch script, not a task
        ({"SLURM_PROCID": "0", "SLURM_STEP_ID": "0"}, True),
    ],
)
def test_in_launched_process(env, values, launched):
    _set(env, **values)
    assert torchrun.in_launched_process() is launched


def test_torchrun_args_hide_the_worker_command_line_from_torchrun():
    args = torchrun.torchrun_args(3, ["train", "cfg.yaml", "--nproc", "3", "--cfg-options", "a=1"])
    assert args.nproc_per_node == "3"
    assert args.standalone and args.module
    assert args.training_script == "torchkiln"
    assert args.training_script_args == ["train", "cfg.yaml", "--nproc", "3", "--cfg-options", "a=1", "--launcher", "pytorch"]


def test_nproc_relaunches_the_same_command_line(env, monkeypatch):
    seen = []
    monkeypatch.setattr(torchrun, "launch_local", lambda n, argv: seen.append((n, list(argv))) or 7)
    argv = ["train", CONFIG, "--nproc", "2", "--work-dir", "/tmp/unused", "--cfg-options", "vars.max_epochs=1"]
    assert cli.main(argv) == 7
    assert seen == [(2, argv)]


def test_nproc_inside_a_launched_worker_trains_in_place(env, monkeypatch):
    from torchkiln.runner import entry

    trained = []
    monkeypatch.setattr(entry, "train", lambda cfg, args, run_config: trained.append(args.launcher) or 0)
    monkeypatch.setattr(torchrun, "launch_local", lambda *a: pytest.fail("relaunched inside a worker"))
    _set(env, RANK="1", LOCAL_RANK="1", WORLD_SIZE="2")
    assert cli.main(["train", CONFIG, "--nproc", "2", "--launcher", "pytorch"]) == 0
    assert trained == ["pytorch"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--nproc", "0"], "--nproc must be at least 1"), (["--nproc", "2", "--launcher", "slurm"], "--launcher slurm")],
)
def test_nproc_usage_errors(env, capsys, extra, message):
    assert cli.main(["train", CONFIG, *extra]) == 2
    assert message in capsys.readouterr().err


def test_train_help_lists_nproc_without_importing_torch():
    code = "import sys; from torchkiln.cli import main; main(['train', '--help']); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "--nproc N" in out
    assert out.strip().endswith("False")


# ---------------------------------------------------------------------- failure report
def _failure(tmp_path, local_rank: int, exitcode: int, message: str | None, timestamp: int, report: bool = True):
    """A worker's error file where torchrun puts it (``attempt_0/<local rank>/error.json``)."""
    import json

    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

    folder = tmp_path / "attempt_0" / str(local_rank)
    folder.mkdir(parents=True, exist_ok=True)
    error_file = str(folder / "error.json")
    if message is not None:
        with open(error_file, "w") as f:
            json.dump({"message": {"message": message, "extraInfo": {"py_callstack": "", "timestamp": str(timestamp)}}}, f)
    if report:
        return ProcessFailure(local_rank=local_rank, pid=100 + local_rank, exitcode=exitcode, error_file=error_file)
    return None


def _raise_with(failures):
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    def run(args):
        raise ChildFailedError("torchkiln", failures)

    return run


def test_failed_worker_report_names_the_cause_first(tmp_path, monkeypatch, capsys):
    from torch.distributed import run as torch_run

    failures = {
        0: _failure(tmp_path, 0, 1, "RuntimeError: Connection closed by peer [127.0.0.1]:1234", 100),
        1: _failure(tmp_path, 1, 3, "HookError: probe failure on rank 1", 100),
    }
    monkeypatch.setattr(torch_run, "run", _raise_with(failures))
    assert torchrun.launch_local(2, ["train", "cfg.yaml"]) == 3
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "error: rank 1 (local rank 1) failed with exit code 3: HookError: probe failure on rank 1"
    assert err[1].startswith("error: rank 0 (local rank 0) failed with exit code 1: RuntimeError: Connection closed")
    assert "rank 1's error is the cause" in err[2]


def test_a_worker_stopped_before_it_exited_is_reported_from_its_error_file(tmp_path, monkeypatch, capsys):
    from torch.distributed import run as torch_run

    # torchrun saw rank 0 die of the closed connection first; rank 1 had written its error.
    failures = {0: _failure(tmp_path, 0, 1, "RuntimeError: Connection closed by peer", 101)}
    _failure(tmp_path, 1, 0, "ValueError: the real cause", 100, report=False)
    monkeypatch.setattr(torch_run, "run", _raise_with(failures))
    assert torchrun.launch_local(2, ["train", "cfg.yaml"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "error: rank 1 (local rank 1) failed: ValueError: the real cause"
    assert err[1].startswith("error: rank 0 (local rank 0) failed with exit code 1")


def test_signals_map_to_exit_codes(tmp_path, monkeypatch, capsys):
    from torch.distributed import run as torch_run
    from torch.distributed.elastic.multiprocessing.api import SignalException

    killed = {0: _failure(tmp_path, 0, -signal.SIGKILL, None, 0)}
    monkeypatch.setattr(torch_run, "run", _raise_with(killed))
    assert torchrun.launch_local(1, []) == 128 + signal.SIGKILL
    assert "Signal 9" in capsys.readouterr().err
    monkeypatch.setattr(torch_run, "run", lambda args: (_ for _ in ()).throw(SignalException("stop", signal.SIGINT)))
    assert torchrun.launch_local(1, []) == 130
    with pytest.raises(UsageError):
        torchrun.launch_local(0, [])


def test_worker_error_goes_to_torchruns_error_file(env, tmp_path):
    import json

    error_file = tmp_path / "error.json"
    torchrun.record_worker_error(RuntimeError("ignored outside torchrun"))
    assert not error_file.exists()
    env.setenv("TORCHELASTIC_ERROR_FILE", str(error_file))
    try:
        raise ValueError("bad value on this rank")
    except ValueError as exc:
        torchrun.record_worker_error(exc)
    data = json.loads(error_file.read_text())
    assert data["message"]["message"] == "ValueError: bad value on this rank"
    assert "raise ValueError" in data["message"]["extraInfo"]["py_callstack"]
