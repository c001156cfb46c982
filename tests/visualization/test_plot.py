"""torchkiln plot: finding the scalars file, drawing a PNG, clear errors with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from torchkiln.cli import main
from torchkiln.errors import UsageError
from torchkiln.visualization.plot import available_keys, find_scalars_file, load_scalars, plot_scalars


def _write_run(folder, records, tail=""):
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "scalars.jsonl")
    with open(path, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record) + "\n")
        fh.write(tail)
    return path


def _records(epochs=3, per_epoch=4):
    out = []
    for e in range(epochs):
        for i in range(per_epoch):
            step = e * per_epoch + i + 1
            out.append({"step": step, "epoch": e + 1, "mode": "train", "lr": 0.1 / (e + 1),
                        "time": 0.01, "loss": 2.0 / step})
        out.append({"step": (e + 1) * per_epoch, "epoch": e + 1, "mode": "val",
                    "accuracy/top1": 80.0 + e, "time": 0.02})
    return out


def _png_size(path):
    with open(path, "rb") as fh:
        head = fh.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_latest_run_folder_and_truncated_lines(tmp_path):
    _write_run(tmp_path / "20240101_000000", _records(1))
    latest = _write_run(tmp_path / "20240102_000000", _records(2), tail='{"step": 9, "lo')  # cut by a crash
    os.makedirs(tmp_path / "20240103_000000")  # a run without scalars yet
    _write_run(tmp_path / "20240104_000000", [{"step": 24, "epoch": 2, "mode": "test", "accuracy/top1": 90.0}])
    assert find_scalars_file(tmp_path) == latest  # a later test-only run is passed over
    assert find_scalars_file(tmp_path / "20240101_000000").endswith("20240101_000000/scalars.jsonl")
    records = load_scalars(latest)
    assert len(records) == 10 and records[-1]["mode"] == "val"
    assert available_keys(records) == ["lr", "time", "loss", "accuracy/top1"]


def test_png_has_one_subplot_per_key(tmp_path):
    _write_run(tmp_path / "20240102_000000", _records())
    one = plot_scalars(tmp_path, keys="loss", out=tmp_path / "one.png")
    three = plot_scalars(tmp_path, keys=["loss", "lr", "accuracy/top1"], out=tmp_path / "three.png")
    w1, h1 = _png_size(one)
    w3, h3 = _png_size(three)
    assert w1 == w3 == 800 and h1 == 300 and h3 == 780  # 8 in wide, 2.4 in per subplot + 0.6, at 100 dpi
    default = plot_scalars(tmp_path)  # every key but the timings, beside the scalars file
    assert default == str(tmp_path / "20240102_000000" / "curves.png") and _png_size(default)[1] == 780
    assert _png_size(plot_scalars(tmp_path, keys="val/time,time", out=tmp_path / "t.png")) == (800, 540)


def test_errors_say_what_and_suggest(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        plot_scalars(tmp_path / "missing")
    with pytest.raises(UsageError, match="no scalars.jsonl") as info:
        plot_scalars(tmp_path)
    assert "LoggerHook" in info.value.hint
    _write_run(tmp_path / "run", _records(1))
    with pytest.raises(UsageError, match="no scalar 'acuracy/top1'") as info:
        plot_scalars(tmp_path / "run", keys="loss,acuracy/top1")
    assert "did you mean 'accuracy/top1'" in info.value.hint and "available: lr, time, loss" in info.value.hint
    with pytest.raises(UsageError, match="cannot write"):
        plot_scalars(tmp_path / "run", keys="loss", out=tmp_path / "x.nope")
    _write_run(tmp_path / "empty", [])
    with pytest.raises(UsageError, match="no scalar records"):
        plot_scalars(tmp_path / "empty")


def test_cli_exit_codes(tmp_path, capsys):
    _write_run(tmp_path / "20240102_000000", _records())
    out = tmp_path / "curves.png"
    assert main(["plot", str(tmp_path), "--keys", "loss,lr,accuracy/top1", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out) and _png_size(out)[0] == 800
    assert main(["plot", str(tmp_path), "--keys", "los"]) == 2
    err = capsys.readouterr().err
    assert "error: no scalar 'los'" in err and "did you mean 'loss'" in err
    assert main(["plot", str(tmp_path / "nothing")]) == 2


def test_plot_command_imports_no_torch(tmp_path):
    _write_run(tmp_path, _records(1))
    code = (
        "import sys; from torchkiln.cli import main; "
        f"rc = main(['plot', {str(tmp_path)!r}, '--keys', 'nope']); "
        "print(rc, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-2:] == ["2", "False"]


def test_without_matplotlib_plot_names_the_extra(tmp_path, capsys, monkeypatch):
    _write_run(str(tmp_path / "20240101_000000"), _records())
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    code = main(["plot", str(tmp_path), "--out", str(tmp_path / "c.png")])
    err = capsys.readouterr().err
    assert code == 2
    assert "matplotlib, which is not installed" in err and "pip install 'torchkiln[plot]'" in err
    assert "Traceback" not in err and "internal error" not in err
