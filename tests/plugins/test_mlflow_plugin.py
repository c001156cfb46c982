"""torchkiln-mlflow: what a run logs, read back through MlflowClient from a local file store."""

from __future__ import annotations

import importlib.metadata as md
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

try:
    md.distribution("torchkiln-mlflow")
    from mlflow.tracking import MlflowClient
except (md.PackageNotFoundError, ImportError):  # pragma: no cover - depends on the environment
    pytest.skip("torchkiln-mlflow and mlflow are not installed", allow_module_level=True)

from torchkiln.cli import main
from torchkiln.visualization.visualizer import build_visualizer

os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")


def _fragment(uri: str, **options) -> dict:
    backend = {"type": "MLflowVisBackend", "tracking_uri": uri, **options}
    return {
        "visualizer": {"type": "Visualizer", "vis_backends": [{"type": "LocalVisBackend"}, backend]}
    }


def _runs(uri: str, exp_name: str = "Default") -> list:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(exp_name)
    return client.search_runs([experiment.experiment_id]) if experiment else []


def _history(uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in MlflowClient(uri).get_metric_history(run_id, key)]


def _artifacts(uri: str, run_id: str, path: str | None = None) -> list[str]:
    client = MlflowClient(uri)
    out = []
    for info in client.list_artifacts(run_id, path):
        out.extend(_artifacts(uri, run_id, info.path) if info.is_dir else [info.path])
    return sorted(out)


def test_run_logs_params_metrics_tags_and_artifacts(kiln_run, tmp_path):
    uri = f"file:{tmp_path / 'mlruns'}"
    result = kiln_run(
        _fragment(
            uri,
            exp_name="kiln",
            tags={"team": "vision"},
            log_checkpoints="best",
            params={"note": "first"},
        )
    )
    assert result.exit_code == 0
    assert "before_save_checkpoint" in result.calls["mlflow_tracking"]
    (run,) = _runs(uri, "kiln")
    params = run.data.params
    assert params["optim_wrapper.optimizer.lr"] == "0.1"
    assert params["model.hidden"] == "[16]"
    assert params["train_cfg.max_iters"] == "8"
    assert params["note"] == "first"
    assert run.data.tags["team"] == "vision"
    assert run.info.status == "FINISHED"
    loss = _history(uri, run.info.run_id, "loss")
    local = [(r["step"], r["loss"]) for r in result.scalars if r.get("mode") == "train"]
    assert [s for s, _ in loss] == [2, 4, 6, 8] == [s for s, _ in local]
    assert [v for _, v in loss] == pytest.approx([v for _, v in local])
    assert _history(uri, run.info.run_id, "val/accuracy/top1")
    artifacts = _artifacts(uri, run.info.run_id)
    assert "config.yaml" in artifacts
    assert any(a.startswith("logs/") and a.endswith(".log") for a in artifacts)
    assert not any(
        a.startswith("checkpoints/") for a in artifacts
    )  # no best checkpoint was configured
    text = MlflowClient(uri).download_artifacts(
        run.info.run_id, "config.yaml", str(tmp_path / "dl")
    )
    with open(text, encoding="utf-8") as fh:
        assert "DigitsMLP" in fh.read()


def test_stop_and_resume_continue_one_run(kiln_run, tmp_path):
    uri = f"file:{tmp_path / 'mlruns'}"
    fragment = _fragment(uri, log_checkpoints="last")
    first = kiln_run(fragment, stop_after=5)
    assert first.exit_code == 143
    (run,) = _runs(uri)
    assert run.info.status == "KILLED"
    saved = torch.load(first.work_dir / "iter_5.pth", weights_only=True)
    assert saved["meta"]["tracking"]["mlflow"]["run_id"] == run.info.run_id

    second = kiln_run(fragment, resume=True)
    assert second.exit_code == 0
    (run,) = _runs(uri)  # still exactly one run
    assert run.info.status == "FINISHED"
    assert [s for s, _ in _history(uri, run.info.run_id, "loss")] == [2, 4, 6, 8]
    assert second.train_steps() == [6, 8]
    artifacts = _artifacts(uri, run.info.run_id)
    assert "checkpoints/last.pth" in artifacts and "checkpoints/iter_8.pth" not in artifacts
    assert any(a.startswith("logs/") and a.endswith(".log") for a in artifacts)


def test_replayed_iterations_are_not_logged_twice(kiln_run, tmp_path):
    uri = f"file:{tmp_path / 'mlruns'}"
    fragment = _fragment(uri)
    first = kiln_run(fragment)
    (run,) = _runs(uri)
    before = _history(uri, run.info.run_id, "loss")
    # As after a crash past the checkpoint at 4: iterations 5-8 run again.
    again = kiln_run({**fragment, "resume": str(first.work_dir / "iter_4.pth")})
    assert again.exit_code == 0 and again.train_steps() == [6, 8]
    (run,) = _runs(uri)
    assert _history(uri, run.info.run_id, "loss") == before


def test_weights_only_load_starts_a_new_run(kiln_run, tmp_path):
    uri = f"file:{tmp_path / 'mlruns'}"
    first = kiln_run(_fragment(uri))
    kiln_run(
        {**_fragment(uri), "load_from": str(first.work_dir / "iter_8.pth")},
        work_dir=tmp_path / "tune",
    )
    assert len(_runs(uri)) == 2


def test_failure_mid_run_is_logged_once_and_training_goes_on(kiln_run, tmp_path, caplog):
    class BrokenStore:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise OSError("disk full")

            return fail

    class BreakTheStore:
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if runner.iter + 1 == 3:
                backend = runner.visualizer.get_backend("MLflowVisBackend")
                backend.flush()  # what was logged so far reaches the store
                backend._client = BrokenStore()

    uri = f"file:{tmp_path / 'mlruns'}"
    result = kiln_run(_fragment(uri), hooks=(BreakTheStore(),))
    assert result.exit_code == 0
    assert result.checkpoints == ["iter_4.pth", "iter_8.pth"]
    backend = result.runner.visualizer.get_backend("MLflowVisBackend")
    assert backend.failures >= 3
    (run,) = _runs(uri)
    assert [s for s, _ in _history(uri, run.info.run_id, "loss")] == [2]


def test_unusable_store_is_a_config_error_at_start(tmp_path, capsys):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        textwrap.dedent(f"""
        model: {{type: DigitsMLP, hidden: [8]}}
        work_dir: {tmp_path / "work"}
        visualizer:
          type: Visualizer
          vis_backends: [{{type: MLflowVisBackend, tracking_uri: "file:{blocker}/mlruns"}}]
    """)
    )
    assert main(["val", str(cfg), "--checkpoint", str(tmp_path / "none.pth")]) == 2
    err = capsys.readouterr().err
    assert "MLflowVisBackend" in err and "tracking_uri" in err and "Traceback" not in err


def test_other_ranks_open_no_store(tmp_path):
    uri = f"file:{tmp_path / 'mlruns'}"
    cfg = {
        "type": "Visualizer",
        "vis_backends": [{"type": "MLflowVisBackend", "tracking_uri": uri}],
    }
    visualizer = build_visualizer(cfg, log_dir=str(tmp_path / "log"), rank=1)
    assert visualizer.vis_backends == []
    assert not (tmp_path / "mlruns").exists()


def test_bad_log_checkpoints_value(kiln_run, tmp_path):
    from torchkiln.errors import ConfigError

    with pytest.raises(ConfigError, match="log_checkpoints must be one of none, best, last, all"):
        kiln_run(_fragment(f"file:{tmp_path / 'mlruns'}", log_checkpoints="sometimes"))


SLOW_HOOK = '''
import os, time
from torchkiln.registry import HOOKS

@HOOKS.register_module(force=True)
class SlowProgress:
    """Note each finished iteration in a file and take a little time over it."""

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        with open(os.environ["KILN_PROGRESS"], "a") as fh:
            fh.write(f"{runner.iter + 1}\\n")
        time.sleep(0.05)
'''


def test_cli_sigterm_and_resume_leave_one_run_with_one_curve(tmp_path):
    """The quickstart scenario, small: --cfg-options adds the backend, SIGTERM, --resume."""
    (tmp_path / "slow_progress.py").write_text(SLOW_HOOK)
    progress = tmp_path / "progress.txt"
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        textwrap.dedent("""
        custom_imports: {imports: [slow_progress]}
        model: {type: DigitsMLP, hidden: [16]}
        train_dataloader:
          batch_size: 32
          dataset: {type: DigitsDataset, split: train}
          sampler: {type: InfiniteSampler, shuffle: true}
        train_cfg: {by_epoch: false, max_iters: 20}
        optim_wrapper: {optimizer: {type: SGD, lr: 0.1}}
        default_hooks:
          logger: {type: LoggerHook, interval: 2}
          checkpoint: {type: CheckpointHook, interval: 10, by_epoch: false}
          progress_bar: null
        custom_hooks: [{type: SlowProgress}]
        visualizer: {type: Visualizer, vis_backends: [{type: LocalVisBackend}]}
    """)
    )
    uri = f"file://{tmp_path / 'mlruns'}"
    option = f'visualizer.vis_backends=[{{type: LocalVisBackend}}, {{type: MLflowVisBackend, tracking_uri: "{uri}"}}]'
    env = dict(
        os.environ,
        KILN_PROGRESS=str(progress),
        PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]),
    )
    command = [
        sys.executable,
        "-m",
        "torchkiln",
        "train",
        str(cfg),
        "--work-dir",
        str(tmp_path / "work"),
        "--cfg-options",
        option,
    ]
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while not (progress.exists() and len(progress.read_text().split()) >= 13):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    resumed = subprocess.run(
        [*command, "--resume"], check=False, env=env, capture_output=True, text=True, timeout=180
    )
    assert resumed.returncode == 0, resumed.stderr
    (run,) = _runs(uri)
    assert run.data.params["model.type"] == "DigitsMLP"
    steps = [s for s, _ in _history(uri, run.info.run_id, "loss")]
    assert steps == list(range(2, 21, 2))
    assert run.info.status == "FINISHED"
