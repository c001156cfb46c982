"""The torchkiln command line: exit codes, error messages, the commands' output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
from kiln_toys import ModelSteps

import torchkiln
from torchkiln.cli import main
from torchkiln.errors import did_you_mean
from torchkiln.registry import MODELS

PYTHON_DIR = str(Path(torchkiln.__file__).resolve().parents[1])


@MODELS.register_module(force=True)
class TkCliNet(ModelSteps):
    def __init__(self, depth, width=8):
        self.depth = depth


def write(tmp_path, name, text):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_subprocess(code: str) -> dict:
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------- torch stays unloaded
@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["config", "--help"],
        ["train", "--help"],
        ["plugins"],
        ["config", "show", "{cfg}"],
        ["config", "show", "{cfg}", "--provenance", "--cfg-options", "model.depth=18"],
    ],
)
def test_help_show_and_plugins_do_not_import_torch(tmp_path, argv):
    cfg = write(tmp_path, "a.yaml", "model: {type: TkCliNet, depth: 50}\n")
    argv = [a.replace("{cfg}", str(cfg)) for a in argv]
    result = run_subprocess(
        "import io, json, sys, contextlib\n"
        "from torchkiln.cli import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        f"    code = main({argv!r})\n"
        "print(json.dumps({'code': code, 'torch': 'torch' in sys.modules, 'out': buf.getvalue()}))\n"
    )
    assert result["code"] == 0
    assert result["torch"] is False
    assert result["out"]


def test_python_dash_m_runs_the_cli():
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR)
    proc = subprocess.run([sys.executable, "-m", "torchkiln", "--version"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"torchkiln {torchkiln.__version__}"


# ---------------------------------------------------------------------- usage errors
def test_usage_errors_exit_2_with_a_suggestion(capsys):
    code, out, err = run_cli(capsys, "trian", "cfg.yaml")
    assert code == 2
    assert err.startswith("error: argument COMMAND: invalid choice: 'trian'")
    assert "did you mean 'train'?" in err
    assert "Traceback" not in err
    code, _, err = run_cli(capsys, "val", "cfg.yaml")
    assert code == 2 and "--checkpoint" in err


def test_missing_config_file(capsys, tmp_path):
    code, _, err = run_cli(capsys, "config", "show", tmp_path / "nope.yaml")
    assert code == 2
    assert err == f"error: config file not found\n  at: {tmp_path / 'nope.yaml'}\n  hint: check the path\n"


# ---------------------------------------------------------------------- load errors
def test_malformed_yaml_exits_2_with_file_and_line(capsys, tmp_path):
    cfg = write(tmp_path, "bad.yaml", """
        model:
          type: TkCliNet
          depth: [50
        work_dir: x
    """)
    code, out, err = run_cli(capsys, "config", "show", cfg)
    assert code == 2 and out == ""
    assert err.startswith("error: ")
    assert f"{cfg}:" in err
    assert "Traceback" not in err


def test_duplicate_keys_are_an_error(capsys, tmp_path):
    cfg = write(tmp_path, "dup.yaml", "a: 1\nb: 2\na: 3\n")
    code, _, err = run_cli(capsys, "config", "show", cfg)
    assert code == 2 and f"{cfg}:3" in err and "Traceback" not in err


def test_missing_base_exits_2(capsys, tmp_path):
    cfg = write(tmp_path, "child.yaml", "_base_: missing_base.yaml\na: 1\n")
    code, _, err = run_cli(capsys, "config", "show", cfg)
    assert code == 2
    assert "missing_base.yaml" in err and "Traceback" not in err


def test_cyclic_bases_exit_2_and_print_the_chain(capsys, tmp_path):
    write(tmp_path, "a.yaml", "_base_: b.yaml\nx: 1\n")
    write(tmp_path, "b.yaml", "_base_: a.yaml\ny: 1\n")
    code, _, err = run_cli(capsys, "config", "show", tmp_path / "a.yaml")
    assert code == 2
    assert "a.yaml" in err and "b.yaml" in err and "Traceback" not in err


def test_bad_override_suggests_the_key(capsys, tmp_path):
    cfg = write(tmp_path, "a.yaml", "train_cfg: {by_epoch: true, max_epochs: 12}\n")
    code, _, err = run_cli(capsys, "config", "show", cfg, "--cfg-options", "train_cfg.max_epoch=3")
    assert code == 2
    assert err.startswith("error: override 'train_cfg.max_epoch=3': key 'max_epoch' does not exist")
    assert "did you mean" in err and "'max_epochs'" in err
    assert "Traceback" not in err


def test_debug_shows_the_traceback(capsys, tmp_path):
    code, _, err = run_cli(capsys, "--debug", "config", "show", tmp_path / "nope.yaml")
    assert code == 2
    assert "Traceback" in err and "error: config file not found" in err


# ---------------------------------------------------------------------- validate
def test_validate_ok(capsys, tmp_path):
    cfg = write(tmp_path, "ok.yaml", """
        model: {type: TkCliNet, depth: 50}
        work_dir: runs/ok
    """)
    code, out, err = run_cli(capsys, "config", "validate", cfg)
    assert (code, out, err) == (0, "ok\n", "")


def test_validate_prints_every_error(capsys, tmp_path):
    cfg = write(tmp_path, "bad.yaml", """
        model: {type: TkCliNte, depth: 50}
        train_cgf: {max_epochs: 3}
        randomness: {seed: "0"}
    """)
    code, out, err = run_cli(capsys, "config", "validate", cfg)
    assert code == 2 and out == ""
    assert "error: unknown type 'TkCliNte' in registry models" in err
    assert "did you mean 'TkCliNet'" in err
    assert "error: unknown top-level key 'train_cgf'" in err
    assert "did you mean 'train_cfg'?" in err
    assert f"at: {cfg}:2, key train_cgf" in err
    assert f"at: {cfg}:1:" in err  # the model's type
    assert "key randomness.seed" in err
    assert err.rstrip().endswith("3 errors found")
    assert "Traceback" not in err


def test_validate_unknown_argument(capsys, tmp_path):
    cfg = write(tmp_path, "bad.yaml", "model: {type: TkCliNet, depth: 50, widht: 3}\n")
    code, _, err = run_cli(capsys, "config", "validate", cfg)
    assert code == 2
    assert "error: models.TkCliNet got an unexpected argument 'widht'" in err
    assert f"{cfg}:1:" in err and "did you mean 'width'?" in err


def test_validate_with_a_broken_plugin_exits_3(capsys, tmp_path, monkeypatch):
    from torchkiln.registry import _index

    real = _index.providers
    monkeypatch.setattr(_index, "providers", lambda name, group: (
        {"TkBrokenNet": {"tk_broken": "tk_no_such_module:Net"}} if name == "models" else real(name, group)))
    cfg = write(tmp_path, "a.yaml", "model: {type: TkBrokenNet}\n")
    code, _, err = run_cli(capsys, "config", "validate", cfg)
    assert code == 3
    assert "plugin 'tk_broken' failed to load 'TkBrokenNet'" in err and "Traceback" not in err


# ---------------------------------------------------------------------- train / val / test
@pytest.fixture()
def fake_entry(monkeypatch):
    calls = []
    entry = types.ModuleType("torchkiln.runner.entry")
    for name in ("train", "val", "test"):
        entry.__dict__[name] = (lambda n: lambda cfg, args, run_config: calls.append((n, cfg, args)) or 0)(name)
    runner = types.ModuleType("torchkiln.runner")
    runner.entry = entry
    monkeypatch.setitem(sys.modules, "torchkiln.runner", runner)
    monkeypatch.setitem(sys.modules, "torchkiln.runner.entry", entry)
    return calls


def test_train_loads_validates_and_calls_the_runner(capsys, tmp_path, fake_entry):
    cfg = write(tmp_path, "t.yaml", "model: {type: TkCliNet, depth: 50}\n")
    code, _, err = run_cli(capsys, "train", cfg, "--work-dir", tmp_path / "w", "--resume", "--dry-run",
                           "--launcher", "none", "--cfg-options", "model.depth=18")
    assert code == 0, err
    [(name, loaded, args)] = fake_entry
    assert name == "train"
    assert loaded.model.depth == 18 and loaded.filename == str(cfg)
    assert (args.work_dir, args.resume, args.dry_run, args.launcher) == (str(tmp_path / "w"), "auto", True, "none")
    # The flags are folded into the config before the one validation pass.
    assert (loaded["work_dir"], loaded["resume"], loaded["launcher"]) == (str(tmp_path / "w"), True, "none")
    assert loaded["default_hooks"]["checkpoint"] is None  # a dry run saves nothing
    run_cli(capsys, "train", cfg, "--resume", "ckpt.pth")
    assert fake_entry[-1][2].resume == "ckpt.pth"
    run_cli(capsys, "train", cfg)
    assert fake_entry[-1][2].resume is None


def test_amp_without_an_optimizer_stops_before_the_run(capsys, tmp_path, fake_entry):
    cfg = write(tmp_path, "t.yaml", "model: {type: TkCliNet, depth: 50}\n")
    code, _, err = run_cli(capsys, "train", cfg, "--amp")
    assert code == 2 and fake_entry == []
    assert "--amp needs an optim_wrapper" in err


def test_val_and_test_pass_the_checkpoint(capsys, tmp_path, fake_entry):
    cfg = write(tmp_path, "t.yaml", "model: {type: TkCliNet, depth: 50}\n")
    assert run_cli(capsys, "val", cfg, "--checkpoint", "a.pth")[0] == 0
    assert run_cli(capsys, "test", cfg, "--checkpoint", "b.pth")[0] == 0
    assert [(n, a.checkpoint) for n, _, a in fake_entry] == [("val", "a.pth"), ("test", "b.pth")]


def test_train_does_not_start_on_an_invalid_config(capsys, tmp_path, fake_entry):
    cfg = write(tmp_path, "t.yaml", "model: {type: TkCliNet, depth: 50}\nwork_dri: x\n")
    code, _, err = run_cli(capsys, "train", cfg)
    assert code == 2 and fake_entry == []
    assert "did you mean 'work_dir'?" in err


def test_interrupt_exits_130_and_internal_errors_exit_1(capsys, tmp_path, monkeypatch):
    cfg = write(tmp_path, "t.yaml", "model: {type: TkCliNet, depth: 50}\n")
    entry = types.ModuleType("torchkiln.runner.entry")

    def interrupted(cfg, args, run_config):
        raise KeyboardInterrupt

    def broken(cfg, args, run_config):
        # torchkiln's own code raising (a user's or plugin's error would exit 5, see
        # test_user_code_errors.py)
        return did_you_mean(None, None)

    runner = types.ModuleType("torchkiln.runner")
    runner.entry = entry
    monkeypatch.setitem(sys.modules, "torchkiln.runner", runner)
    monkeypatch.setitem(sys.modules, "torchkiln.runner.entry", entry)
    entry.train = interrupted
    code, _, err = run_cli(capsys, "train", cfg)
    assert code == 130 and "interrupted" in err
    entry.train = broken
    code, _, err = run_cli(capsys, "train", cfg)
    assert code == 1
    assert "internal error: TypeError" in err and "Traceback" in err


def test_validate_prints_warnings_for_python_configs(capsys, tmp_path):
    cfg = write(tmp_path, "a.py", "model = dict(type='TkCliNet', depth=50)\ndataset_type = 'Coco'\n")
    code, out, err = run_cli(capsys, "config", "validate", cfg)
    assert (code, out) == (0, "ok\n")
    assert err.startswith("warning: top-level value 'dataset_type' is not a runner setting")
    assert f"(at {cfg}, key dataset_type)" in err


def test_plugins_uses_rich_tables_on_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    code, out, _ = run_cli(capsys, "plugins")
    assert code == 0
    assert "built-in components" in out and "plugin distributions" in out
    assert "┃" in out or "|" in out  # a drawn table, not the plain listing
    assert "\nbuilt-in components:\n" not in out


def test_plugins_plain_listing(capsys):
    from torchkiln.cli import format_plugins

    text = format_plugins({
        "builtin": {"hooks": 13, "models": 2},
        "distributions": [{
            "name": "tk-dist", "version": "1.2", "components": {"models": ["A", "B"]},
            "hook_plugins": ["logger"], "configs": [("tk_dist", "tk_dist.configs")], "other": {},
        }],
    })
    assert text == (
        f"torchkiln {torchkiln.__version__}\n"
        "\n"
        "built-in components:\n"
        "  hooks       13\n"
        "  models      2\n"
        "  optimizers  + every torch.optim optimizer\n"
        "\n"
        "plugin distributions:\n"
        "  tk-dist 1.2\n"
        "    models: A, B\n"
        "    hook plugins: logger\n"
        "    config packages: tk_dist (tk_dist.configs)\n"
    )
