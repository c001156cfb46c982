"""The GPU check runs in its quick form; what needs CUDA is skipped with a reason on the CPU.

The numbers are not checked (speed lives in bench/, never in test assertions); the AMP
float16 checks are, and so is the machinery of the CUDA sections, run here on the CPU.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import traceback
import warnings
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "bench" / "gpu_check.py"
CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("bench_gpu_check", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def quick_report(gpu_check, tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    threads = torch.get_num_threads()
    code = gpu_check.main(["--quick", "--out", str(out)])
    assert torch.get_num_threads() == threads  # the CLI leaves the thread count as it was
    report = json.loads((out / "gpu_check.json").read_text(encoding="utf-8"))
    return code, report, (out / "gpu_check.md").read_text(encoding="utf-8")


def test_quick_form_reports_every_section(gpu_check, quick_report):
    code, report, table = quick_report
    assert code == 0 and report["passed"] is True
    for name in gpu_check.SECTIONS:
        assert report[name]["status"] in ("ran", "skipped"), report[name]
    assert report["environment"]["cuda_available"] is CUDA
    if not CUDA:
        for name in ("throughput", "host_syncs"):
            assert (
                report[name]["status"] == "skipped"
                and "CUDA is not available" in report[name]["reason"]
            )
        assert "GPU numbers: not measured" in table
    else:
        assert report["throughput"]["status"] == report["host_syncs"]["status"] == "ran"
    assert report["quick"] is True and "Quick form" in table


def test_tiny_step_rate_ran(quick_report):
    tiny = quick_report[1]["tiny_step_rate"]
    assert tiny["status"] == "ran"
    assert tiny["raw_per_s"] > 0 and tiny["torchkiln_per_s"] > 0
    assert tiny["ratio"] == pytest.approx(tiny["torchkiln_per_s"] / tiny["raw_per_s"])
    assert "| raw steps/s |" in quick_report[2]


def test_amp_overflow_skips_the_step_and_lowers_the_scale(quick_report):
    overflow = quick_report[1]["amp_overflow"]
    assert overflow["status"] == "ran", overflow  # torch's GradScaler runs on the CPU too
    assert overflow["passed"] is True
    plain = next(r for r in overflow["results"] if r["optimizer"] == "SGD")
    assert all(plain["checks"].values()) and len(plain["checks"]) == 6
    assert plain["scale_after"] == plain["scale_before"] / 2  # the default backoff factor
    assert plain["growth_tracker_before"] == plain["overflow_at_iteration"]


def test_resume_restores_the_scaler(quick_report):
    resume = quick_report[1]["scaler_resume"]
    assert resume["status"] == "ran" and resume["passed"] is True
    for result in resume["results"]:
        assert result["restored"]["scale"] == result["saved"]["scale"] < 65536.0
        assert result["restored"]["_growth_tracker"] == result["saved"]["_growth_tracker"] > 0


def test_overflow_check_fails_when_the_step_is_not_skipped(gpu_check, tmp_path, monkeypatch):
    # Without the injected infinity the "overflow" step is a normal one: the checks must say so.
    monkeypatch.setattr(
        gpu_check.Classifier,
        "inject_inf",
        property(lambda self: False, lambda self, v: None),
        raising=False,
    )
    result = gpu_check.check_overflow(torch.device("cpu"), False, 6, str(tmp_path))
    assert result["passed"] is False
    assert result["checks"]["overflow step leaves the weights unchanged"] is False
    assert result["checks"]["normal step changes the weights"] is True


def test_throughput_harness_runs_on_cpu(gpu_check):
    settings = gpu_check.Settings.quick_form()
    logged: list[str] = []
    section = gpu_check.section_throughput(
        settings, torch.device("cpu"), logged.append, allow_cpu=True
    )
    assert section["status"] == "ran"
    assert [row["precision"] for row in section["results"]] == list(gpu_check.PRECISIONS)
    for row in section["results"]:
        assert row["raw_per_s"] > 0 and row["torchkiln_per_s"] > 0 and row["ratio"] > 0
    assert len(logged) == 2 * len(gpu_check.PRECISIONS)  # raw and torchkiln, one round each


def test_built_in_resnet_has_resnet50_size(gpu_check):
    net = gpu_check.ResNet50Like(width=64)
    assert sum(p.numel() for p in net.parameters()) == 25_557_032
    assert net(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_sync_window_covers_one_log_interval(gpu_check):
    # On the CPU there is no sync debug mode; a hook warns as torch would, once per iteration.
    class FakeSync(gpu_check.Hook):
        def before_train_iter(self, runner, batch_idx, data_batch=None):
            warnings.warn(gpu_check.SYNC_MESSAGE, UserWarning, stacklevel=1)

    interval = 3
    batches = gpu_check.tiny_batches(3 * interval + 2, torch.device("cpu"))
    wrapper = gpu_check.optim_wrapper_config("fp32", {"type": "SGD", "lr": 0.01})
    show = warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # outside the window the fake warnings are not shown
        events, iterations = gpu_check.find_syncs(
            gpu_check.build_tiny(), batches, wrapper, interval, cuda=False, extra_hooks=[FakeSync()]
        )
    assert warnings.showwarning is show  # the recorder put the warning machinery back
    assert iterations == interval and len(events) == interval
    for event in events:
        assert event.culprit.startswith(__file__) and "before_train_iter" in event.culprit
        assert event.in_engine is False
        assert event.engine_frame is not None and event.engine_frame.startswith(
            gpu_check.TORCHKILN_DIR
        )
    summary = gpu_check.summarise_syncs(events, iterations)
    assert (
        summary["syncs"] == interval and summary["engine_syncs"] == 0 and len(summary["sites"]) == 1
    )


def test_a_sync_is_attributed_to_the_innermost_frame_outside_torch(gpu_check):
    def frame(path: str, name: str) -> traceback.FrameSummary:
        return traceback.FrameSummary(path, 7, name, line="x = 1")

    stack = [
        frame("/work/train.py", "main"),
        frame(gpu_check.TORCHKILN_DIR + "runner/runner.py", "train"),
        frame(gpu_check.TORCHKILN_DIR + "optim/optimizer/amp_optim_wrapper.py", "step"),
        frame(gpu_check.TORCH_DIR + "amp/grad_scaler.py", "step"),
    ]
    event = gpu_check.describe_sync(stack)
    assert "amp_optim_wrapper.py:7 in step" in event.culprit
    assert event.in_engine is True and event.engine_frame == event.culprit
    assert len(event.stack) == 3  # torch's own frames are left out
    sibling = (
        gpu_check.TORCH_DIR.rstrip("/") + "kiln_like/x.py"
    )  # ".../torchkiln_like": not torch's
    assert gpu_check.describe_sync([*stack[:3], frame(sibling, "f")]).culprit.startswith(sibling)
    model_sync = gpu_check.describe_sync([*stack[:2], frame("/work/model.py", "forward"), stack[3]])
    assert model_sync.in_engine is False and "runner.py" in model_sync.engine_frame


def test_bad_arguments_exit_with_a_usage_error(gpu_check, capsys):
    with pytest.raises(SystemExit) as exc:
        gpu_check.main(["--precisions", "fp32,fp8"])
    assert exc.value.code == 2 and "fp8" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        gpu_check.main(["--iters", "0"])
    assert exc.value.code == 2 and "--iters" in capsys.readouterr().err
