"""MMEngine's checkpoint functions: load/save_checkpoint, load_state_dict, get_state_dict,
weights_to_cpu, CheckpointLoader schemes, _load_checkpoint_with_prefix."""

from __future__ import annotations

import os
from collections import OrderedDict

import pytest
import torch
from torch import nn

from torchkiln.runner import (
    CheckpointError,
    CheckpointLoader,
    get_state_dict,
    load_checkpoint,
    load_state_dict,
    save_checkpoint,
    weights_to_cpu,
)
from torchkiln.runner.checkpoint import (
    CheckpointNotFoundError,
    StateDictMismatchError,
    _load_checkpoint,
    _load_checkpoint_with_prefix,
)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
        self.head = nn.Linear(2, 3)


class Wrapper(nn.Module):
    """A stand-in for DDP: the real model in ``module`` (registered as a model wrapper)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module


@pytest.fixture
def wrapper_registered():
    from torchkiln.registry import MODEL_WRAPPERS

    MODEL_WRAPPERS.register_module(module=Wrapper, force=True)
    yield


def test_save_then_load_round_trip(tmp_path) -> None:
    source, target = Net(), Net()
    path = str(tmp_path / "sub" / "net.pth")
    save_checkpoint({"state_dict": get_state_dict(source), "meta": {"epoch": 3}}, path)
    assert os.path.isfile(path) and not [
        n for n in os.listdir(tmp_path / "sub") if n.endswith(".tmp")
    ]
    checkpoint = load_checkpoint(target, path, map_location="cpu", logger="silent")
    assert checkpoint["meta"] == {"epoch": 3}
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_module_prefix_is_revised_and_custom_revise_keys_apply(tmp_path) -> None:
    source, target = Net(), Net()
    state = OrderedDict(("module." + k, v) for k, v in source.state_dict().items())
    path = str(tmp_path / "ddp.pth")
    save_checkpoint({"state_dict": state}, path)
    load_checkpoint(target, path, logger="silent")
    assert torch.equal(target.head.weight, source.head.weight)

    renamed = OrderedDict(("net." + k, v) for k, v in source.state_dict().items())
    save_checkpoint(renamed, path)  # a bare state dict works too
    other = Net()
    load_checkpoint(other, path, revise_keys=[(r"^net\.", "")], logger="silent")
    assert torch.equal(other.head.bias, source.head.bias)


def test_load_state_dict_reports_or_raises_on_mismatch(caplog) -> None:
    net = Net()
    state = {k: v.clone() for k, v in Net().state_dict().items()}
    state["head.weight"] = torch.zeros(5, 2)  # wrong shape
    state["extra"] = torch.ones(1)
    del state["head.bias"]
    messages: list[str] = []

    class Logger:
        def warning(self, msg: str) -> None:
            messages.append(msg)

    load_state_dict(net, state, logger=Logger())
    text = "\n".join(messages)
    assert "head.bias" in text and "extra" in text and "head.weight" in text
    assert torch.equal(net.backbone[0].weight, state["backbone.0.weight"])  # the rest loaded
    with pytest.raises(StateDictMismatchError) as info:
        load_state_dict(net, state, strict=True)
    assert isinstance(info.value, RuntimeError) and "head.bias" in str(info.value)
    clean = {k: v for k, v in Net().state_dict().items() if not k.endswith("num_batches_tracked")}
    load_state_dict(net, clean, strict=True)  # num_batches_tracked may be missing


def test_load_into_a_wrapped_model(tmp_path, wrapper_registered) -> None:
    source = Net()
    path = str(tmp_path / "w.pth")
    save_checkpoint({"state_dict": source.state_dict()}, path)
    wrapped = Wrapper(Net())
    load_checkpoint(wrapped, path, logger="silent")
    assert torch.equal(wrapped.module.head.weight, source.head.weight)


def test_get_state_dict_unwraps_nested_wrappers(wrapper_registered) -> None:
    outer = nn.Module()
    outer.inner = Wrapper(nn.Linear(2, 2))
    keys = list(get_state_dict(Wrapper(outer)))
    assert keys == ["inner.weight", "inner.bias"]
    state = get_state_dict(outer, keep_vars=True)
    assert state["inner.weight"] is outer.inner.module.weight
    assert "inner" in state._metadata


def test_weights_to_cpu_keeps_metadata() -> None:
    state = nn.Linear(2, 2).state_dict()
    state["note"] = "kept"
    on_cpu = weights_to_cpu(state)
    assert isinstance(on_cpu, OrderedDict) and on_cpu["note"] == "kept"
    assert on_cpu._metadata == state._metadata
    assert all(v.device.type == "cpu" for v in on_cpu.values() if isinstance(v, torch.Tensor))


def test_load_checkpoint_with_prefix(tmp_path) -> None:
    path = str(tmp_path / "n.pth")
    save_checkpoint({"state_dict": Net().state_dict()}, path)
    backbone = _load_checkpoint_with_prefix("backbone", path)
    assert set(backbone) == set(Net().backbone.state_dict())
    assert set(_load_checkpoint_with_prefix("head.", path)) == {"weight", "bias"}
    with pytest.raises(AssertionError, match="neck"):
        _load_checkpoint_with_prefix("neck", path)


def test_missing_unsafe_and_remote_paths_give_clear_errors(tmp_path, monkeypatch) -> None:
    import sys

    from torchkiln.errors import MissingPackageError

    monkeypatch.setitem(sys.modules, "petrel_client", None)  # s3:// needs Petrel's SDK
    with pytest.raises(CheckpointNotFoundError) as info:
        _load_checkpoint(str(tmp_path / "none.pth"), logger="silent")
    assert isinstance(info.value, FileNotFoundError) and "none.pth" in str(info.value)
    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "obj": Net}, evil)
    with pytest.raises(CheckpointError, match="cannot be loaded safely"):
        load_checkpoint(Net(), str(evil), logger="silent")
    with pytest.raises(CheckpointError, match="no storage backend for oss://bucket/x.pth"):
        save_checkpoint({}, "oss://bucket/x.pth")
    with pytest.raises(CheckpointError, match="no storage backend named 'ceph'"):
        save_checkpoint({}, str(tmp_path / "x.pth"), backend_args={"backend": "ceph"})
    with pytest.raises(MissingPackageError, match="petrel_client"):
        _load_checkpoint("s3://b/x.pth", logger="silent")
    with pytest.raises(CheckpointError, match="PAVI"):
        _load_checkpoint("pavi://x.pth", logger="silent")
    with pytest.raises(CheckpointError, match="model-zoo"):
        _load_checkpoint("open-mmlab://resnet50", logger="silent")


def test_local_backend_arguments_and_a_registered_remote_backend(tmp_path) -> None:
    from torchkiln.fileio import BaseStorageBackend, registry

    path = tmp_path / "a.pth"
    save_checkpoint({"w": torch.ones(1)}, str(path), backend_args={"backend": "local"})
    save_checkpoint({"w": torch.ones(2)}, str(path), file_client_args={"backend": "disk"})
    assert torch.equal(_load_checkpoint(str(path), logger="silent")["w"], torch.ones(2))

    class Bucket(BaseStorageBackend):
        objects: dict[str, bytes] = {}

        def get(self, filepath):
            return self.objects[str(filepath)]

        def get_text(self, filepath, encoding="utf-8"):
            return self.get(filepath).decode(encoding)

        def put(self, obj, filepath):
            self.objects[str(filepath)] = obj

    petrel = registry.PREFIX_TO_BACKEND["s3"]
    registry.register_backend("bucket", Bucket, prefixes="s3", force=True)
    try:
        net, other = Net(), Net()
        save_checkpoint({"state_dict": net.state_dict()}, "s3://models/net.pth")
        assert "s3://models/net.pth" in Bucket.objects
        load_checkpoint(other, "s3://models/net.pth", logger="silent")
        assert torch.equal(other.head.weight, net.head.weight)
    finally:
        registry.BACKENDS.pop("bucket", None)
        registry.PREFIX_TO_BACKEND["s3"] = petrel
        registry._INSTANCES.clear()


def test_version_metadata_reaches_modules_that_convert_old_keys(tmp_path) -> None:
    class Old(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first = nn.Linear(2, 2)

    class New(nn.Module):
        _version = 2

        def __init__(self) -> None:
            super().__init__()
            self.renamed = nn.Linear(2, 2)

        def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):
            if local_metadata.get("version", 1) < 2:
                for key in [k for k in state_dict if k.startswith(prefix + "first.")]:
                    state_dict[key.replace("first.", "renamed.")] = state_dict.pop(key)
            super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)

    old, new = Old(), New()
    path = str(tmp_path / "old.pth")
    save_checkpoint(old.state_dict(), path)
    load_checkpoint(new, path, strict=True, logger="silent")
    assert torch.equal(new.renamed.weight, old.first.weight)
    save_checkpoint(New().state_dict(), path)  # version 2: loaded as is
    load_checkpoint(new, path, strict=True, logger="silent")


def test_scheme_prefixes_are_regular_expressions() -> None:
    names = {
        "s3://b/x.pth": "load_from_ceph",
        "open-mmlab:s3://b/x.pth": "load_from_ceph",
        "petrel://b/x.pth": "load_from_ceph",
        "ss3://b/x.pth": "load_from_local",
        ":s3://b/x.pth": "load_from_local",
        "mmcls://resnet": "load_from_mmcls",
        "modelzoo://resnet50": "load_from_torchvision",
    }
    for path, name in names.items():
        assert CheckpointLoader._get_checkpoint_loader(path).__name__ == name, path


def test_scheme_registry_picks_the_longest_prefix() -> None:
    seen: list[tuple[str, object]] = []

    def load_from_memory(filename, map_location=None):
        seen.append((filename, map_location))
        return {"state_dict": {"w": torch.ones(1)}}

    CheckpointLoader.register_scheme("mem://", load_from_memory)
    try:
        assert CheckpointLoader._get_checkpoint_loader("mem://a") is load_from_memory
        assert CheckpointLoader._get_checkpoint_loader("https://x").__name__ == "load_from_http"
        assert CheckpointLoader._get_checkpoint_loader("torchvision://resnet18").__name__ == (
            "load_from_torchvision"
        )
        assert CheckpointLoader._get_checkpoint_loader("/a/b.pth").__name__ == "load_from_local"
        checkpoint = CheckpointLoader.load_checkpoint("mem://a", "cpu", logger="silent")
        assert seen == [("mem://a", "cpu")] and "state_dict" in checkpoint
        with pytest.raises(KeyError, match="force=True"):
            CheckpointLoader.register_scheme("mem://", load_from_memory)

        @CheckpointLoader.register_scheme(prefixes=["mem://"], force=True)
        def load_from_memory2(filename, map_location=None):
            return {}

        assert CheckpointLoader._get_checkpoint_loader("mem://a") is load_from_memory2
    finally:
        CheckpointLoader._schemes.pop("mem://", None)


def test_torchvision_scheme_names_unknown_models() -> None:
    pytest.importorskip("torchvision")
    with pytest.raises(CheckpointError, match="no model named 'not_a_net'"):
        _load_checkpoint("torchvision://not_a_net", logger="silent")
