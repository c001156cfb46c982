"""ProgressBarHook on a forced terminal: bars, the loss read only when free, log lines above."""

from __future__ import annotations

import io
import re
import sys
import types

import pytest
import structlog
import torch
from rich.console import Console

from torchkiln.errors import ConfigError
from torchkiln.hooks.progress_bar_hook import ProgressBarHook
from torchkiln.logging import LogProcessor, MessageHub
from torchkiln.logging.logger import setup_logging, shutdown_logging

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(autouse=True)
def _clean():
    MessageHub.reset_instances()
    yield
    shutdown_logging()
    structlog.reset_defaults()
    MessageHub.reset_instances()


def _console():
    screen = io.StringIO()
    return Console(file=screen, force_terminal=True, width=150), screen


def _text(screen):
    return _ANSI.sub("", screen.getvalue())


def _runner(iters=4, epochs=2, rank=0):
    loop = types.SimpleNamespace(dataloader=list(range(iters)))
    runner = types.SimpleNamespace(
        rank=rank, epoch=0, iter=0, max_epochs=epochs, max_iters=iters * epochs,
        message_hub=MessageHub.get_instance("pb"), log_processor=LogProcessor(window_size=2),
        train_loop=loop, val_loop=types.SimpleNamespace(dataloader=[0, 1, 2]), test_loop=None,
    )
    return runner


def _train_epoch(hook, runner, loss_values, read_at=()):
    hook.before_train_epoch(runner)
    for idx, loss in enumerate(loss_values):
        runner.message_hub.update_scalar("train/loss", torch.tensor(loss))
        if idx in read_at:  # what the logger hook does at its interval
            runner.message_hub.get_scalar("train/loss").mean(2)
        hook.after_train_iter(runner, idx, None, None)
        runner.iter += 1
    hook.after_train_epoch(runner)
    runner.epoch += 1


def test_train_and_val_bars_with_the_loss_of_the_last_log_interval():
    console, screen = _console()
    hook = ProgressBarHook(enable="auto", refresh_interval=0, console=console)
    runner = _runner()
    hook.before_run(runner)
    hook.before_train(runner)
    _train_epoch(hook, runner, [4.0, 2.0, 1.0, 3.0])
    assert hook._extra == ""  # losses still pending: nothing was read
    assert "train epoch 1/2" in _text(screen) and "4/8" in _text(screen)
    _train_epoch(hook, runner, [1.0, 0.5, 0.25, 0.75], read_at=(1,))
    assert hook._extra == "loss: 0.7500"  # mean of the last 2 at the read (1.0, 0.5), then nothing new
    hook.before_val_epoch(runner)
    for idx in range(3):
        hook.after_val_iter(runner, idx)
    text = _text(screen)
    assert "val epoch 2" in text and "3/3" in text
    hook.after_val_epoch(runner, {})
    assert "val" not in hook._tasks and hook._progress is not None  # the training bar stays
    hook.after_train(runner)
    hook.after_run(runner)
    assert hook._progress is None
    final = _text(screen)
    assert "train epoch 2/2" in final and "8/8" in final and "it/s" in final and "loss: 0.7500" in final


def test_reading_for_the_bar_never_converts_pending_tensors(monkeypatch):
    calls = []
    for name in ("tolist", "item"):  # how the hub reads pending tensors (batched / one by one)
        original = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name, lambda self, _o=original: calls.append(1) or _o(self))
    console, _ = _console()
    hook = ProgressBarHook(enable=True, refresh_interval=0, console=console)
    runner = _runner(iters=6, epochs=1)
    hook.before_run(runner)
    hook.before_train(runner)
    _train_epoch(hook, runner, [1.0] * 6)
    assert calls == [] and hook._extra == ""
    hook.after_run(runner)


def test_resumed_training_starts_where_it_stopped():
    console, screen = _console()
    hook = ProgressBarHook(enable=True, refresh_interval=0, console=console)
    runner = _runner(iters=4, epochs=3)
    runner.epoch, runner.iter = 1, 4
    hook.before_run(runner)
    hook.before_train(runner)
    assert "train epoch 2/3" in _text(screen) and "4/12" in _text(screen)
    hook.after_run(runner)


def test_standalone_test_run_owns_its_bar():
    console, screen = _console()
    hook = ProgressBarHook(enable=True, refresh_interval=0, console=console)
    runner = _runner()
    runner.test_loop = types.SimpleNamespace(dataloader=[0, 1])
    hook.before_run(runner)
    hook.before_test_epoch(runner)
    hook.after_test_iter(runner, 0)
    hook.after_test_iter(runner, 1)
    hook.after_test_epoch(runner, {})
    assert hook._progress is None and "test" in _text(screen) and "2/2" in _text(screen)


def test_log_lines_print_above_the_bars():
    console, screen = _console()
    log = setup_logging(None, tty=False)
    hook = ProgressBarHook(enable=True, refresh_interval=0, console=console)
    runner = _runner()
    real_stdout = sys.stdout
    hook.before_run(runner)
    hook.before_train(runner)
    assert sys.stdout is not real_stdout  # rich redirects stdout while bars are shown
    log.info("Epoch(train) [1][2/4]  loss: 0.5")
    hook.after_run(runner)
    assert sys.stdout is real_stdout
    lines = _text(screen).splitlines()
    logged = [i for i, line in enumerate(lines) if "INFO - Epoch(train) [1][2/4]  loss: 0.5" in line]
    assert logged and "train epoch" in lines[logged[0] + 1]  # the bar is drawn again below the line


def test_off_without_a_terminal_and_on_other_ranks(capsys):
    runner = _runner()
    hook = ProgressBarHook()  # auto, and pytest's stdout is not a terminal
    hook.before_run(runner)
    hook.before_train(runner)
    hook.after_train_iter(runner, 0)
    assert hook._progress is None and not hook._active
    console, _ = _console()
    hook = ProgressBarHook(enable=True, console=console)
    hook.before_run(_runner(rank=1))
    assert not hook._active
    dumb = Console(file=io.StringIO(), force_terminal=True, _environ={"TERM": "dumb"})
    hook = ProgressBarHook(console=dumb)
    hook.before_run(runner)
    assert not hook._active


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"enable": "yes"}, "enable must be auto, true or false"),
    ({"enable": 1}, "enable must be"),
    ({"refresh_interval": -1}, "refresh_interval"),
    ({"refresh_interval": "fast"}, "refresh_interval"),
])
def test_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ProgressBarHook(**kwargs)
