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
def _failure(tmp_path, local_rank: int, exitcode: int, message: str | None, timestamp: float, report: bool = True,
             record: dict | None = None):
    """A worker's error file where torchrun puts it (``attempt_0/<local rank>/error.json``).

    ``record``: torchkiln's own entry (exact time, exit code, lost peer), as its workers write it.
    """
    import json

    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

    folder = tmp_path / "attempt_0" / str(local_rank)
    folder.mkdir(parents=True, exist_ok=True)
    error_file = str(folder / "error.json")
    if message is not None:
        data: dict = {"message": {"message": message, "extraInfo": {"py_callstack": "", "timestamp": str(int(timestamp))}}}
        if record is not None:
            data["torchkiln"] = record
        with open(error_file, "w") as f:
            json.dump(data, f)
    if report:
        return ProcessFailure(local_rank=local_rank, pid=100 + local_rank, exitcode=exitcode, error_file=error_file)
    return None


def _raise_with(failures):
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    def run(args):
        raise ChildFailedError("torchkiln", failures)

    return run


GLOO_RESET = (
    "RuntimeError: [/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:545] Read error [127.0.0.1]:28585: "
    "Connection reset by peer. This is typically caused by a remote worker hanging"
)


def test_failed_worker_report_names_the_cause_first(tmp_path, monkeypatch, capsys):
    from torch.distributed import run as torch_run

    failures = {
        0: _failure(tmp_path, 0, 1, "RuntimeError: gloo: Connection closed by peer [127.0.0.1]:1234", 100),
        1: _failure(tmp_path, 1, 5, "ValueError: probe failure on rank 1\n  at: model.py:3", 100),
    }
    monkeypatch.setattr(torch_run, "run", _raise_with(failures))
    assert torchrun.launch_local(2, ["train", "cfg.yaml"]) == 5
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "error: rank 1 (local rank 1) failed with exit code 5: ValueError: probe failure on rank 1"
    assert err[1].startswith("  then rank 0 (local rank 0) stopped: its collective failed because rank 1 was gone")
    assert len(err) == 2


def test_a_killed_rank_is_the_cause_although_the_survivor_wrote_its_error_earlier(tmp_path, monkeypatch, capsys):
    """Rank 1 died at 100.9; rank 0's error file says 100 (whole seconds); torchrun noticed at 101."""
    from torch.distributed import run as torch_run

    failures = {
        0: _failure(tmp_path, 0, 1, GLOO_RESET, 100),
        1: _failure(tmp_path, 1, -signal.SIGKILL, None, 101),
    }
    failures[1].timestamp = 101
    monkeypatch.setattr(torch_run, "run", _raise_with(failures))
    assert torchrun.launch_local(2, ["train", "cfg.yaml"]) == 128 + signal.SIGKILL
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: rank 1 (local rank 1) was killed by SIGKILL; it raised no error")
    assert err[1].startswith("  then rank 0 (local rank 0) stopped")
    assert "internal error" not in "\n".join(err)


def test_exact_times_order_two_ranks_that_both_raised(tmp_path, monkeypatch, capsys):
    from torch.distributed import run as torch_run

    def record(time: float, code: int) -> dict:
        return {"time": time, "exit_code": code, "rank": None, "peer_loss": False}

    failures = {
        0: _failure(tmp_path, 0, 2, "ConfigError: later", 100.7, record=record(100.7, 2)),
        1: _failure(tmp_path, 1, 5, "ValueError: first", 100.2, record=record(100.2, 5)),
    }
    monkeypatch.setattr(torch_run, "run", _raise_with(failures))
    assert torchrun.launch_local(2, []) == 5
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "error: rank 1 (local rank 1) failed with exit code 5: ValueError: first"
    assert err[1] == "  also: rank 0 (local rank 0) failed with exit code 2: ConfigError: later"
    assert err[2].startswith("  rank 1 failed first (the cause, listed first)")


def test_a_worker_stopped_before_it_exited_is_reported_from_its_error_file(tmp_path, monkeypatch, capsys):
    from torch.distributed import run as torch_run

    # torchrun saw rank 0 die of the closed connection first; rank 1 had written its error.
    failures = {0: _failure(tmp_path, 0, 1, GLOO_RESET, 101)}
    record = {"time": 100.5, "exit_code": 5, "rank": 1, "peer_loss": False}
    _failure(tmp_path, 1, 0, "ValueError: the real cause", 100, report=False, record=record)
    monkeypatch.setattr(torch_run, "run", _raise_with(failures))
    assert torchrun.launch_local(2, ["train", "cfg.yaml"]) == 5  # the exit code it recorded
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "error: rank 1 (local rank 1) failed: ValueError: the real cause"
    assert err[1].startswith("  then rank 0 (local rank 0) stopped")


def test_only_lost_peers_says_no_rank_reported_its_own_error(tmp_path, monkeypatch, capsys):
    from torch.distributed import run as torch_run

    failures = {0: _failure(tmp_path, 0, 1, GLOO_RESET, 100)}
    monkeypatch.setattr(torch_run, "run", _raise_with(failures))
    assert torchrun.launch_local(2, []) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: rank 0 (local rank 0) failed with exit code 1: RuntimeError")
    assert "no rank reported an error of its own" in err[1]


def test_signals_map_to_exit_codes(tmp_path, monkeypatch, capsys):
    from torch.distributed import run as torch_run
    from torch.distributed.elastic.multiprocessing.api import SignalException

    killed = {0: _failure(tmp_path, 0, -signal.SIGSEGV, None, 0)}
    monkeypatch.setattr(torch_run, "run", _raise_with(killed))
    assert torchrun.launch_local(1, []) == 128 + signal.SIGSEGV
    assert capsys.readouterr().err.startswith("error: rank 0 (local rank 0) was killed by SIGSEGV; it crashed")
    monkeypatch.setattr(torch_run, "run", lambda args: (_ for _ in ()).throw(SignalException("stop", signal.SIGINT)))
    assert torchrun.launch_local(1, []) == 130
    with pytest.raises(UsageError):
        torchrun.launch_local(0, [])


def test_peer_loss_is_a_collective_error_about_a_gone_peer():
    from torchkiln.dist.failures import is_peer_loss

    assert is_peer_loss(RuntimeError(GLOO_RESET))
    assert is_peer_loss(tdist.DistBackendError("NCCL error: remote process exited or there was a network error"))
    try:  # wrapped, as a hook's error wraps what it called
        try:
            raise RuntimeError(GLOO_RESET)
        except RuntimeError as inner:
            raise ValueError("hook failed") from inner
    except ValueError as outer:
        assert is_peer_loss(outer)
    # A hook's own network trouble is not a collective's.
    assert not is_peer_loss(ConnectionResetError("[Errno 104] Connection reset by peer"))
    assert not is_peer_loss(RuntimeError("gloo: invalid tensor size"))


def test_a_survivor_prints_a_consequence_not_an_internal_error(env, tmp_path, monkeypatch, capsys):
    import json

    error_file = tmp_path / "error.json"
    env.setenv("TORCHELASTIC_ERROR_FILE", str(error_file))
    env.setenv("RANK", "0")

    def fail(args):
        raise RuntimeError(GLOO_RESET)

    monkeypatch.setattr(cli, "build_parser", lambda: _parser_running(fail))
    assert cli.main(["x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: rank 0 stopped: a collective operation failed because another rank left the job")
    assert "internal error" not in err and "Traceback" not in err
    record = json.loads(error_file.read_text())["torchkiln"]
    assert record["peer_loss"] is True and record["exit_code"] == 1 and record["rank"] == 0


def _parser_running(handler):
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("word")
    parser.set_defaults(handler=handler)
    return parser


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
    assert int(data["message"]["extraInfo"]["timestamp"]) == int(data["torchkiln"]["time"])
    assert data["torchkiln"]["peer_loss"] is False
    # torchrun reads the file back as before.
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

    failure = ProcessFailure(local_rank=0, pid=1, exitcode=1, error_file=str(error_file))
    assert failure.message["message"] == "ValueError: bad value on this rank"
