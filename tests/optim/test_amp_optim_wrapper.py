"""AmpOptimWrapper: autocast inside optim_context, loss scaling for float16, state."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from torchkiln.errors import ConfigError
from torchkiln.optim import AmpOptimWrapper, OptimWrapper
from torchkiln.registry import OPTIM_WRAPPERS


def make_model(seed=0):
    torch.manual_seed(seed)
    return nn.Linear(4, 2)


def cpu_fp16_wrapper(model, **kwargs):
    """An fp16 wrapper on CPU, or a skip where this torch has no CPU GradScaler/fp16 autocast."""
    try:
        wrapper = AmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1), dtype="float16", **kwargs)
        with wrapper.optim_context(model):
            model(torch.ones(1, 4))
    except (RuntimeError, TypeError, AssertionError) as exc:  # pragma: no cover - depends on torch build
        pytest.skip(f"float16 autocast/GradScaler on CPU unsupported here: {exc}")
    return wrapper


def test_bfloat16_on_cpu_autocasts_inside_the_context_only():
    model = make_model()
    before = [p.detach().clone() for p in model.parameters()]
    wrapper = AmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1), dtype="bfloat16")
    assert wrapper.cast_dtype == torch.bfloat16
    assert wrapper.loss_scaler is None
    with wrapper.optim_context(model):
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
        out = model(torch.ones(3, 4))
        assert out.dtype == torch.bfloat16
        loss = out.float().pow(2).mean()
    assert not torch.is_autocast_enabled("cpu")
    wrapper.update_params(loss)
    assert all(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters()))
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert "loss_scaler" not in wrapper.state_dict()


def test_default_dtype_is_bfloat16_on_cpu():
    model = make_model()
    wrapper = AmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    assert wrapper.cast_dtype == torch.bfloat16
    assert AmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1), dtype=torch.bfloat16).loss_scaler is None


def test_float16_scaler_state_dict_and_clipping():
    param = nn.Parameter(torch.zeros(2))
    model = nn.Module()
    model.p = param
    wrapper = AmpOptimWrapper(optimizer=torch.optim.SGD([param], lr=1.0), dtype="float16",
                              loss_scale={"init_scale": 1024.0}, clip_grad={"max_norm": 1.0})
    assert wrapper.loss_scaler is not None
    state = wrapper.state_dict()
    assert state["loss_scaler"]["scale"] == 1024.0
    # d/dp of (p * [3, 4]).sum() is [3, 4]: the scaler multiplies it by 1024 and unscales it
    # before clipping, so the recorded norm is 5 and the update is [0.6, 0.8]
    wrapper.update_params((param * torch.tensor([3.0, 4.0])).sum())
    assert wrapper.last_grad_norm.item() == pytest.approx(5.0)
    torch.testing.assert_close(param.detach(), torch.tensor([-0.6, -0.8]), atol=1e-5, rtol=0)


def test_float16_on_cpu_trains_close_to_float32():
    model = make_model()
    wrapper = cpu_fp16_wrapper(model)
    reference = make_model()
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(3))
    with wrapper.optim_context(model):
        out = model(x)
        assert out.dtype == torch.float16
        loss = out.float().pow(2).mean()
    wrapper.update_params(loss)
    reference(x).pow(2).mean().backward()
    ref_opt.step()
    for got, want in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(got.detach(), want.detach(), atol=2e-2, rtol=0)
    assert "loss_scaler" in wrapper.state_dict()


def test_non_finite_gradients_skip_the_step_and_back_off():
    param = nn.Parameter(torch.ones(2))
    wrapper = AmpOptimWrapper(optimizer=torch.optim.SGD([param], lr=1.0), dtype="float16",
                              loss_scale={"init_scale": 8.0})
    wrapper.update_params((param * torch.tensor([float("inf"), 1.0])).sum())
    torch.testing.assert_close(param.detach(), torch.ones(2))
    assert wrapper.loss_scaler.get_scale() == 4.0


def test_fixed_and_growing_loss_scale():
    def scale_after_two_steps(loss_scale):
        param = nn.Parameter(torch.ones(2))
        wrapper = AmpOptimWrapper(optimizer=torch.optim.SGD([param], lr=0.01), dtype="float16", loss_scale=loss_scale)
        for _ in range(2):
            wrapper.update_params(param.sum())
        return wrapper.loss_scaler.get_scale()

    assert scale_after_two_steps(512.0) == 512.0
    assert scale_after_two_steps({"init_scale": 16.0, "growth_interval": 1}) == 64.0


def test_load_state_dict():
    param = nn.Parameter(torch.ones(2))
    wrapper = AmpOptimWrapper(optimizer=torch.optim.SGD([param], lr=0.1, momentum=0.9), dtype="float16",
                              loss_scale={"init_scale": 32.0})
    wrapper.update_params(param.sum())
    state = wrapper.state_dict()

    other_param = nn.Parameter(torch.ones(2))
    other = AmpOptimWrapper(optimizer=torch.optim.SGD([other_param], lr=0.5, momentum=0.9), dtype="float16")
    other.load_state_dict(state)
    assert other.loss_scaler.get_scale() == 32.0
    assert other.get_lr() == {"lr": [0.1]}

    bf16 = AmpOptimWrapper(optimizer=torch.optim.SGD([nn.Parameter(torch.ones(2))], lr=0.5, momentum=0.9),
                           dtype="bfloat16")
    bf16.load_state_dict(state)  # the scaler state has no place here and is ignored
    assert bf16.get_lr() == {"lr": [0.1]}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dtype": "float8"}, "unknown AmpOptimWrapper dtype"),
        ({"dtype": torch.float64}, "float16 or bfloat16"),
        ({"dtype": "float16", "loss_scale": "auto"}, "loss_scale must be"),
        ({"dtype": "float16", "loss_scale": -1.0}, "positive"),
        ({"dtype": "float16", "loss_scale": {"init_scal": 2.0}}, "unexpected GradScaler argument 'init_scal'"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        AmpOptimWrapper(optimizer=torch.optim.SGD(make_model().parameters(), lr=0.1), **kwargs)


def test_built_from_registry():
    model = make_model()
    wrapper = OPTIM_WRAPPERS.build(
        {"type": "AmpOptimWrapper", "dtype": "bf16", "accumulative_counts": 2},
        default_args={"optimizer": torch.optim.SGD(model.parameters(), lr=0.1)},
    )
    assert isinstance(wrapper, AmpOptimWrapper) and isinstance(wrapper, OptimWrapper)
    assert wrapper.accumulative_counts == 2 and wrapper.cast_dtype == torch.bfloat16
    assert "dtype=torch.bfloat16" in repr(wrapper)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_float16_by_default():  # pragma: no cover - runs on GPU machines
    model = make_model().cuda()
    wrapper = AmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    assert wrapper.cast_dtype == torch.float16 and wrapper.loss_scaler is not None
    before = [p.detach().clone() for p in model.parameters()]
    with wrapper.optim_context(model):
        assert torch.is_autocast_enabled("cuda")
        out = model(torch.ones(3, 4, device="cuda"))
        assert out.dtype == torch.float16
        loss = out.float().pow(2).mean()
    wrapper.update_params(loss)
    assert all(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters()))
    assert wrapper.state_dict()["loss_scaler"]["scale"] == 65536.0


def test_the_model_device_is_found_once_per_model_and_follows_moves(monkeypatch):
    model = nn.Linear(2, 2)
    wrapper = AmpOptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), dtype="bfloat16")
    with wrapper.optim_context(model):
        assert torch.is_autocast_enabled("cpu")
    # later entries do not walk the parameters again
    monkeypatch.setattr(model, "parameters", lambda *a, **k: pytest.fail("parameters() walked per iteration"))
    for _ in range(2):
        with wrapper.optim_context(model):
            assert torch.is_autocast_enabled("cpu")
    monkeypatch.undo()
    # where the parameter is now is what counts (a move keeps the parameter object)
    model.to("meta")
    assert wrapper._model_device_type(model) == "meta"
    other = nn.Sequential()  # no parameters: the optimizer's device
    assert wrapper._model_device_type(other) == "cpu"


def test_scale_update_param_is_the_fixed_scale():
    """MMEngine's name for what each scaler update receives: the fixed scale, or None."""
    param = nn.Parameter(torch.ones(2))
    fixed = AmpOptimWrapper(optimizer=torch.optim.SGD([param], lr=0.01), dtype="float16", loss_scale=512.0)
    assert fixed._scale_update_param == 512.0
    dynamic = AmpOptimWrapper(optimizer=torch.optim.SGD([param], lr=0.01), dtype="float16")
    assert dynamic._scale_update_param is None
