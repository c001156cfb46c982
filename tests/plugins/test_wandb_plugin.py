"""torchkiln-wandb: what a run logs, read back from the W&B offline run files."""

from __future__ import annotations

import importlib.metadata as md
import os
import time

import pytest
import torch

try:
    md.distribution("torchkiln-wandb")
    import wandb  # noqa: F401
except (md.PackageNotFoundError, ImportError):  # pragma: no cover - depends on the environment
    pytest.skip("torchkiln-wandb and wandb are not installed", allow_module_level=True)

from torchkiln.errors import ConfigError
from torchkiln_wandb.offline import offline_run_files, read_config, read_history, read_records


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DISABLE_CODE", "true")


def _fragment(wandb_dir, **options) -> dict:
    backend = {
        "type": "WandbVisBackend",
        "init_kwargs": {"project": "kiln", "dir": str(wandb_dir)},
        **options,
    }
    return {
        "visualizer": {"type": "Visualizer", "vis_backends": [{"type": "LocalVisBackend"}, backend]}
    }


def _next_second() -> None:
    """W&B names offline run folders by the second: two parts of one run started within the
    same second would share a folder (a resume a person starts is never that quick)."""
    time.sleep(1.01 - time.time() % 1)


def _wait_written(wandb_dir, run_id, timeout: float = 30.0) -> None:
    """Wait until every run file of ``run_id`` ends with its exit record: wandb's writer
    process may still be writing when ``finish()`` has returned in this process."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = offline_run_files(wandb_dir, run_id)
        kinds = [[r.WhichOneof("record_type") for r in read_records(f)] for f in files]
        if files and all("exit" in k for k in kinds):
            return
        time.sleep(0.1)


def _rows(wandb_dir, run_id, key="loss") -> list[tuple[int, float]]:
    _wait_written(wandb_dir, run_id)
    rows = []
    for path in offline_run_files(wandb_dir, run_id):
        rows += [(r["step"], r[key]) for r in read_history(path) if key in r]
    return rows


def test_run_logs_config_metrics_and_checkpoints(kiln_run, tmp_path):
    result = kiln_run(
        _fragment(tmp_path / "wb", log_checkpoints="all", define_metric_cfg={"loss": "min"})
    )
    assert result.exit_code == 0
    saved = torch.load(result.work_dir / "iter_8.pth", weights_only=True)
    run_id = saved["meta"]["tracking"]["wandb"]["run_id"]
    _wait_written(tmp_path / "wb", run_id)
    (path,) = offline_run_files(tmp_path / "wb", run_id)
    config = read_config(path)
    assert config["optim_wrapper.optimizer.lr"] == "0.1"
    assert config["model.type"] == "DigitsMLP"
    local = [(r["step"], r["loss"]) for r in result.scalars if r.get("mode") == "train"]
    logged = _rows(tmp_path / "wb", run_id)
    assert [s for s, _ in logged] == [2, 4, 6, 8]
    assert [v for _, v in logged] == pytest.approx([v for _, v in local])
    assert _rows(tmp_path / "wb", run_id, "val/accuracy/top1")
    run_dir = os.path.dirname(path)
    assert os.path.isfile(os.path.join(run_dir, "files", "config.yaml"))
    # two checkpoint versions staged in the W&B artifact cache/manifests of the run
    assert saved["meta"]["tracking"]["wandb"]["dirs"] == [str(tmp_path / "wb")]


def test_stop_and_resume_continue_one_run(kiln_run, tmp_path):
    fragment = _fragment(tmp_path / "wb")
    first = kiln_run(fragment, stop_after=5)
    assert first.exit_code == 143
    run_id = torch.load(first.work_dir / "iter_5.pth", weights_only=True)["meta"]["tracking"][
        "wandb"
    ]["run_id"]
    _next_second()
    _wait_written(tmp_path / "wb", run_id)
    second = kiln_run(fragment, resume=True)
    assert second.exit_code == 0
    last = torch.load(second.work_dir / "iter_8.pth", weights_only=True)["meta"]["tracking"][
        "wandb"
    ]
    assert last["run_id"] == run_id
    assert [s for s, _ in _rows(tmp_path / "wb", run_id)] == [2, 4, 6, 8]


def test_replayed_iterations_are_not_logged_twice(kiln_run, tmp_path):
    fragment = _fragment(tmp_path / "wb")
    first = kiln_run(fragment)
    run_id = torch.load(first.work_dir / "iter_8.pth", weights_only=True)["meta"]["tracking"][
        "wandb"
    ]["run_id"]
    before = _rows(tmp_path / "wb", run_id)
    _next_second()
    _wait_written(tmp_path / "wb", run_id)  # the resumed part reads these files
    again = kiln_run({**fragment, "resume": str(first.work_dir / "iter_4.pth")})
    assert again.exit_code == 0 and again.train_steps() == [6, 8]
    assert _rows(tmp_path / "wb", run_id) == before


def test_settings_errors_name_the_backend(kiln_run, tmp_path):
    with pytest.raises(ConfigError, match="init_kwargs.id"):
        kiln_run(_fragment(tmp_path / "wb", init_kwargs={"id": "x"}))
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="WandbVisBackend cannot write its run files") as info:
        kiln_run(_fragment(blocker / "sub"))
    assert "init_kwargs.dir" in str(info.value)
