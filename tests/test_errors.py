"""Errors that are torchkiln errors and MMEngine's built-in exceptions at once."""

from __future__ import annotations

import pickle
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from torchkiln.cli import main
from torchkiln.errors import (
    EXIT_CONFIG,
    BuildError,
    BuildKeyError,
    BuildTypeError,
    ConfigAssertionError,
    ConfigError,
    ConfigKeyError,
    ConfigTypeError,
    ConfigValueError,
    TorchkilnError,
    UsageError,
    UsageKeyError,
    UsageNotImplementedError,
    UsageTypeError,
    UsageValueError,
)
from torchkiln.optim import (
    DefaultOptimWrapperConstructor,
    LinearLR,
    OptimWrapper,
    OptimWrapperDict,
    StepLR,
    StepMomentum,
    StepParamScheduler,
    build_optim_wrapper,
)
from torchkiln.registry import OPTIMIZERS

QUICKSTART = Path(__file__).resolve().parents[1] / "configs" / "quickstart_iter.yaml"

VARIANTS = [
    (ConfigValueError, ConfigError, ValueError),
    (ConfigTypeError, ConfigError, TypeError),
    (ConfigKeyError, ConfigError, KeyError),
    (ConfigAssertionError, ConfigError, AssertionError),
    (UsageValueError, UsageError, ValueError),
    (UsageTypeError, UsageError, TypeError),
    (UsageKeyError, UsageError, KeyError),
    (UsageNotImplementedError, UsageError, NotImplementedError),
    (BuildKeyError, BuildError, KeyError),
    (BuildTypeError, BuildError, TypeError),
]


@pytest.mark.parametrize(("variant", "base", "builtin"), VARIANTS)
def test_a_variant_is_its_torchkiln_class_and_the_builtin(variant, base, builtin):
    error = variant(
        "lr must be positive, got -1", where="optim_wrapper.optimizer.lr", hint="e.g. 0.01"
    )
    assert isinstance(error, base) and isinstance(error, TorchkilnError)
    assert isinstance(error, builtin)
    assert error.exit_code == base.exit_code == EXIT_CONFIG
    # the readable message, not a KeyError's quoted repr of it
    assert (
        str(error)
        == "lr must be positive, got -1\n  at: optim_wrapper.optimizer.lr\n  hint: e.g. 0.01"
    )
    copy = pickle.loads(
        pickle.dumps(error)
    )  # DataLoader workers and spawned ranks send errors back
    assert type(copy) is variant and str(copy) == str(error) and copy.hint == "e.g. 0.01"


@pytest.fixture
def optimizer():
    return torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1, momentum=0.9)


def test_scheduler_errors_have_mmengines_builtin_types(optimizer):
    with pytest.raises(ValueError, match="end should be larger than begin") as caught:
        StepLR(optimizer, step_size=1, begin=5, end=2)
    assert isinstance(caught.value, ConfigError)
    with pytest.raises(ValueError, match="start_factor must be in"):
        LinearLR(optimizer, start_factor=10)
    with pytest.raises(TypeError, match="should be an Optimizer or an OptimWrapper"):
        StepLR("not an optimizer", step_size=1)
    with pytest.raises(KeyError, match="param 'initial_lr' is not specified"):
        StepLR(optimizer, step_size=1, last_step=3)
    with pytest.raises(KeyError, match="schedules 'invalid_name'"):
        StepParamScheduler(optimizer, "invalid_name", step_size=1)
    rprop = torch.optim.Rprop(nn.Linear(2, 2).parameters())
    with pytest.raises(ValueError, match="neither 'momentum' nor 'betas'"):
        StepMomentum(rprop, step_size=1)


def test_constructor_errors_have_mmengines_builtin_types():
    model = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="optim_wrapper must be a dict"):
        DefaultOptimWrapperConstructor([])
    with pytest.raises(AssertionError, match="must contain an 'optimizer' entry"):
        build_optim_wrapper(model, {"type": "OptimWrapper"})
    with pytest.raises(TypeError, match="paramwise_cfg must be a dict"):
        DefaultOptimWrapperConstructor({"optimizer": {"type": "SGD", "lr": 0.1}}, ["error"])
    with pytest.raises(TypeError, match="custom_keys must be a dict"):
        DefaultOptimWrapperConstructor(
            {"optimizer": {"type": "SGD", "lr": 0.1}}, {"custom_keys": [0.1]}
        )
    with pytest.raises(KeyError, match="unknown paramwise_cfg key 'invalid_mult'") as caught:
        build_optim_wrapper(
            model, {"optimizer": {"type": "SGD", "lr": 0.1}, "paramwise_cfg": {"invalid_mult": 1}}
        )
    assert str(caught.value).startswith("unknown paramwise_cfg key")  # not quoted like a KeyError
    with pytest.raises(KeyError, match="unknown type 'INVALID_CONSTRUCTOR'"):
        build_optim_wrapper(
            model, {"optimizer": {"type": "SGD", "lr": 0.1}, "constructor": "INVALID_CONSTRUCTOR"}
        )
    with pytest.raises(TypeError, match="unexpected argument 'momentun'"):
        build_optim_wrapper(model, {"optimizer": {"type": "SGD", "lr": 0.1, "momentun": 0.9}})
    with pytest.raises(AssertionError, match="If `clip_grad` is not None"):
        OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), clip_grad=[])


def test_registry_errors_have_mmengines_builtin_types():
    with pytest.raises(KeyError, match="unknown type 'NoSuchOptimizer'") as caught:
        OPTIMIZERS.build({"type": "NoSuchOptimizer", "params": []})
    assert isinstance(caught.value, BuildError)
    with pytest.raises(KeyError, match="needs a 'type' key"):
        OPTIMIZERS.build({"lr": 0.1})
    with pytest.raises(TypeError, match="cannot build"):
        OPTIMIZERS.build(["SGD"])


def test_optim_wrapper_dict_errors_have_mmengines_builtin_types():
    wrapper = OptimWrapper(torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1))
    with pytest.raises(AssertionError, match="`OptimWrapperDict` only accepts OptimWrapper"):
        OptimWrapperDict(gen=wrapper.optimizer)
    pair = OptimWrapperDict(gen=wrapper)
    with pytest.raises(NotImplementedError, match="`step` should be called on one of the optimizers"):
        pair.step()
    with pytest.raises(KeyError, match="no optimizer named 'disc'") as caught:
        pair["disc"]
    assert isinstance(caught.value, UsageError)


def test_the_cli_reports_them_as_config_errors_without_a_traceback(tmp_path, capsys):
    cfg = tmp_path / "bad_scheduler.yaml"
    cfg.write_text(
        textwrap.dedent(
            f"""
            _base_: {QUICKSTART}
            work_dir: {tmp_path / "work"}
            param_scheduler:
              - {{type: LinearLR, start_factor: 10, by_epoch: false, end: 5}}
            """
        )
    )
    code = main(["train", str(cfg)])
    err = capsys.readouterr().err
    assert code == EXIT_CONFIG
    assert "start_factor must be in [0, 1], got 10" in err
    assert "Traceback" not in err


def test_a_runner_without_validation_components_refuses_val_as_a_runtime_error(tmp_path):
    from torchkiln.errors import UsageError
    from torchkiln.runner import Runner

    runner = Runner(model={"type": "DigitsMLP"}, work_dir=str(tmp_path))
    for phase in (runner.val, runner.test, runner.train):
        with pytest.raises(RuntimeError) as info:
            phase()
        assert isinstance(info.value, UsageError) and "this runner cannot" in str(info.value)
