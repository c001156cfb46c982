"""docs/migration.md's table of MMEngine names matches what tools/mmengine_names.py finds."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("mmengine")

SCRIPT = Path(__file__).resolve().parent.parent / "tools" / "mmengine_names.py"


def _tool():
    spec = importlib.util.spec_from_file_location("mmengine_names", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_migration_table_is_up_to_date() -> None:
    tool = _tool()
    assert tool.current_table() == tool.markdown(), (
        "docs/migration.md is out of date: run python tools/mmengine_names.py --write"
    )


def test_the_table_reflects_the_names_torchkiln_provides() -> None:
    tool = _tool()
    assert tool.status("structures", "InstanceData") == ("`torchkiln.structures.InstanceData`", "same")
    assert tool.status("runner", "LogProcessor")[1] == "same"
    where, text = tool.status("runner", "FlexibleRunner")
    assert where == "-" and text.startswith("absent: ")
    assert tool.status("model", "MMFullyShardedDataParallel")[1] == "same"
    assert tool.status("visualization", "WandbVisBackend")[1] == "renamed"
