"""The overhead benchmark still runs (tiny step counts; the numbers are not checked)."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "overhead.py"


@pytest.fixture(scope="module")
def overhead():
    spec = importlib.util.spec_from_file_location("bench_overhead", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_raw_and_torchkiln_variants_train_the_same_model(overhead):
    per_step = overhead.measure(
        {"raw PyTorch loop": overhead.run_raw, "torchkiln Runner": overhead.run_torchkiln}, 5, 10, 1
    )
    assert set(per_step) == {"raw PyTorch loop", "torchkiln Runner"}
    assert all(isinstance(value, float) for value in per_step.values())


def test_pre_batched_data_looks_like_a_dataloader(overhead):
    batches = overhead.make_batches(3)
    assert len(batches) == 3 and batches.dataset is batches
    batches.sampler.set_epoch(1)  # what seed hooks call
    assert batches.batch_sampler.sampler is batches.sampler


def test_command_line_runs_the_chosen_variants(overhead, capsys):
    assert overhead.main(["--steps", "5", "10", "--rounds", "1", "--variants", "torchkiln", "--markdown"]) == 0
    table = capsys.readouterr().out
    assert "| raw PyTorch loop |" in table and "| torchkiln Runner |" in table  # raw always runs
    assert "MMEngine" not in table
    assert logging.root.manager.disable == logging.NOTSET  # the run left logging as it was
    with pytest.raises(SystemExit) as exc:
        overhead.main(["--variants", "raw,tensorflow"])
    assert exc.value.code == 2 and "tensorflow" in capsys.readouterr().err
