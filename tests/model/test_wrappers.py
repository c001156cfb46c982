"""Model wrappers: detection, wrap_model, DDP train_step through the wrapper, separate DDP.

Single-process tests use a gloo group of world size 1; one test runs 2 processes.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DataParallel, DistributedDataParallel

from torchkiln.errors import ConfigError
from torchkiln.model import (
    BaseModel,
    DigitsMLP,
    KilnDistributedDataParallel,
    KilnSeparateDistributedDataParallel,
    MMDistributedDataParallel,
    is_model_wrapper,
    unwrap_model,
    wrap_model,
)
from torchkiln.registry import MODEL_WRAPPERS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gloo(tmp_path_factory):
    """A gloo process group of one rank for this module's tests."""
    if dist.is_initialized():
        yield
        return
    init_file = tmp_path_factory.mktemp("pg") / "init"
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def small_mlp() -> DigitsMLP:
    torch.manual_seed(0)
    return DigitsMLP(hidden=8, in_features=4, num_classes=3)


def batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {"inputs": torch.randn(6, 4, generator=g), "labels": torch.tensor([0, 1, 2, 0, 1, 2])}


class Gan(BaseModel):
    """Two sub-networks, one frozen child, and a custom train_step with two optimizers."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.generator = nn.Linear(4, 4)
        self.discriminator = nn.Linear(4, 1)
        self.frozen = nn.Linear(4, 4).requires_grad_(False)

    def forward(self, inputs, data_samples=None, mode="tensor"):
        return self.discriminator(self.generator(inputs))

    def train_step(self, data, optim_wrapper):
        data = self.data_preprocessor(data, True)
        fake = self.generator(data["inputs"])
        loss_g = self.discriminator(fake).pow(2).mean()
        optim_wrapper["generator"].update_params(loss_g)
        loss_d = self.discriminator(data["inputs"]).abs().mean()
        optim_wrapper["discriminator"].update_params(loss_d)
        return {"loss_g": loss_g.detach(), "loss_d": loss_d.detach()}


# ---------------------------------------------------------------------------- no process group
def test_is_model_wrapper_and_unwrap() -> None:
    model = small_mlp()
    assert not is_model_wrapper(model)
    dp = DataParallel(model)
    assert is_model_wrapper(dp)
    assert unwrap_model(dp) is model
    assert unwrap_model(model) is model


def test_is_model_wrapper_looks_into_child_registries_not_parents() -> None:
    from torchkiln.registry import Registry

    child = Registry("wrappers_of_a_downstream_package", parent=MODEL_WRAPPERS, scope="kiln_test_wrappers")

    class DownstreamWrapper(nn.Module):
        def __init__(self, module: nn.Module) -> None:
            super().__init__()
            self.module = module

    try:
        child.register_module(module=DownstreamWrapper)
        model = small_mlp()
        assert is_model_wrapper(DownstreamWrapper(model))  # found below MODEL_WRAPPERS
        assert unwrap_model(DownstreamWrapper(model)) is model
        assert is_model_wrapper(DownstreamWrapper(model), registry=child)
        assert not is_model_wrapper(DataParallel(model), registry=child)  # only MODEL_WRAPPERS has it
    finally:
        del MODEL_WRAPPERS.children[child.scope]


def test_wrap_model_without_distribution_returns_the_model() -> None:
    model = small_mlp()
    assert wrap_model(model, {"type": "KilnDistributedDataParallel"}, distributed=False) is model
    assert wrap_model(model, None, sync_bn="torch", distributed=False) is model


def test_wrapper_names_are_registered() -> None:
    assert MODEL_WRAPPERS.get("KilnDistributedDataParallel") is KilnDistributedDataParallel
    assert MODEL_WRAPPERS.get("MMDistributedDataParallel") is KilnDistributedDataParallel
    assert MODEL_WRAPPERS.get("MMSeparateDistributedDataParallel") is KilnSeparateDistributedDataParallel
    assert MODEL_WRAPPERS.get("DistributedDataParallel") is DistributedDataParallel
    assert MMDistributedDataParallel is KilnDistributedDataParallel


class PlainWrapper(nn.Module):
    """A custom wrapper type: gets only ``module=``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module


def test_sync_bn_conversion_and_custom_wrapper_type() -> None:
    MODEL_WRAPPERS.register_module(name="PlainWrapperForModelTests", module=PlainWrapper, force=True)
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
    wrapped = wrap_model(model, {"type": "PlainWrapperForModelTests", "sync_bn": "torch"}, distributed=True)
    assert isinstance(wrapped, PlainWrapper)
    assert isinstance(wrapped.module[1], nn.SyncBatchNorm)
    assert is_model_wrapper(wrapped)
    with pytest.raises(ConfigError, match="unknown sync_bn 'mmcv'"):
        wrap_model(model, {"type": "PlainWrapperForModelTests"}, sync_bn="mmcv", distributed=True)


# ---------------------------------------------------------------------------- one gloo rank
def test_wrap_model_builds_kiln_ddp_by_default(gloo) -> None:
    wrapped = wrap_model(small_mlp())
    assert type(wrapped) is KilnDistributedDataParallel
    assert is_model_wrapper(wrapped)
    assert wrap_model(wrapped) is wrapped  # already wrapped


def test_ddp_train_step_runs_forward_through_the_wrapper(gloo, make_optim_wrapper) -> None:
    plain = small_mlp()
    reference = copy.deepcopy(plain)
    ddp = wrap_model(plain, {"type": "MMDistributedDataParallel"})
    seen_modes: list[str] = []
    ddp.register_forward_pre_hook(lambda mod, args, kwargs: seen_modes.append(kwargs["mode"]), with_kwargs=True)

    ow = make_optim_wrapper(ddp.parameters(), lr=0.5)
    log_vars = ddp.train_step(batch(), ow)
    ref_log = reference.train_step(batch(), make_optim_wrapper(reference.parameters(), lr=0.5))

    assert seen_modes == ["loss"]
    assert ow.contexts == [ddp]  # optim_context gets the wrapper (so no_sync can apply)
    assert torch.allclose(log_vars["loss"], ref_log["loss"])
    for (name, a), b in zip(plain.state_dict().items(), reference.state_dict().values()):
        assert torch.allclose(a, b), name


def test_ddp_val_and_test_step_delegate(gloo) -> None:
    model = small_mlp()
    ddp = wrap_model(model)
    out = ddp.val_step(batch())
    assert set(out) == {"pred_scores", "gt_labels", "loss"}
    assert torch.allclose(out["pred_scores"], model(batch()["inputs"]))
    assert torch.equal(ddp.test_step(batch())["gt_labels"], batch()["labels"])


def test_ddp_train_step_error_names_the_inner_model(gloo, make_optim_wrapper) -> None:
    ddp = wrap_model(small_mlp())
    with pytest.raises(TypeError, match=r"DigitsMLP\.forward\(inputs, labels=None, mode='tensor'\) cannot take"):
        ddp.train_step({"inputs": torch.ones(2, 4), "targets": torch.ones(2)}, make_optim_wrapper(ddp.parameters()))


def test_detect_anomalous_params_logs_unused(gloo, make_optim_wrapper, caplog) -> None:
    model = small_mlp()
    model.unused = nn.Linear(2, 2)
    ddp = KilnDistributedDataParallel(model, detect_anomalous_params=True, find_unused_parameters=True)
    with caplog.at_level("WARNING"):
        ddp.train_step(batch(), make_optim_wrapper(ddp.parameters()))
    assert "unused.weight" in caplog.text and "backbone.0.weight" not in caplog.text


class OptimDict(dict):
    pass


def test_separate_ddp_wraps_trainable_children(gloo, make_optim_wrapper) -> None:
    model = Gan()
    reference = copy.deepcopy(model)
    plain_keys = list(model.state_dict())
    wrapped = wrap_model(model, {"type": "MMSeparateDistributedDataParallel"})
    assert isinstance(wrapped, KilnSeparateDistributedDataParallel)
    assert isinstance(model.generator, KilnDistributedDataParallel)
    assert isinstance(model.discriminator, KilnDistributedDataParallel)
    assert isinstance(model.frozen, nn.Linear)  # nothing to synchronise
    assert [n for n, _ in wrapped.ddp_children()] == ["generator", "discriminator"]

    # The state dict keeps the plain model's keys, and loads both ways.
    assert list(model.state_dict()) == plain_keys
    assert list(wrapped.state_dict()) == ["module." + k for k in plain_keys]
    fresh = Gan()
    with torch.no_grad():
        fresh.generator.weight.fill_(0.25)
    model.load_state_dict(fresh.state_dict())
    assert torch.equal(model.generator.module.weight, torch.full((4, 4), 0.25))
    reference.load_state_dict(model.state_dict())

    ow = OptimDict(
        generator=make_optim_wrapper(model.generator.parameters()),
        discriminator=make_optim_wrapper(model.discriminator.parameters()),
    )
    ref_ow = OptimDict(
        generator=make_optim_wrapper(reference.generator.parameters()),
        discriminator=make_optim_wrapper(reference.discriminator.parameters()),
    )
    out = wrapped.train_step(batch(), ow)
    ref_out = reference.train_step(batch(), ref_ow)
    assert torch.allclose(out["loss_g"], ref_out["loss_g"])
    for (name, a), b in zip(model.state_dict().items(), reference.state_dict().values()):
        assert torch.allclose(a, b), name
    with wrapped.no_sync():
        assert not model.generator.require_backward_grad_sync
    assert model.generator.require_backward_grad_sync
    assert torch.allclose(wrapped.val_step({"inputs": torch.ones(1, 4)}), reference(torch.ones(1, 4)))


# ---------------------------------------------------------------------------- two processes
WORKER = textwrap.dedent(
    """
    import sys
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F
    from torch import nn

    rank, world, init, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    from torchkiln.model import BaseModel, DigitsMLP, wrap_model


    class OW:
        def __init__(self, params):
            self.opt = torch.optim.SGD(params, lr=0.5)

        def optim_context(self, model):
            import contextlib
            return contextlib.nullcontext()

        def update_params(self, loss):
            loss.backward()
            self.opt.step()
            self.opt.zero_grad()


    class Gan(BaseModel):
        def __init__(self):
            super().__init__()
            self.generator = nn.Linear(4, 4)
            self.discriminator = nn.Linear(4, 1)

        def forward(self, inputs, data_samples=None, mode="tensor"):
            return self.discriminator(self.generator(inputs))

        def train_step(self, data, ow):
            loss = self.discriminator(self.generator(data["inputs"])).pow(2).mean()
            ow["generator"].update_params(loss)
            return {"loss": loss.detach()}


    g = torch.Generator().manual_seed(1)
    x = torch.randn(2 * world, 4, generator=g)
    y = torch.randint(0, 3, (2 * world,), generator=g)
    part = {"inputs": x[2 * rank: 2 * rank + 2], "labels": y[2 * rank: 2 * rank + 2]}

    torch.manual_seed(0)
    model = DigitsMLP(hidden=8, in_features=4, num_classes=3)
    ddp = wrap_model(model)
    ddp.train_step(part, OW(ddp.parameters()))

    torch.manual_seed(0)
    gan = Gan()
    sep = wrap_model(gan, {"type": "KilnSeparateDistributedDataParallel"})
    sep.train_step(part, {"generator": OW(gan.generator.parameters())})

    torch.save({"mlp": model.state_dict(), "gan": gan.state_dict()}, out)
    dist.destroy_process_group()
    """
)


@pytest.mark.dist
@pytest.mark.slow
def test_two_process_ddp_matches_single_process_full_batch(tmp_path, make_optim_wrapper) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    init = f"file://{tmp_path / 'pg'}"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"), OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(r), "2", init, str(tmp_path / f"rank{r}.pt")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for r in range(2)
    ]
    for p in procs:
        out, _ = p.communicate(timeout=240)
        assert p.returncode == 0, out.decode()[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)

    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 4, generator=g)
    y = torch.randint(0, 3, (4,), generator=g)
    torch.manual_seed(0)
    single = DigitsMLP(hidden=8, in_features=4, num_classes=3)
    single.train_step({"inputs": x, "labels": y}, make_optim_wrapper(single.parameters(), lr=0.5))
    for name, value in single.state_dict().items():
        assert torch.allclose(r0["mlp"][name], r1["mlp"][name]), name
        assert torch.allclose(r0["mlp"][name], value, atol=1e-6), name

    torch.manual_seed(0)
    gen, disc = nn.Linear(4, 4), nn.Linear(4, 1)
    opt = torch.optim.SGD(gen.parameters(), lr=0.5)
    disc(gen(x)).pow(2).mean().backward()
    opt.step()
    assert set(r0["gan"]) == {"generator.weight", "generator.bias", "discriminator.weight", "discriminator.bias"}
    assert torch.allclose(r0["gan"]["generator.weight"], r1["gan"]["generator.weight"])
    assert torch.allclose(r0["gan"]["generator.weight"], gen.weight, atol=1e-6)
    assert F.mse_loss(r0["gan"]["discriminator.weight"], disc.weight).item() == 0.0
