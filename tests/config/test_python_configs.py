"""MMEngine-style .py configs: running them and collecting their plain values."""

from __future__ import annotations

import textwrap

import pytest

from torchkiln.config.pyconfig import load_python, quote_base_tokens
from torchkiln.errors import ConfigError


def write(tmp_path, text, name="cfg.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_base_tokens_outside_strings_become_strings():
    src = "a = {{_base_.model.depth}}\nb = '{{_base_.x}}'\nc = dict(x={{ $HOME:/tmp }})\n"
    assert quote_base_tokens(src) == "a = '{{_base_.model.depth}}'\nb = '{{_base_.x}}'\nc = dict(x='{{$HOME:/tmp}}')\n"


def test_collects_plain_top_level_values_in_order(tmp_path):
    path = write(tmp_path, """
        import json
        import os
        from os.path import join
        _base_ = ['./base.py']
        _private = 1
        def helper(x):
            return x * 2
        class Thing:
            pass
        data_root = join('data', 'coco')
        model = dict(type='Net', depth=helper(25), sizes=(1, 2), fn=json.dumps, cls=ConnectionError)
        train_pipeline = [dict(type='Load'), dict(type='Resize', scale=(1333, 800))]
        depth = {{_base_.model.depth}}
        flags = {1: True}
    """)
    assert load_python(path) == {
        "_base_": ["./base.py"],
        "data_root": "data/coco",
        "model": {"type": "Net", "depth": 50, "sizes": [1, 2], "fn": "json.dumps", "cls": "builtins.ConnectionError"},
        "train_pipeline": [{"type": "Load"}, {"type": "Resize", "scale": [1333, 800]}],
        "depth": "{{_base_.model.depth}}",
        "flags": {"1": True},
    }


def test_a_failing_config_reports_its_line(tmp_path):
    path = write(tmp_path, """
        a = 1
        b = undefined_name + 1
    """)
    with pytest.raises(ConfigError) as info:
        load_python(path)
    assert info.value.message == "running the config failed: NameError: name 'undefined_name' is not defined"
    assert info.value.where == f"{path}:3"


def test_syntax_errors_have_line_and_column(tmp_path):
    path = write(tmp_path, "a = (1,\n")
    with pytest.raises(ConfigError) as info:
        load_python(path)
    assert info.value.message.startswith("invalid Python in config")
    assert info.value.where.startswith(f"{path}:1")


def test_values_a_config_cannot_hold_are_errors(tmp_path):
    path = write(tmp_path, """
        class Opaque:
            pass
        model = dict(obj=Opaque())
    """)
    with pytest.raises(ConfigError, match=r"config value 'model.obj' is a Opaque"):
        load_python(path)


def test_lazy_import_configs_are_refused_with_a_hint(tmp_path):
    path = write(tmp_path, """
        from mmengine.config import read_base
        with read_base():
            from .base import *
    """)
    with pytest.raises(ConfigError) as info:
        load_python(path)
    assert "read_base" in info.value.message and "_base_" in info.value.hint
