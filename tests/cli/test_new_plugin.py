"""`torchkiln new-plugin`: the scaffolded distribution installs and passes its own tests."""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import tomllib
import torchkiln
from torchkiln.cli import main
from torchkiln.registry import ALL_REGISTRIES

PYTHON_DIR = str(Path(torchkiln.__file__).resolve().parents[1])
PROBE = "torchkiln-scaffold-probe"


def _child_env(root: Path) -> Path:
    """A venv under ``root`` that sees this interpreter's packages (a ``.pth`` adds its
    site-packages, with their own ``.pth`` files), so installing into it leaves this
    environment untouched. Returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    lines = [f"import site; site.addsitedir({p!r})" for p in sorted(ours)]
    Path(purelib, "_torchkiln_parent_env.pth").write_text("\n".join(lines) + "\n")
    return python


def _install_editable(python: Path, project: Path) -> None:
    uv = Path(sys.executable).with_name("uv")
    uv_cmd = str(uv) if uv.exists() else shutil.which("uv")
    common = ["--no-deps", "--no-build-isolation", "-e", str(project)]
    if uv_cmd:
        cmd = [uv_cmd, "pip", "install", "--quiet", "--offline", "--python", str(python), *common]
    else:
        cmd = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", *common]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_scaffolded_plugin_passes_its_own_tests_after_editable_install(tmp_path):
    project = tmp_path / "proj"
    assert main(["new-plugin", PROBE, "--dir", str(project)]) == 0
    python = _child_env(tmp_path / "venv")
    _install_editable(python, project)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TORCHKILN_DISABLE_PLUGIN_AUTOLOAD"] = "0"
    listing = subprocess.run(
        [str(python), "-m", "torchkiln", "plugins", "--json"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert listing.returncode == 0, listing.stderr
    dists = {d["name"]: d for d in json.loads(listing.stdout)["distributions"]}
    probe = dists[PROBE]
    assert probe["components"] == {
        "hooks": ["ScaffoldProbeIterCounterHook"],
        "metrics": ["ScaffoldProbeAccuracy"],
        "models": ["ScaffoldProbeMLP"],
    }
    assert probe["mount_points"] == {
        "torchkiln_scaffold_probe_watch": ["before_run", "after_val_epoch"]
    }
    tests = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=project,
        timeout=600,
    )
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    assert "3 passed" in tests.stdout
    with pytest.raises(md.PackageNotFoundError):  # this environment never saw it
        md.distribution(PROBE)


def test_scaffold_declares_every_part_under_the_groups_the_code_reads(tmp_path):
    project = tmp_path / "p"
    assert main(["new-plugin", "kiln-foo", "--dir", str(project)]) == 0
    meta = tomllib.loads((project / "pyproject.toml").read_text())
    groups = meta["project"]["entry-points"]
    known = {r.entry_point_group for r in ALL_REGISTRIES.values()}
    known |= {"torchkiln.plugins", "torchkiln.configs"}
    assert set(groups) <= known
    assert groups["torchkiln.models"] == {"KilnFooMLP": "kiln_foo.models:KilnFooMLP"}
    assert groups["torchkiln.plugins"] == {"kiln_foo_watch": "kiln_foo.plugin"}
    assert groups["torchkiln.configs"] == {"kiln_foo": "kiln_foo.configs"}
    assert (project / "kiln_foo" / "configs" / "kiln_foo_digits.yaml").is_file()
    assert (project / "tests" / "test_kiln_foo.py").is_file()
    assert meta["project"]["dependencies"] == [
        "torchkiln>=" + ".".join(torchkiln.__version__.split(".")[:2])
    ]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("foo-", "is not a valid distribution name"),
        ("foo bar", "is not a valid distribution name"),
        ("3d-tools", "is not a Python identifier"),
        ("class", "is not a Python identifier"),
        ("json", "a module named 'json' can be imported already"),
        ("torchkiln-example", "a module named 'torchkiln_example' can be imported already"),
    ],
)
def test_bad_names_are_usage_errors(tmp_path, capsys, name, message):
    target = tmp_path / "out"
    assert main(["new-plugin", name, "--dir", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err
    assert not target.exists()


def test_existing_folder_must_be_empty(tmp_path, capsys):
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("mine\n")
    assert main(["new-plugin", "kiln-foo", "--dir", str(target)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert sorted(p.name for p in target.iterdir()) == ["keep.txt"]
    (target / "keep.txt").unlink()
    assert main(["new-plugin", "kiln-foo", "--dir", str(target)]) == 0
    assert (target / "pyproject.toml").is_file()


def test_default_folder_is_the_name_and_torch_stays_unloaded(tmp_path):
    code = (
        "import json, sys\nfrom torchkiln.cli import main\n"
        "code = main(['new-plugin', 'kiln-bar'])\n"
        "print(json.dumps({'code': code, 'torch': 'torch' in sys.modules}))\n"
    )
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"code": 0, "torch": False}
    assert (tmp_path / "kiln-bar" / "kiln_bar" / "models.py").is_file()
