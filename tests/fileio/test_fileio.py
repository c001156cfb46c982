"""torchkiln.fileio: LocalBackend, FileClient, backend registration, load/dump helpers."""

from __future__ import annotations

import pytest

from torchkiln import fileio
from torchkiln.fileio import BaseStorageBackend, FileClient, LocalBackend


def test_local_backend_reads_writes_and_lists(tmp_path) -> None:
    backend = LocalBackend()
    path = tmp_path / "a" / "b.txt"
    backend.put_text("hello", path)
    assert backend.get(path) == b"hello" and backend.get_text(str(path)) == "hello"
    assert backend.exists(path) and backend.isfile(path) and backend.isdir(tmp_path / "a")
    assert backend.join_path(str(tmp_path), "a", "b.txt") == str(path)
    with backend.get_local_path(str(path)) as local:
        assert local == str(path)
    backend.put(b"x", tmp_path / "a" / "c" / "d.json")
    listed = sorted(backend.list_dir_or_file(tmp_path / "a", recursive=True))
    assert listed == ["b.txt", "c", "c/d.json"]
    files = sorted(
        backend.list_dir_or_file(tmp_path, list_dir=False, suffix=".json", recursive=True)
    )
    assert files == ["a/c/d.json"]
    with pytest.raises(TypeError, match="list_dir=False"):
        list(backend.list_dir_or_file(tmp_path, suffix=".json"))
    copy = backend.copyfile(path, tmp_path / "copy.txt")
    assert backend.get_text(copy) == "hello"
    backend.remove(copy)
    assert not backend.exists(copy)
    with pytest.raises(FileNotFoundError):
        backend.remove(copy)
    with pytest.raises(IsADirectoryError):
        backend.remove(tmp_path / "a")
    backend.rmtree(tmp_path / "a")
    assert not backend.exists(tmp_path / "a")


def test_file_client_and_remote_prefixes(tmp_path) -> None:
    client = FileClient("disk")
    assert client.name == "LocalBackend" and isinstance(client.client, LocalBackend)
    client.put_text("1", tmp_path / "x.txt")
    assert FileClient.infer_client(uri=str(tmp_path / "x.txt")).get_text(tmp_path / "x.txt") == "1"
    assert FileClient.parse_uri_prefix("s3://bucket/key") == "s3"
    assert FileClient.parse_uri_prefix("/local/path") is None
    assert FileClient.parse_uri_prefix("cluster-1:s3://bucket/key") == "s3"
    with pytest.raises(ValueError, match="register"):
        fileio.get("oss://bucket/key")
    with pytest.raises(ValueError, match="no storage backend named 'ceph'"):
        FileClient("ceph")


def test_register_a_backend_for_a_prefix() -> None:
    class MemoryBackend(BaseStorageBackend):
        store = {"mem://a": b"payload"}

        def get(self, filepath):
            return self.store[str(filepath)]

        def get_text(self, filepath, encoding="utf-8"):
            return self.get(filepath).decode(encoding)

    fileio.register_backend("memory", MemoryBackend, prefixes="mem")
    try:
        assert fileio.get("mem://a") == b"payload"
        assert FileClient(prefix="mem").get_text("mem://a") == "payload"
        with pytest.raises(ValueError, match="already registered"):
            fileio.register_backend("memory", MemoryBackend)
        with pytest.raises(NotImplementedError, match="no exists"):
            FileClient("memory").exists("mem://a")
        with pytest.raises(TypeError, match="BaseStorageBackend"):
            fileio.register_backend("bad", dict)  # type: ignore[arg-type]
    finally:
        from torchkiln.fileio import registry

        registry.BACKENDS.pop("memory", None)
        registry.PREFIX_TO_BACKEND.pop("mem", None)


def test_load_and_dump(tmp_path) -> None:
    data = {"a": [1, 2], "b": "x"}
    for suffix in ("json", "yaml", "pkl"):
        path = tmp_path / f"d.{suffix}"
        fileio.dump(data, path)
        assert fileio.load(path) == data
    assert fileio.dump(data, file_format="json") == '{"a": [1, 2], "b": "x"}'
    with pytest.raises(TypeError, match="unsupported file format"):
        fileio.dump(data, tmp_path / "d.txt")
    (tmp_path / "l.txt").write_text("a 1\nb 2 3\n\n")
    assert fileio.list_from_file(tmp_path / "l.txt", prefix="-", offset=1) == ["-b 2 3", "-"]
    assert fileio.dict_from_file(tmp_path / "l.txt") == {"a": "1", "b": ["2", "3"]}


def test_copies_keep_the_path_type_and_symlinks_fall_back_to_copies(tmp_path, monkeypatch) -> None:
    import os
    import shutil

    backend = LocalBackend()
    src = tmp_path / "s.txt"
    backend.put_text("x", src)
    assert backend.copyfile(src, tmp_path / "d.txt") == tmp_path / "d.txt"
    with pytest.raises(shutil.SameFileError):
        backend.copyfile(src, src)
    (tmp_path / "folder").mkdir()
    assert backend.copytree(str(tmp_path / "folder"), str(tmp_path / "f2")) == str(tmp_path / "f2")
    with pytest.raises(FileExistsError):
        backend.copytree(tmp_path / "folder", tmp_path / "f2")
    assert backend.copy_if_symlink_fails(src, tmp_path / "link.txt") is True
    assert os.path.islink(tmp_path / "link.txt")

    def refuse(*_args):
        raise PermissionError("no links here")

    monkeypatch.setattr(os, "symlink", refuse)
    assert backend.copy_if_symlink_fails(src, tmp_path / "copy.txt") is False
    assert (
        not os.path.islink(tmp_path / "copy.txt") and backend.get_text(tmp_path / "copy.txt") == "x"
    )
    assert backend.copy_if_symlink_fails(tmp_path / "folder", tmp_path / "f3") is False
    assert backend.isdir(tmp_path / "f3")
