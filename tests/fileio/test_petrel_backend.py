"""PetrelBackend against an in-memory petrel_client (no network)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
from fake_petrel_client import install
from torch import nn

from torchkiln.errors import MissingPackageError
from torchkiln.fileio import (
    FileClient,
    PetrelBackend,
    file_client as file_client_module,
    get_file_backend,
    registry,
)
from torchkiln.runner.checkpoint import load_checkpoint, save_checkpoint


@pytest.fixture
def petrel(monkeypatch) -> PetrelBackend:
    install(monkeypatch)
    return PetrelBackend()


def test_put_get_and_text_with_both_prefixes(petrel) -> None:
    petrel.put(b"abc", "s3://bucket/a.bin")
    assert petrel.get("s3://bucket/a.bin") == b"abc"
    assert petrel.get("petrel://bucket/a.bin") == b"abc"  # the same object
    assert petrel._client.objects == {"s3://bucket/a.bin": b"abc"}
    petrel.put_text("héllo", "petrel://bucket/t.txt")
    assert petrel.get_text("s3://bucket/t.txt") == "héllo"
    with pytest.raises(FileNotFoundError, match="s3://bucket/none"):
        petrel.get("s3://bucket/none")


def test_exists_isdir_isfile_and_remove(petrel) -> None:
    petrel.put(b"1", "s3://bucket/dir/x.txt")
    assert petrel.exists("s3://bucket/dir/x.txt") and petrel.exists("s3://bucket/dir")
    assert petrel.isfile("s3://bucket/dir/x.txt") and not petrel.isfile("s3://bucket/dir")
    assert petrel.isdir("s3://bucket/dir") and not petrel.isdir("s3://bucket/dir/x.txt")
    assert not petrel.exists("s3://bucket/other")
    with pytest.raises(IsADirectoryError):
        petrel.remove("s3://bucket/dir")
    petrel.remove("s3://bucket/dir/x.txt")
    assert not petrel.exists("s3://bucket/dir/x.txt")
    with pytest.raises(FileNotFoundError):
        petrel.remove("s3://bucket/dir/x.txt")


def test_list_dir_or_file(petrel) -> None:
    for key in ["a.py", "b.txt", "sub/c.py", "sub/deep/d.py"]:
        petrel.put(b"", f"s3://bucket/root/{key}")
    assert sorted(petrel.list_dir_or_file("s3://bucket/root")) == ["a.py", "b.txt", "sub"]
    assert sorted(petrel.list_dir_or_file("s3://bucket/root/", recursive=True)) == [
        "a.py",
        "b.txt",
        "sub",
        "sub/c.py",
        "sub/deep",
        "sub/deep/d.py",
    ]
    files = petrel.list_dir_or_file(
        "s3://bucket/root", list_dir=False, suffix=".py", recursive=True
    )
    assert sorted(files) == ["a.py", "sub/c.py", "sub/deep/d.py"]
    assert sorted(petrel.list_dir_or_file("s3://bucket/root", list_file=False, recursive=True)) == [
        "sub",
        "sub/deep",
    ]
    with pytest.raises(TypeError, match="suffix"):
        list(petrel.list_dir_or_file("s3://bucket/root", suffix=".py"))
    petrel.rmtree("s3://bucket/root/sub")
    assert sorted(petrel.list_dir_or_file("s3://bucket/root", recursive=True)) == ["a.py", "b.txt"]


def test_get_local_path_downloads_to_a_removed_temporary_file(petrel) -> None:
    petrel.put(b"weights", "s3://bucket/model.pth")
    with petrel.get_local_path("s3://bucket/model.pth") as path:
        assert str(path).endswith(".pth") and Path(path).read_bytes() == b"weights"
    assert not os.path.exists(path)
    with pytest.raises(FileNotFoundError), petrel.get_local_path("s3://bucket/none.pth"):
        pass


def test_path_mapping_join_path_and_backslashes(monkeypatch) -> None:
    install(monkeypatch)
    backend = PetrelBackend(path_mapping={"data/": "s3://bucket/data/"}, enable_mc=False)
    assert backend._client.enable_mc is False
    backend.put(b"x", "data/img.jpg")
    assert backend._client.objects == {"s3://bucket/data/img.jpg": b"x"}
    assert backend.get("s3://bucket\\data\\img.jpg") == b"x"
    assert backend.join_path("petrel://bucket/", "/a", "b") == "petrel://bucket/a/b"
    assert backend.join_path("data/", "c") == "s3://bucket/data/c"
    with pytest.raises(TypeError, match="path_mapping"):
        PetrelBackend(path_mapping=[("a", "b")])  # type: ignore[arg-type]


def test_copyfile_and_local_copies(petrel, tmp_path) -> None:
    local = tmp_path / "w.bin"
    local.write_bytes(b"w")
    petrel.put(b"", "s3://bucket/dir/keep")
    assert petrel.copyfile_from_local(local, "s3://bucket/dir") == "s3://bucket/dir/w.bin"
    assert petrel.copyfile("s3://bucket/dir/w.bin", "s3://bucket/w2.bin") == "s3://bucket/w2.bin"
    assert petrel.copyfile_to_local("s3://bucket/w2.bin", tmp_path) == tmp_path / "w2.bin"
    assert (tmp_path / "w2.bin").read_bytes() == b"w"


def test_picked_by_name_prefix_and_cluster_name(monkeypatch) -> None:
    install(monkeypatch)
    assert isinstance(get_file_backend("s3://bucket/x"), PetrelBackend)
    assert isinstance(get_file_backend("petrel://bucket/x"), PetrelBackend)
    assert isinstance(get_file_backend("cluster-1:s3://bucket/x"), PetrelBackend)
    assert isinstance(FileClient("petrel").client, PetrelBackend)
    assert isinstance(FileClient.infer_client(uri="s3://bucket/x").client, PetrelBackend)
    client = FileClient(prefix="petrel", conf_path="~/petreloss.conf")
    assert client.name == "PetrelBackend" and client.client._client.conf_path == "~/petreloss.conf"
    assert file_client_module.PetrelBackend is PetrelBackend


def test_checkpoint_round_trip_through_s3(monkeypatch) -> None:
    install(monkeypatch)
    net, other = nn.Linear(3, 2), nn.Linear(3, 2)
    save_checkpoint({"state_dict": net.state_dict()}, "s3://models/net.pth")
    save_checkpoint(
        {"state_dict": net.state_dict()},
        "s3://models/b.pth",
        file_client_args={"backend": "petrel"},
    )
    assert set(get_file_backend("s3://models/net.pth")._client.objects) == {
        "s3://models/net.pth",
        "s3://models/b.pth",
    }
    load_checkpoint(other, "petrel://models/b.pth", logger="silent")
    assert torch.equal(other.weight, net.weight) and torch.equal(other.bias, net.bias)


def test_missing_sdk_is_a_clear_import_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "petrel_client", None)  # import fails
    monkeypatch.setattr(registry, "_INSTANCES", {})
    with pytest.raises(MissingPackageError) as info:
        PetrelBackend()
    assert isinstance(info.value, ImportError)
    message = str(info.value)
    assert "petrel_client" in message and "SenseTime" in message
    assert "register_backend('s3', MyBackend, prefixes='s3', force=True)" in message
    with pytest.raises(ImportError, match="petrel_client"):
        save_checkpoint({}, "s3://bucket/x.pth")


def test_folder_copies_and_copy_if_symlink_fails(petrel, tmp_path) -> None:
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "a.txt").write_text("a")
    (tmp_path / "src" / "sub" / "b.txt").write_text("b")
    assert (
        petrel.copytree_from_local(tmp_path / "src", "petrel://bucket/up") == "petrel://bucket/up"
    )
    assert set(petrel._client.objects) == {"s3://bucket/up/a.txt", "s3://bucket/up/sub/b.txt"}
    with pytest.raises(FileExistsError):
        petrel.copytree_from_local(tmp_path / "src", "s3://bucket/up")
    assert petrel.copytree("s3://bucket/up", "s3://bucket/copy") == "s3://bucket/copy"
    with pytest.raises(FileExistsError):
        petrel.copytree("s3://bucket/up", "s3://bucket/copy")
    petrel.copytree_to_local("s3://bucket/copy", tmp_path / "down")
    assert (tmp_path / "down" / "sub" / "b.txt").read_text() == "b"
    assert petrel.copy_if_symlink_fails("s3://bucket/up/a.txt", "s3://bucket/link.txt") is False
    assert petrel.get("s3://bucket/link.txt") == b"a"
    assert petrel.copy_if_symlink_fails("s3://bucket/up", "s3://bucket/linked") is False
    assert petrel.isfile("s3://bucket/linked/sub/b.txt")


def test_sdk_without_conf_path_and_missing_methods(monkeypatch) -> None:
    install(monkeypatch)

    class OldClient:  # an SDK version without conf_path, contains, isdir, list or delete
        def __init__(self, enable_mc=True) -> None:
            self.enable_mc = enable_mc

    monkeypatch.setattr(sys.modules["petrel_client"].client, "Client", OldClient)
    backend = PetrelBackend()
    for call in (backend.exists, backend.isdir, backend.isfile, backend.remove):
        with pytest.raises(NotImplementedError, match="upgrade petrel_client"):
            call("s3://bucket/x")
    with pytest.raises(NotImplementedError, match="`list`"):
        backend.list_dir_or_file("s3://bucket")
    with pytest.raises(TypeError, match="`list_dir` should be False when `suffix` is not None"):
        backend.list_dir_or_file("s3://bucket", suffix=".py")


def test_mmengine_import_paths() -> None:
    from torchkiln.fileio import backends

    assert backends.PetrelBackend is PetrelBackend
    assert file_client_module.PetrelBackend is PetrelBackend
