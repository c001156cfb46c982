"""BaseModel calls ``forward`` directly only when ``nn.Module.__call__`` would add nothing:
every hook, compile, tracing, the profiler and a replaced ``__call__`` still take effect."""

from __future__ import annotations

import pytest
import torch
from kiln_toys import ToyModel
from torch import nn

from torchkiln.model import BaseDataPreprocessor
from torchkiln.model import direct_forward
from torchkiln.model.direct_forward import forwards_directly
from torchkiln.optim import OptimWrapper


def batch():
    return (torch.randn(4, 4), torch.tensor([0, 1, 2, 1]))


def step(model: ToyModel) -> dict:
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    return model.train_step(batch(), wrapper)


def test_supported_on_this_torch():
    assert direct_forward.SUPPORTED, "torch renamed a Module internal: update direct_forward"


def test_plain_modules_are_called_directly():
    model = ToyModel()
    assert forwards_directly(model) and forwards_directly(model.data_preprocessor)
    # train_step still trains: the loss is finite and the weights moved.
    before = model.linear.weight.detach().clone()
    assert torch.isfinite(step(model)["loss"])
    assert not torch.equal(before, model.linear.weight)


@pytest.mark.parametrize("target", ["model", "preprocessor"])
@pytest.mark.parametrize("kind", ["forward", "forward_pre", "full_backward", "full_backward_pre"])
def test_module_hooks_run(target, kind):
    model = ToyModel()
    module = model if target == "model" else model.data_preprocessor
    seen = []

    def hook(*args, **kwargs):
        seen.append(kind)

    handle = getattr(module, f"register_{kind}_hook")(hook)
    assert not forwards_directly(module)
    # (Backward hooks need tensor outputs and inputs that require grad, which a loss dict and
    # a batch are not; that they send the call through __call__ is what matters here.)
    if kind.startswith("forward"):
        step(model)
        assert seen, f"{kind} hook on the {target} did not run"
    handle.remove()
    assert forwards_directly(module)


@pytest.mark.parametrize("register", [nn.modules.module.register_module_forward_hook,
                                      nn.modules.module.register_module_forward_pre_hook])
def test_global_module_hooks_run(register):
    model = ToyModel()
    names = []
    handle = register(lambda module, *rest: names.append(type(module).__name__))
    try:
        assert not forwards_directly(model)
        step(model)
    finally:
        handle.remove()
    assert "ToyModel" in names and "BaseDataPreprocessor" in names


def test_a_replaced_call_is_used():
    class Counting(BaseDataPreprocessor):
        calls = 0

        def __call__(self, *args, **kwargs):
            Counting.calls += 1
            return super().__call__(*args, **kwargs)

    model = ToyModel()
    model.data_preprocessor = Counting()
    assert not forwards_directly(model.data_preprocessor)
    step(model)
    assert Counting.calls == 1


def test_a_patched_module_call_is_used(monkeypatch):
    """torch.fx replaces nn.Module.__call__ while it traces; any such patch is honoured."""
    calls = []
    original = nn.Module.__call__

    def patched(self, *args, **kwargs):
        calls.append(type(self).__name__)
        return original(self, *args, **kwargs)

    model = ToyModel()
    monkeypatch.setattr(nn.Module, "__call__", patched)
    assert not forwards_directly(model)
    step(model)
    assert "ToyModel" in calls and "BaseDataPreprocessor" in calls


def test_profiler_and_tracing_use_call():
    model = ToyModel()
    with torch.autograd.profiler.profile():
        assert not forwards_directly(model)
    assert forwards_directly(model)

    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(forwards_directly(self))
            return x * 2

    torch.jit.trace(Probe(), torch.ones(2), check_trace=False)
    assert seen == [False]


def test_compiled_in_place_uses_call():
    model = ToyModel()
    model.compile(backend="eager")
    assert not forwards_directly(model)
    assert torch.isfinite(step(model)["loss"])
