"""GPU check: throughput parity, host-device synchronisations and AMP loss scaling.

One script, five sections, each run against a raw PyTorch loop or a direct check:

- ``throughput``: a ResNet-50-sized network (torchvision's ``resnet50`` when installed, else
  a built-in one of the same shape) trained on synthetic on-device data, raw loop against
  the torchkiln Runner with its default hooks, in fp32, AMP bfloat16 and AMP float16
  (dynamic loss scaler); images/s and their ratio (target: at least 0.99x). CUDA only.
- ``host_syncs``: the Runner's loop under ``torch.cuda.set_sync_debug_mode("warn")`` between
  two log intervals; every synchronisation is reported with the torchkiln frame that caused
  it (target: none). CUDA only.
- ``tiny_step_rate``: a tiny MLP, where engine overhead dominates; steps/s and their ratio.
- ``amp_overflow``: AMP float16 with infinity injected into a gradient skips the optimizer
  step (weights and optimizer state unchanged) and lowers the loss scale.
- ``scaler_resume``: resuming from the checkpoint restores the scaler (scale, growth tracker).

Results go to ``--out`` as ``gpu_check.json`` and ``gpu_check.md``. Without CUDA, the CUDA
sections are recorded as skipped with the reason, and the others run on the CPU.

    python bench/gpu_check.py --out work_dirs/gpu_check    # full form; under 8 minutes on one H200
    python bench/gpu_check.py --quick --out /tmp/gpu_check  # a few seconds, for tests

Exit code: 0 when every section that ran passed, 1 when one failed (a ratio below target, a
host sync caused by the engine, a failed AMP check or an error), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import itertools
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

os.environ.setdefault("TORCHKILN_DISABLE_PLUGIN_AUTOLOAD", "1")

import torch
import torch.nn.functional as F
import torchkiln
from torch import nn
from torchkiln import BaseModel, Hook, Runner

TARGET_RATIO = 0.99
PRECISIONS = ("fp32", "bf16", "fp16")
SYNC_MESSAGE = "called a synchronizing CUDA operation"
# Package folders with a trailing separator, so ".../torch/" is no prefix of ".../torchkiln/".
TORCHKILN_DIR = os.path.join(str(Path(torchkiln.__file__).resolve().parent), "")
TORCH_DIR = os.path.join(str(Path(torch.__file__).resolve().parent), "")
SECTIONS = ("throughput", "host_syncs", "tiny_step_rate", "amp_overflow", "scaler_resume")


# ---------------------------------------------------------------------------- settings
@dataclass
class Settings:
    """Sizes and iteration counts of one run (``--quick`` shrinks them)."""

    batch: int = 128
    image_size: int = 224
    width: int = 64
    warmup: int = 15
    iters: int = 60
    rounds: int = 3
    sync_interval: int = 10
    tiny_warmup: int = 100
    tiny_steps: int = 2000
    tiny_rounds: int = 3
    amp_iters: int = 8
    quick: bool = False
    precisions: tuple[str, ...] = PRECISIONS

    @classmethod
    def quick_form(cls) -> Settings:
        """Small enough for a test on the CPU: a few seconds in all."""
        return cls(
            batch=2,
            image_size=32,
            width=8,
            warmup=1,
            iters=2,
            rounds=1,
            sync_interval=2,
            tiny_warmup=5,
            tiny_steps=40,
            tiny_rounds=1,
            amp_iters=6,
            quick=True,
        )


def cuda_available() -> bool:
    """True when a CUDA device can be used (the Runner then trains on it)."""
    return torch.cuda.is_available()


def device() -> torch.device:
    """The device the Runner picks: the current CUDA device, else the CPU."""
    return (
        torch.device("cuda", torch.cuda.current_device())
        if cuda_available()
        else torch.device("cpu")
    )


def synchronize(dev: torch.device) -> None:
    """Wait for the device's queued work (nothing to wait for on the CPU)."""
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


# ---------------------------------------------------------------------------- models
class Bottleneck(nn.Module):
    """ResNet's bottleneck block: 1x1 reduce, 3x3, 1x1 expand (x4), plus the shortcut."""

    def __init__(self, inplanes: int, planes: int, stride: int) -> None:
        super().__init__()
        out = planes * 4
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or inplanes != out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(inplanes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output, ReLU(residual + shortcut)."""
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + self.shortcut(x))


class ResNet50Like(nn.Module):
    """ResNet-50's layout (3, 4, 6, 3 bottlenecks) with a configurable base width.

    ``width=64`` is ResNet-50 itself (25.6 M parameters with 1,000 classes); smaller widths
    keep the shape for quick runs.
    """

    def __init__(self, width: int = 64, num_classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        blocks: list[nn.Module] = []
        inplanes = width
        for stage, count in enumerate((3, 4, 6, 3)):
            planes = width * 2**stage
            for index in range(count):
                blocks.append(
                    Bottleneck(inplanes, planes, stride=2 if index == 0 and stage > 0 else 1)
                )
                inplanes = planes * 4
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(inplanes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits for a batch of images."""
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def build_resnet(width: int) -> tuple[nn.Module, str]:
    """ResNet-50 (torchvision's when importable and ``width`` is 64) and where it came from."""
    torch.manual_seed(0)
    if width == 64:
        try:
            from torchvision.models import resnet50

            return resnet50(weights=None), "torchvision.models.resnet50"
        except (ImportError, TypeError, RuntimeError):  # optional; a missing or old one falls back
            torch.manual_seed(0)
    return ResNet50Like(width=width), f"built-in ResNet-50 layout, base width {width}"


def build_tiny() -> nn.Module:
    """The tiny MLP of the step-rate test (32 -> 64 -> 10)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))


class Classifier(BaseModel):
    """A network with a cross-entropy loss, as the Runner trains it (``mode='loss'``)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.inject_inf = False  # set by the overflow check: the next backward gets infinities

    def forward(
        self, inputs: torch.Tensor, labels: torch.Tensor | None = None, mode: str = "tensor"
    ) -> Any:
        """Logits (``mode='tensor'``) or ``{'loss': cross-entropy}`` (``mode='loss'``)."""
        logits = self.net(inputs)
        if self.inject_inf and logits.requires_grad:
            logits.register_hook(lambda grad: grad * float("inf"))
        if mode == "loss":
            return {"loss": F.cross_entropy(logits, labels)}
        return logits


# ---------------------------------------------------------------------------- data
class PreBatched(list):
    """Batches already on the device, with the attributes hooks look for on a DataLoader."""

    sampler = SimpleNamespace(set_epoch=lambda epoch: None)
    batch_sampler = SimpleNamespace(sampler=sampler)

    @property
    def dataset(self) -> PreBatched:
        """The batches themselves (loops read ``dataloader.dataset``)."""
        return self


def image_batches(
    count: int, settings: Settings, dev: torch.device, distinct: int = 4
) -> PreBatched:
    """``count`` synthetic image batches on ``dev``: ``distinct`` tensors reused in turn."""
    g = torch.Generator().manual_seed(0)
    size = (settings.batch, 3, settings.image_size, settings.image_size)
    pool = [
        (
            torch.randn(size, generator=g).to(dev),
            torch.randint(0, 1000, (settings.batch,), generator=g).to(dev),
        )
        for _ in range(min(distinct, count))
    ]
    return PreBatched(pool[i % len(pool)] for i in range(count))


def tiny_batches(count: int, dev: torch.device) -> PreBatched:
    """``count`` (inputs, labels) batches of 32 for the tiny MLP, on ``dev``."""
    g = torch.Generator().manual_seed(0)
    pool = [
        (torch.randn(32, 32, generator=g).to(dev), torch.randint(0, 10, (32,), generator=g).to(dev))
        for _ in range(16)
    ]
    return PreBatched(pool[i % len(pool)] for i in range(count))


# ---------------------------------------------------------------------------- optimizers
def sgd_config(fused: bool) -> dict[str, Any]:
    """SGD with momentum, as an optimizer config; ``fused`` only where torch supports it."""
    cfg: dict[str, Any] = {"type": "SGD", "lr": 0.01, "momentum": 0.9}
    if fused:
        cfg["fused"] = True
    return cfg


def fused_sgd_supported(dev: torch.device) -> bool:
    """Whether this torch has a fused SGD for ``dev`` (it takes the AMP found-inf flag on
    the device, so a float16 step needs no host read)."""
    try:
        param = nn.Parameter(torch.zeros(2, device=dev))
        opt = torch.optim.SGD([param], lr=0.1, momentum=0.9, fused=True)
        param.grad = torch.ones_like(param)
        opt.step()
    except (RuntimeError, ValueError, TypeError, NotImplementedError):  # varies by version
        return False
    return True


def make_sgd(params: Any, cfg: dict[str, Any]) -> torch.optim.Optimizer:
    """The optimizer ``cfg`` describes, built directly (for the raw loop)."""
    kwargs = {k: v for k, v in cfg.items() if k != "type"}
    return torch.optim.SGD(params, **kwargs)


def optim_wrapper_config(precision: str, optimizer: dict[str, Any]) -> dict[str, Any]:
    """The Runner's ``optim_wrapper`` for ``precision`` (fp32, bf16 or fp16)."""
    if precision == "fp32":
        return {"type": "OptimWrapper", "optimizer": dict(optimizer)}
    dtype = {"bf16": "bfloat16", "fp16": "float16"}[precision]
    return {
        "type": "AmpOptimWrapper",
        "dtype": dtype,
        "loss_scale": "dynamic",
        "optimizer": dict(optimizer),
    }


# ---------------------------------------------------------------------------- the two loops
class Stopwatch(Hook):
    """Times the Runner's iterations ``start_after + 1 .. stop_after`` (batch indices).

    Runs last after each iteration, so the timed span is whole iterations: data fetch,
    every hook, the step. The device is synchronised at both ends and nowhere else.
    """

    priority = "LOWEST"

    def __init__(self, start_after: int, stop_after: int, dev: torch.device) -> None:
        self.start_after, self.stop_after, self.dev = start_after, stop_after, dev
        self.started: float | None = None
        self.elapsed: float | None = None

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Start or stop the clock at the chosen iterations."""
        if batch_idx == self.start_after:
            synchronize(self.dev)
            self.started = time.perf_counter()
        elif batch_idx == self.stop_after and self.started is not None:
            synchronize(self.dev)
            self.elapsed = time.perf_counter() - self.started


_RUN_IDS = itertools.count()


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Keep the Runner's log lines and warnings about the demo setup off the report."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(previous)


def run_runner(
    net: nn.Module,
    batches: PreBatched,
    optim_wrapper: dict[str, Any],
    hooks: list[Any],
    work_dir: str | None = None,
    epochs: int = 1,
    resume: bool = False,
) -> Runner:
    """Train ``net`` for ``epochs`` epochs over ``batches`` with the default hooks plus ``hooks``."""
    model = net if isinstance(net, Classifier) else Classifier(net)
    with contextlib.ExitStack() as stack:
        if work_dir is None:
            work_dir = stack.enter_context(tempfile.TemporaryDirectory())
        stack.enter_context(quiet())
        runner = Runner(
            model=model,
            work_dir=work_dir,
            train_dataloader=batches,
            train_cfg={"by_epoch": True, "max_epochs": epochs},
            optim_wrapper=copy.deepcopy(optim_wrapper),
            custom_hooks=hooks,
            env_cfg={"cudnn_benchmark": torch.backends.cudnn.benchmark},
            randomness={"seed": 0},
            resume=resume,
            log_level="WARNING",
            experiment_name=f"gpu-check-{next(_RUN_IDS)}",  # runs in the same second stay apart
        )
        runner.train()
    return runner


def time_raw(
    net: nn.Module,
    batches: PreBatched,
    precision: str,
    optimizer: dict[str, Any],
    warmup: int,
    dev: torch.device,
) -> float:
    """Seconds for the iterations after ``warmup`` of a hand-written loop over ``batches``."""
    net = net.to(dev).train()
    opt = make_sgd(net.parameters(), optimizer)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(dev.type) if precision == "fp16" else None
    started = 0.0
    for index, (x, y) in enumerate(batches):
        if index == warmup:
            synchronize(dev)
            started = time.perf_counter()
        if dtype is None:
            loss = F.cross_entropy(net(x), y)
        else:
            with torch.autocast(device_type=dev.type, dtype=dtype):
                loss = F.cross_entropy(net(x), y)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        opt.zero_grad()
    synchronize(dev)
    return time.perf_counter() - started


def time_runner(
    net: nn.Module,
    batches: PreBatched,
    precision: str,
    optimizer: dict[str, Any],
    warmup: int,
    dev: torch.device,
) -> float:
    """Seconds for the iterations after ``warmup`` of the Runner over ``batches``."""
    watch = Stopwatch(start_after=warmup - 1, stop_after=len(batches) - 1, dev=dev)
    run_runner(net, batches, optim_wrapper_config(precision, optimizer), [watch])
    if watch.elapsed is None:
        raise RuntimeError("the Runner's timed iterations did not all run")
    return watch.elapsed


def compare(
    build: Callable[[], nn.Module],
    batches: PreBatched,
    precision: str,
    optimizer: dict[str, Any],
    warmup: int,
    rounds: int,
    dev: torch.device,
    log: Callable[[str], None],
    label: str,
) -> dict[str, Any]:
    """Raw loop against the Runner, ``rounds`` interleaved rounds; medians and their ratio."""
    timed = len(batches) - warmup
    if warmup < 1 or timed < 1:
        raise ValueError(
            f"need at least one warm-up and one timed iteration, got {warmup} and {timed}"
        )
    raw: list[float] = []
    kiln: list[float] = []
    for r in range(rounds):
        order = (("raw", time_raw), ("torchkiln", time_runner))
        for name, fn in order if r % 2 == 0 else order[::-1]:
            seconds = fn(build(), batches, precision, optimizer, warmup, dev)
            (raw if name == "raw" else kiln).append(timed / seconds)
            log(
                f"  {label} {precision} round {r + 1}/{rounds} {name}: {timed / seconds:,.1f} per s"
            )
    raw_rate, kiln_rate = statistics.median(raw), statistics.median(kiln)
    return {
        "precision": precision,
        "raw_per_s": raw_rate,
        "torchkiln_per_s": kiln_rate,
        "ratio": kiln_rate / raw_rate,
        "ratio_per_round": [k / r for k, r in zip(kiln, raw)],
    }


# ---------------------------------------------------------------------------- sections
def skipped(reason: str) -> dict[str, Any]:
    """A section that did not run, and why."""
    return {"status": "skipped", "reason": reason}


NO_CUDA = "CUDA is not available on this machine: GPU numbers not measured"


def section_throughput(
    settings: Settings, dev: torch.device, log: Callable[[str], None], allow_cpu: bool = False
) -> dict[str, Any]:
    """ResNet-50-sized training, raw loop against the Runner, per precision (images/s)."""
    if dev.type != "cuda" and not allow_cpu:
        return skipped(NO_CUDA)
    optimizer = sgd_config(fused=dev.type == "cuda" and fused_sgd_supported(dev))
    model_source = build_resnet(settings.width)[1]
    batches = image_batches(settings.warmup + settings.iters, settings, dev)
    results = []
    for precision in settings.precisions:
        row = compare(
            lambda: build_resnet(settings.width)[0],
            batches,
            precision,
            optimizer,
            settings.warmup,
            settings.rounds,
            dev,
            log,
            "resnet50",
        )
        row["meets_target"] = row["ratio"] >= TARGET_RATIO
        results.append(row)
    return {
        "status": "ran",
        "passed": all(row["meets_target"] for row in results),
        "target_ratio": TARGET_RATIO,
        "unit": "images/s",
        "model": model_source,
        "optimizer": optimizer,
        "batch": settings.batch,
        "image_size": settings.image_size,
        "warmup_iters": settings.warmup,
        "timed_iters": settings.iters,
        "rounds": settings.rounds,
        "results": results,
    }


@dataclass
class SyncEvent:
    """One host-device synchronisation: the line that caused it and the stack around it."""

    culprit: str  # innermost frame outside torch itself: who asked for the sync
    engine_frame: str | None  # innermost torchkiln frame, if torchkiln is on the stack
    in_engine: bool  # the culprit is torchkiln code
    stack: list[str] = field(default_factory=list)  # frames outside torch, outermost first


_WARNINGS_DIR = os.path.join(str(Path(warnings.__file__).resolve().parent), "")
_WARNINGS_FILES = ("warnings.py", "_py_warnings.py")  # the warnings module's own frames


def _under(frame: traceback.FrameSummary, folder: str) -> bool:
    return os.path.realpath(frame.filename).startswith(folder)


def _is_warnings_machinery(frame: traceback.FrameSummary) -> bool:
    path = os.path.realpath(frame.filename)
    return path.startswith(_WARNINGS_DIR) and os.path.basename(path) in _WARNINGS_FILES


def _frame_text(frame: traceback.FrameSummary) -> str:
    return f"{frame.filename}:{frame.lineno} in {frame.name}: {(frame.line or '').strip()}"


def describe_sync(stack: list[traceback.FrameSummary]) -> SyncEvent:
    """Attribute a synchronisation to the innermost frame that is not torch's own code."""
    outside = [f for f in stack if not _under(f, TORCH_DIR) and not _is_warnings_machinery(f)]
    culprit = outside[-1] if outside else stack[-1]
    engine = [f for f in stack if _under(f, TORCHKILN_DIR)]
    return SyncEvent(
        culprit=_frame_text(culprit),
        engine_frame=_frame_text(engine[-1]) if engine else None,
        in_engine=_under(culprit, TORCHKILN_DIR),
        stack=[_frame_text(f) for f in outside[-12:]],
    )


class SyncRecorder:
    """Records every synchronisation warning while open, with the Python stack of its cause.

    On CUDA, opening sets ``torch.cuda.set_sync_debug_mode("warn")``: torch then warns at each
    synchronising call, and the warning is raised in the thread that made the call, so the
    stack at that moment shows who made it. "warn" rather than "error" lets the loop go on.
    """

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.events: list[SyncEvent] = []
        self._catch: Any = None
        self._show: Any = None

    @property
    def is_open(self) -> bool:
        """Whether synchronisations are being recorded now."""
        return self._catch is not None

    def open(self) -> None:
        """Start recording (idempotent)."""
        if self._catch is not None:
            return
        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.filterwarnings("always", message=f".*{SYNC_MESSAGE}")
        self._show = warnings.showwarning
        warnings.showwarning = self._record
        if self.cuda:
            torch.cuda.set_sync_debug_mode("warn")

    def close(self) -> None:
        """Stop recording and restore the warning machinery (idempotent)."""
        if self._catch is None:
            return
        if self.cuda:
            torch.cuda.set_sync_debug_mode("default")
        catch, self._catch = self._catch, None
        catch.__exit__(None, None, None)

    def _record(
        self,
        message: Any,
        category: Any,
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        if SYNC_MESSAGE not in str(message):
            self._show(message, category, filename, lineno, file, line)
            return
        self.events.append(describe_sync(traceback.extract_stack()[:-1]))


class SyncWindow(Hook):
    """Opens a :class:`SyncRecorder` after the log iteration ``open_after`` (last of all hooks)."""

    priority = "LOWEST"

    def __init__(self, recorder: SyncRecorder, open_after: int) -> None:
        self.recorder, self.open_after = recorder, open_after

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Open the window once the log line of ``open_after`` is written."""
        if batch_idx == self.open_after:
            self.recorder.open()


class SyncWindowEnd(Hook):
    """Closes the recorder at iteration ``close_at``, before its log line (first of all hooks)."""

    priority = "HIGHEST"

    def __init__(self, recorder: SyncRecorder, close_at: int) -> None:
        self.recorder, self.close_at = recorder, close_at

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Close the window before the next log interval reads values back."""
        if batch_idx == self.close_at:
            self.recorder.close()


def find_syncs(
    net: nn.Module,
    batches: PreBatched,
    optim_wrapper: dict[str, Any],
    interval: int,
    cuda: bool,
    extra_hooks: list[Any] | None = None,
) -> tuple[list[SyncEvent], int]:
    """Train with the logger every ``interval`` iterations, recording synchronisations from
    after the second log line to just before the third; the events and iterations covered."""
    if len(batches) < 3 * interval + 1:
        raise ValueError(
            f"need at least {3 * interval + 1} batches for log interval {interval}, got {len(batches)}"
        )
    recorder = SyncRecorder(cuda=cuda)
    open_after, close_at = 2 * interval - 1, 3 * interval - 1
    hooks = [
        SyncWindow(recorder, open_after),
        SyncWindowEnd(recorder, close_at),
        *(extra_hooks or []),
    ]
    optim_wrapper = dict(optim_wrapper)
    try:
        with tempfile.TemporaryDirectory() as work_dir, quiet():
            runner = Runner(
                model=Classifier(net),
                work_dir=work_dir,
                train_dataloader=batches,
                train_cfg={"by_epoch": True, "max_epochs": 1},
                optim_wrapper=copy.deepcopy(optim_wrapper),
                default_hooks={"logger": {"type": "LoggerHook", "interval": interval}},
                custom_hooks=hooks,
                env_cfg={"cudnn_benchmark": torch.backends.cudnn.benchmark},
                randomness={"seed": 0},
                log_level="WARNING",
                experiment_name=f"gpu-check-{next(_RUN_IDS)}",
            )
            runner.train()
    finally:
        recorder.close()
    return recorder.events, close_at - open_after


def sync_detector_works() -> bool:
    """Whether a deliberate ``.item()`` on the device is seen by the recorder (CUDA only)."""
    recorder = SyncRecorder(cuda=True)
    value = torch.ones(1, device="cuda")
    recorder.open()
    try:
        value.item()
    finally:
        recorder.close()
    return len(recorder.events) >= 1


def summarise_syncs(events: list[SyncEvent], iterations: int) -> dict[str, Any]:
    """Synchronisations grouped by the line that caused them."""
    by_culprit: dict[str, dict[str, Any]] = {}
    for event in events:
        entry = by_culprit.setdefault(
            event.culprit,
            {
                "culprit": event.culprit,
                "count": 0,
                "in_engine": event.in_engine,
                "engine_frame": event.engine_frame,
                "stack": event.stack,
            },
        )
        entry["count"] += 1
    engine = sum(e.in_engine for e in events)
    return {
        "iterations": iterations,
        "syncs": len(events),
        "engine_syncs": engine,
        "per_iteration": len(events) / iterations if iterations else 0.0,
        "sites": sorted(by_culprit.values(), key=lambda e: -e["count"]),
    }


def section_host_syncs(
    settings: Settings, dev: torch.device, log: Callable[[str], None]
) -> dict[str, Any]:
    """Synchronisations between two log intervals, per precision (target: none by the engine)."""
    if dev.type != "cuda":
        return skipped(NO_CUDA)
    if not sync_detector_works():
        return {
            "status": "error",
            "passed": False,
            "error": "torch.cuda.set_sync_debug_mode('warn') did not report a deliberate .item()",
        }
    optimizer = sgd_config(fused=fused_sgd_supported(dev))
    interval = settings.sync_interval
    batches = image_batches(3 * interval + 2, settings, dev)
    results = []
    for precision in settings.precisions:
        events, iterations = find_syncs(
            build_resnet(settings.width)[0],
            batches,
            optim_wrapper_config(precision, optimizer),
            interval,
            cuda=True,
        )
        row = {"precision": precision, **summarise_syncs(events, iterations)}
        log(
            f"  host syncs {precision}: {row['syncs']} in {iterations} iterations ({row['engine_syncs']} by torchkiln)"
        )
        results.append(row)
    return {
        "status": "ran",
        "passed": all(row["engine_syncs"] == 0 for row in results),
        "log_interval": interval,
        "optimizer": optimizer,
        "mode": "torch.cuda.set_sync_debug_mode('warn')",
        "results": results,
    }


def section_tiny_step_rate(
    settings: Settings, dev: torch.device, log: Callable[[str], None]
) -> dict[str, Any]:
    """Steps/s of a tiny MLP, raw loop against the Runner: the engine's own cost per step."""
    optimizer = {"type": "SGD", "lr": 0.01}
    batches = tiny_batches(settings.tiny_warmup + settings.tiny_steps, dev)
    row = compare(
        build_tiny,
        batches,
        "fp32",
        optimizer,
        settings.tiny_warmup,
        settings.tiny_rounds,
        dev,
        log,
        "tiny",
    )
    return {
        "status": "ran",
        "device": str(dev),
        "unit": "steps/s",
        "model": "MLP 32-64-10, batch 32, SGD",
        "warmup_steps": settings.tiny_warmup,
        "timed_steps": settings.tiny_steps,
        "rounds": settings.tiny_rounds,
        "raw_per_s": row["raw_per_s"],
        "torchkiln_per_s": row["torchkiln_per_s"],
        "ratio": row["ratio"],
        "ratio_per_round": row["ratio_per_round"],
        "note": "engine overhead dominates here; reported, no target",
    }


def fp16_unavailable_reason(dev: torch.device) -> str | None:
    """Why AMP float16 with a GradScaler cannot run on ``dev`` with this torch, or None."""
    try:
        scaler = torch.amp.GradScaler(dev.type)
        layer = nn.Linear(4, 4).to(dev)
        opt = torch.optim.SGD(layer.parameters(), lr=0.1)
        with torch.autocast(device_type=dev.type, dtype=torch.float16):
            loss = layer(torch.ones(2, 4, device=dev)).float().sum()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    except (RuntimeError, ValueError, TypeError, NotImplementedError) as exc:  # varies by build
        return f"AMP float16 with GradScaler does not run on {dev.type} with torch {torch.__version__}: {exc}"
    return None


def scaler_state(runner: Any) -> dict[str, Any]:
    """The Runner's loss scaler state (scale, growth tracker, factors)."""
    scaler = runner.optim_wrapper.loss_scaler
    if scaler is None:
        raise RuntimeError("the AMP float16 optim wrapper has no loss scaler")
    return dict(scaler.state_dict())


class OverflowProbe(Hook):
    """Injects infinity into the gradients of iteration ``overflow_at`` and records what the
    step did: weights, optimizer state and loss scale before and after, and the same for the
    iteration before it (a normal step, which must change the weights)."""

    priority = "HIGHEST"

    def __init__(self, overflow_at: int) -> None:
        self.overflow_at = overflow_at
        self.before: dict[int, dict[str, Any]] = {}
        self.after: dict[int, dict[str, Any]] = {}

    def _snapshot(self, runner: Any) -> dict[str, Any]:
        model = runner.model
        opt = runner.optim_wrapper.optimizer
        return {
            "params": [p.detach().clone() for p in model.parameters()],
            "opt_state": [
                {k: v.detach().clone() for k, v in opt.state[p].items() if torch.is_tensor(v)}
                for p in model.parameters()
                if p in opt.state
            ],
            "scaler": scaler_state(runner),
        }

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        """Snapshot before the normal and the overflowing step; arm the injection."""
        if batch_idx in (self.overflow_at - 1, self.overflow_at):
            self.before[batch_idx] = self._snapshot(runner)
        if batch_idx == self.overflow_at:
            runner.model.inject_inf = True

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Snapshot right after the step, before any other hook; disarm the injection."""
        if batch_idx in (self.overflow_at - 1, self.overflow_at):
            self.after[batch_idx] = self._snapshot(runner)
        runner.model.inject_inf = False


def _same(a: list[Any], b: list[Any]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if isinstance(x, dict):
            if x.keys() != y.keys() or not all(torch.equal(x[k], y[k]) for k in x):
                return False
        elif not torch.equal(x, y):
            return False
    return True


def check_overflow(dev: torch.device, fused: bool, iters: int, work_dir: str) -> dict[str, Any]:
    """One AMP float16 run with an overflow at iteration ``iters // 2``; its checks and the
    scaler state at the end (saved in ``work_dir``'s checkpoint)."""
    overflow_at = max(2, iters // 2)
    if iters < overflow_at + 2:
        raise ValueError(
            f"the overflow check needs at least {overflow_at + 2} iterations, got {iters}"
        )
    probe = OverflowProbe(overflow_at)
    wrapper = optim_wrapper_config("fp16", sgd_config(fused))
    runner = run_runner(
        Classifier(build_tiny()), tiny_batches(iters, dev), wrapper, [probe], work_dir=work_dir
    )
    normal_before, normal_after = probe.before[overflow_at - 1], probe.after[overflow_at - 1]
    bad_before, bad_after = probe.before[overflow_at], probe.after[overflow_at]
    scale_before, scale_after = bad_before["scaler"]["scale"], bad_after["scaler"]["scale"]
    backoff = bad_before["scaler"]["backoff_factor"]
    checks = {
        "normal step changes the weights": not _same(
            normal_before["params"], normal_after["params"]
        ),
        "overflow step leaves the weights unchanged": _same(
            bad_before["params"], bad_after["params"]
        ),
        "overflow step leaves the optimizer state unchanged": _same(
            bad_before["opt_state"], bad_after["opt_state"]
        ),
        "overflow step lowers the scale by the backoff factor": scale_after
        == scale_before * backoff,
        "overflow step resets the growth tracker": bad_after["scaler"]["_growth_tracker"] == 0,
        "later steps count in the growth tracker": scaler_state(runner)["_growth_tracker"]
        == iters - overflow_at - 1,
    }
    return {
        "optimizer": "SGD (fused)" if fused else "SGD",
        "overflow_at_iteration": overflow_at,
        "scale_before": scale_before,
        "scale_after": scale_after,
        "growth_tracker_before": bad_before["scaler"]["_growth_tracker"],
        "checks": checks,
        "passed": all(checks.values()),
        "final_scaler": scaler_state(runner),
        "iters": iters,
    }


class ScalerProbe(Hook):
    """Records the loss scaler's state before the first iteration of a (resumed) run."""

    priority = "HIGHEST"

    def __init__(self) -> None:
        self.state: dict[str, Any] | None = None

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        """Keep the scaler state the run starts from."""
        if self.state is None:
            self.state = scaler_state(runner)


def check_resume(
    dev: torch.device, fused: bool, iters: int, work_dir: str, saved: dict[str, Any]
) -> dict[str, Any]:
    """Resume ``work_dir``'s run for one more epoch; the scaler must start where it stopped."""
    probe = ScalerProbe()
    wrapper = optim_wrapper_config("fp16", sgd_config(fused))
    run_runner(
        Classifier(build_tiny()),
        tiny_batches(iters, dev),
        wrapper,
        [probe],
        work_dir=work_dir,
        epochs=2,
        resume=True,
    )
    fresh = torch.amp.GradScaler(dev.type).state_dict()
    restored = probe.state or {}
    checks = {
        "saved state differs from a fresh scaler": (saved["scale"], saved["_growth_tracker"])
        != (fresh["scale"], fresh["_growth_tracker"]),
        "scale restored": restored.get("scale") == saved["scale"],
        "growth tracker restored": restored.get("_growth_tracker") == saved["_growth_tracker"],
    }
    return {
        "optimizer": "SGD (fused)" if fused else "SGD",
        "saved": saved,
        "restored": restored,
        "checks": checks,
        "passed": all(checks.values()),
    }


def amp_sections(
    settings: Settings, dev: torch.device, log: Callable[[str], None]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The overflow and the resume checks, with plain and (where supported) fused SGD."""
    reason = fp16_unavailable_reason(dev)
    if reason is not None:
        return skipped(reason), skipped(reason)
    variants = [False] + ([True] if fused_sgd_supported(dev) else [])
    overflow, resume = [], []
    for fused in variants:
        with tempfile.TemporaryDirectory() as work_dir:
            result = check_overflow(dev, fused, settings.amp_iters, work_dir)
            overflow.append(result)
            resume.append(
                check_resume(dev, fused, settings.amp_iters, work_dir, result.pop("final_scaler"))
            )
        log(
            f"  amp {overflow[-1]['optimizer']}: overflow checks {'pass' if overflow[-1]['passed'] else 'FAIL'}, "
            f"resume checks {'pass' if resume[-1]['passed'] else 'FAIL'}"
        )
    return (
        {
            "status": "ran",
            "device": str(dev),
            "passed": all(r["passed"] for r in overflow),
            "results": overflow,
        },
        {
            "status": "ran",
            "device": str(dev),
            "passed": all(r["passed"] for r in resume),
            "results": resume,
        },
    )


# ---------------------------------------------------------------------------- report
def environment(dev: torch.device) -> dict[str, Any]:
    """Versions and the device, for the report header."""
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchkiln": torchkiln.__version__,
        "device": str(dev),
        "cuda_available": cuda_available(),
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cpu_threads": torch.get_num_threads(),
    }
    if dev.type == "cuda":
        env.update(
            gpu=torch.cuda.get_device_name(dev),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
            tf32_cudnn=torch.backends.cudnn.allow_tf32,
        )
    return env


def _num(value: float) -> str:
    return f"{value:,.1f}"


def markdown(report: dict[str, Any]) -> str:
    """The report as markdown tables."""
    env = report["environment"]
    where = env.get("gpu") or "no CUDA device (CPU only)"
    lines = [
        f"<!-- {where}; torch {env['torch']}; Python {env['python']}; {report['seconds']:.0f} s -->"
    ]
    if report["quick"]:
        lines += [
            "",
            "_Quick form (`--quick`): a smoke run with tiny sizes; its rates and ratios mean nothing._",
        ]
    if not env["cuda_available"]:
        lines += [
            "",
            "**GPU numbers: not measured** (no CUDA device on the machine that ran this).",
        ]
    thr = report["throughput"]
    lines += [
        "",
        "ResNet-50 training, raw PyTorch loop against the torchkiln Runner (default hooks):",
        "",
    ]
    if thr["status"] == "ran":
        lines += [
            (
                f"{thr['model']}; batch {thr['batch']}, {thr['image_size']}x{thr['image_size']}; "
                f"{thr['optimizer']}; median of {thr['rounds']} rounds of {thr['timed_iters']} iterations"
            ),
            "",
            "| precision | raw images/s | torchkiln images/s | ratio | target |",
            "| --- | ---: | ---: | ---: | --- |",
        ]
        for row in thr["results"]:
            lines.append(
                f"| {row['precision']} | {_num(row['raw_per_s'])} | {_num(row['torchkiln_per_s'])} | "
                f"{row['ratio']:.3f}x | {'met' if row['meets_target'] else 'MISSED'} (>= {TARGET_RATIO}x) |"
            )
    else:
        lines.append(f"_{_status_text(thr)}_")
    syncs = report["host_syncs"]
    lines += ["", "Host-device synchronisations between two log intervals:", ""]
    if syncs["status"] == "ran":
        lines += [
            "| precision | iterations | syncs | by torchkiln | sites |",
            "| --- | ---: | ---: | ---: | --- |",
        ]
        for row in syncs["results"]:
            sites = (
                "; ".join(f"{s['count']}x {s['culprit'].split(': ')[0]}" for s in row["sites"])
                or "none"
            )
            lines.append(
                f"| {row['precision']} | {row['iterations']} | {row['syncs']} | {row['engine_syncs']} | {sites} |"
            )
    else:
        lines.append(f"_{_status_text(syncs)}_")
    tiny = report["tiny_step_rate"]
    lines += ["", "Tiny-model step rate (engine overhead dominates):", ""]
    if tiny["status"] == "ran":
        lines += [
            "| device | raw steps/s | torchkiln steps/s | ratio |",
            "| --- | ---: | ---: | ---: |",
            f"| {tiny['device']} | {_num(tiny['raw_per_s'])} | {_num(tiny['torchkiln_per_s'])} | {tiny['ratio']:.3f}x |",
        ]
    else:
        lines.append(f"_{_status_text(tiny)}_")
    lines += [
        "",
        "AMP float16 checks:",
        "",
        "| check | optimizer | device | result |",
        "| --- | --- | --- | --- |",
    ]
    for key in ("amp_overflow", "scaler_resume"):
        part = report[key]
        if part["status"] != "ran":
            lines.append(f"| {key} | – | – | {_status_text(part)} |")
            continue
        for result in part["results"]:
            for name, ok in result["checks"].items():
                lines.append(
                    f"| {name} | {result['optimizer']} | {part['device']} | {'pass' if ok else 'FAIL'} |"
                )
    return "\n".join(lines) + "\n"


def _status_text(part: dict[str, Any]) -> str:
    if part["status"] == "skipped":
        return f"skipped: {part['reason']}"
    return f"error: {part.get('error', 'unknown')}"


def run_section(name: str, fn: Callable[[], Any], log: Callable[[str], None]) -> Any:
    """Run a section; an exception becomes an ``error`` entry, so the other sections still run."""
    started = time.perf_counter()
    log(f"{name} ...")
    try:
        result = fn()
    except Exception as exc:  # noqa: BLE001 - a failing section is reported, the others still run
        log(f"{name}: error: {exc!r}")
        return {
            "status": "error",
            "passed": False,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
    log(f"{name}: done in {time.perf_counter() - started:.1f} s")
    return result


def run_checks(settings: Settings, log: Callable[[str], None]) -> dict[str, Any]:
    """Every section; the report as a JSON-ready dict."""
    dev = device()
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # for both loops alike
    started = time.perf_counter()
    report: dict[str, Any] = {
        "environment": environment(dev),
        "quick": settings.quick,
        "settings": {k: v for k, v in vars(settings).items() if k != "precisions"},
    }
    report["throughput"] = run_section(
        "throughput", lambda: section_throughput(settings, dev, log), log
    )
    report["host_syncs"] = run_section(
        "host_syncs", lambda: section_host_syncs(settings, dev, log), log
    )
    report["tiny_step_rate"] = run_section(
        "tiny_step_rate", lambda: section_tiny_step_rate(settings, dev, log), log
    )
    amp = run_section("amp", lambda: amp_sections(settings, dev, log), log)
    if isinstance(amp, tuple):
        report["amp_overflow"], report["scaler_resume"] = amp
    else:
        report["amp_overflow"] = report["scaler_resume"] = amp
    report["seconds"] = time.perf_counter() - started
    report["passed"] = all(
        report[name].get("passed", True) for name in SECTIONS if report[name]["status"] != "skipped"
    )
    return report


def main(argv: list[str] | None = None) -> int:
    """Command line: run the checks, write ``gpu_check.json`` and ``gpu_check.md`` to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default="work_dirs/gpu_check", help="folder for gpu_check.json and gpu_check.md"
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes and counts (seconds; for tests)"
    )
    parser.add_argument(
        "--markdown", action="store_true", help="print only the markdown report on stdout"
    )
    parser.add_argument("--batch", type=int, help="ResNet batch size (default 128)")
    parser.add_argument("--image-size", type=int, help="ResNet image side in pixels (default 224)")
    parser.add_argument("--width", type=int, help="ResNet base width (64 is ResNet-50)")
    parser.add_argument("--warmup", type=int, help="untimed ResNet iterations per run (default 15)")
    parser.add_argument("--iters", type=int, help="timed ResNet iterations per run (default 60)")
    parser.add_argument("--rounds", type=int, help="interleaved raw/torchkiln rounds (default 3)")
    parser.add_argument(
        "--tiny-steps", type=int, help="timed steps of the tiny model (default 2000)"
    )
    parser.add_argument("--precisions", help=f"comma-separated subset of {','.join(PRECISIONS)}")
    args = parser.parse_args(argv)
    settings = Settings.quick_form() if args.quick else Settings()
    for name in ("batch", "image_size", "width", "warmup", "iters", "rounds", "tiny_steps"):
        value = getattr(args, name)
        if value is not None:
            if value < 1:
                parser.error(f"--{name.replace('_', '-')} must be at least 1, got {value}")
            setattr(settings, name, value)
    if args.precisions:
        chosen = tuple(p.strip() for p in args.precisions.split(",") if p.strip())
        unknown = [p for p in chosen if p not in PRECISIONS]
        if unknown or not chosen:
            parser.error(
                f"unknown precision(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(PRECISIONS)}"
            )
        settings.precisions = chosen

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    threads = torch.get_num_threads()
    if not cuda_available():
        torch.set_num_threads(1)  # as bench/overhead.py: a shared machine's other load hurts less
    try:
        report = run_checks(settings, log)
    finally:
        torch.set_num_threads(threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(
        json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8"
    )
    table = markdown(report)
    (out / "gpu_check.md").write_text(table, encoding="utf-8")
    print(table, end="")
    if not args.markdown:
        print(
            f"\nwrote {out / 'gpu_check.json'} and {out / 'gpu_check.md'}; "
            f"{'all checks that ran passed' if report['passed'] else 'SOME CHECKS FAILED'}"
        )
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
