"""OptimWrapperDict: a mapping of wrappers with whole-dict operations only."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from torchkiln.errors import ConfigError
from torchkiln.optim import OptimWrapper, OptimWrapperDict


def make_dict():
    torch.manual_seed(0)
    generator, discriminator = nn.Linear(2, 2), nn.Linear(2, 1)
    return OptimWrapperDict(
        generator=OptimWrapper(torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))),
        discriminator=OptimWrapper(torch.optim.SGD(discriminator.parameters(), lr=0.01, momentum=0.9)),
    ), generator, discriminator


def test_mapping_interface():
    wrappers, _, _ = make_dict()
    assert list(wrappers) == ["generator", "discriminator"]
    assert list(wrappers.keys()) == ["generator", "discriminator"]
    assert len(wrappers) == 2
    assert "generator" in wrappers and "encoder" not in wrappers
    assert all(isinstance(w, OptimWrapper) for w in wrappers.values())
    assert [name for name, _ in wrappers.items()] == ["generator", "discriminator"]
    assert wrappers["generator"].get_lr() == {"lr": [2e-4]}
    with pytest.raises(KeyError, match="did you mean 'generator'"):
        wrappers["generatr"]


def test_lr_and_momentum_by_name():
    wrappers, _, _ = make_dict()
    assert wrappers.get_lr() == {"generator.lr": [2e-4], "discriminator.lr": [0.01]}
    assert wrappers.get_momentum() == {"generator.momentum": [0.5], "discriminator.momentum": [0.9]}


def test_each_wrapper_updates_its_own_parameters():
    wrappers, generator, discriminator = make_dict()
    g_before = generator.weight.detach().clone()
    d_before = discriminator.weight.detach().clone()
    wrappers["discriminator"].update_params(discriminator(generator(torch.ones(1, 2))).sum())
    assert torch.equal(generator.weight, g_before)  # the generator's step was not taken
    assert not torch.equal(discriminator.weight, d_before)
    assert generator.weight.grad is not None  # but it has gradients, cleared by zero_grad
    wrappers.zero_grad()
    assert generator.weight.grad is None


def test_state_dict_per_name():
    wrappers, generator, discriminator = make_dict()
    wrappers["generator"].update_params(generator(torch.ones(1, 2)).sum())
    state = wrappers.state_dict()
    assert set(state) == {"generator", "discriminator"}
    other, _, _ = make_dict()
    other["generator"].optimizer.param_groups[0]["lr"] = 1.0
    other.load_state_dict(state)
    assert other.get_lr() == wrappers.get_lr()
    assert 0 in other["generator"].state_dict()["state"]
    with pytest.raises(ConfigError, match="'encoder'"):
        other.load_state_dict({"encoder": state["generator"]})


def test_initialize_count_status_reaches_every_wrapper():
    wrappers, generator, _ = make_dict()
    wrappers.initialize_count_status(generator, init_counts=4, max_counts=10)
    assert [w.inner_count for w in wrappers.values()] == [4, 4]


@pytest.mark.parametrize("call", ["update_params", "backward", "step"])
def test_single_optimizer_operations_point_to_an_entry(call):
    wrappers, _, _ = make_dict()
    with pytest.raises(NotImplementedError, match=r"optim_wrapper\['generator'\]"):
        getattr(wrappers, call)(torch.tensor(1.0))


def test_optim_context_points_to_an_entry():
    wrappers, generator, _ = make_dict()
    with pytest.raises(NotImplementedError, match=r"optim_wrapper\['generator'\]\.optim_context"):
        wrappers.optim_context(generator)


def test_entries_must_be_wrappers():
    with pytest.raises(ConfigError, match="only accepts OptimWrapper entries, and 'generator' is a"):
        OptimWrapperDict(generator=torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1))
    assert "name: generator, OptimWrapper(" in repr(make_dict()[0])
