"""The hook reference in docs/hooks.md never lags behind the hookspecs."""

from __future__ import annotations

import re
from pathlib import Path

from torchkiln.hookspecs import MOUNT_POINTS
from torchkiln.plugin_host import PRIORITIES, SPEC_ARGS

DOC = Path(__file__).resolve().parents[2] / "docs" / "hooks.md"


def test_every_mount_point_is_documented_with_its_arguments_in_order():
    text = DOC.read_text()
    documented = re.findall(r"^#### (\w+)\(([^)]*)\)$", text, flags=re.MULTILINE)
    assert [name for name, _ in documented] == list(MOUNT_POINTS)
    for name, args in documented:
        assert tuple(a.strip() for a in args.split(",")) == SPEC_ARGS[name], name


def test_priority_table_matches_the_code():
    rows = re.findall(r"^\| `(\w+)` \| (\d+)", DOC.read_text(), flags=re.MULTILINE)
    assert {name: int(value) for name, value in rows} == PRIORITIES


def test_spec_arguments_start_with_runner():
    assert all(args[0] == "runner" for args in SPEC_ARGS.values())
    assert SPEC_ARGS["after_train_iter"] == ("runner", "batch_idx", "data_batch", "outputs")
    assert SPEC_ARGS["after_val_epoch"] == ("runner", "metrics")
    assert SPEC_ARGS["before_save_checkpoint"] == ("runner", "checkpoint")
