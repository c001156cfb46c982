"""MMEngine-style .py configs: running them and collecting their plain values."""

from __future__ import annotations

import textwrap

import pytest
from torchkiln.config import load
from torchkiln.config.pyconfig import python_bases, quote_base_tokens, run_python
from torchkiln.errors import ConfigError


def write(tmp_path, text, name="cfg.py"):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_base_tokens_outside_strings_become_strings():
    src = "a = {{_base_.model.depth}}\nb = '{{_base_.x}}'\nc = dict(x={{ $HOME:/tmp }})\n"
    assert (
        quote_base_tokens(src)
        == "a = '{{_base_.model.depth}}'\nb = '{{_base_.x}}'\nc = dict(x='{{$HOME:/tmp}}')\n"
    )


def test_collects_plain_top_level_values_in_order(tmp_path):
    write(tmp_path, "model = dict(depth=50)\n", "base.py")
    path = write(
        tmp_path,
        """
        import json
        import os
        from os.path import join
        _base_ = ['./base.py']
        _private = 1
        __dunder = 2
        def helper(x):
            return x * 2
        class Thing:
            pass
        data_root = join('data', 'coco')
        model = dict(type='Net', depth=helper(25), sizes=(1, 2), fn=json.dumps, cls=ConnectionError)
        train_pipeline = [dict(type='Load'), dict(type='Resize', scale=(1333, 800))]
        depth = {{_base_.model.depth}}
        flags = {1: True}
    """,
    )
    assert python_bases(path) == (["./base.py"], False)
    values, base = run_python(path, None)
    assert base is None
    assert list(values) == ["_private", "data_root", "model", "train_pipeline", "depth", "flags"]
    assert values["depth"] == "{{_base_.model.depth}}"
    # through the loader: tuples stay tuples, classes and functions become import paths
    assert load(path).to_dict() == {
        "model": {
            "depth": 50,
            "type": "Net",
            "sizes": (1, 2),
            "fn": "json.dumps",
            "cls": "builtins.ConnectionError",
        },
        "_private": 1,
        "data_root": "data/coco",
        "train_pipeline": [{"type": "Load"}, {"type": "Resize", "scale": (1333, 800)}],
        "depth": 50,
        "flags": {"1": True},
    }


def test_base_is_readable_and_changes_reach_the_child(tmp_path):
    write(
        tmp_path,
        """
        model = dict(type='Net', backbone=dict(depth=50), data_preprocessor=dict(mean=[1, 2, 3]))
        train_dataloader = dict(batch_size=2, dataset=dict(type='DS', pipeline=[dict(type='A')]))
        scales = [(1, 2), (3, 4)]
    """,
        "_base_/base.py",
    )
    path = write(
        tmp_path,
        """
        _base_ = ['_base_/base.py']
        detector = _base_.model
        detector.backbone.depth = 101          # a reference: the base's model changes too
        bgr_mean = _base_.model['data_preprocessor']['mean'][::-1]
        train_pipeline = [dict(type='B')]
        _base_.train_dataloader.dataset.pipeline = train_pipeline
        first = _base_.scales[0]
        model = dict(type='Wrapper', detector=detector)
    """,
    )
    cfg = load(path).to_dict()
    assert cfg == {
        "model": {
            "type": "Wrapper",
            "backbone": {"depth": 101},
            "data_preprocessor": {"mean": [1, 2, 3]},
            "detector": {
                "type": "Net",
                "backbone": {"depth": 101},
                "data_preprocessor": {"mean": [1, 2, 3]},
            },
        },
        "train_dataloader": {
            "batch_size": 2,
            "dataset": {"type": "DS", "pipeline": [{"type": "B"}]},
        },
        "scales": [(1, 2), (3, 4)],
        "detector": {
            "type": "Net",
            "backbone": {"depth": 101},
            "data_preprocessor": {"mean": [1, 2, 3]},
        },
        "bgr_mean": [3, 2, 1],
        "train_pipeline": [{"type": "B"}],
        "first": (1, 2),
    }


def test_base_sees_only_the_bases_not_the_childs_own_keys(tmp_path):
    write(tmp_path, "a = 1\n", "b1.py")
    write(tmp_path, "b: {x: 1}\n", "b2.yaml")
    path = write(
        tmp_path,
        """
        _base_ = ['b1.py', 'b2.yaml']
        a = 5
        seen = (_base_.a, _base_.b.x, 'a' in _base_)
    """,
    )
    assert load(path).to_dict() == {"a": 5, "b": {"x": 1}, "seen": (1, 1, True)}


def test_delete_is_kept_where_the_base_has_no_such_key(tmp_path):
    write(tmp_path, "optim = dict(type='SGD', lr=0.1)\n", "base.py")
    path = write(
        tmp_path,
        """
        _base_ = 'base.py'
        optim = dict(_delete_=True, type='AdamW')
        extra = dict(_delete_=True, x=1)
    """,
    )
    assert load(path).to_dict() == {"optim": {"type": "AdamW"}, "extra": {"_delete_": True, "x": 1}}


def test_file_name_tokens(tmp_path):
    path = write(
        tmp_path,
        "work_dir = './work_dirs/{{ fileBasenameNoExtension }}'\next = '{{fileExtname}}'\n",
        "exp.py",
    )
    assert load(path).to_dict() == {"work_dir": "./work_dirs/exp", "ext": ".py"}


def test_a_failing_config_reports_its_line(tmp_path):
    path = write(
        tmp_path,
        """
        a = 1
        b = undefined_name + 1
    """,
    )
    with pytest.raises(ConfigError) as info:
        run_python(path, None)
    assert (
        info.value.message
        == "running the config failed: NameError: name 'undefined_name' is not defined"
    )
    assert info.value.where == f"{path}:3"


def test_syntax_errors_have_line_and_column(tmp_path):
    path = write(tmp_path, "a = (1,\n")
    with pytest.raises(ConfigError) as info:
        python_bases(path)
    assert info.value.message.startswith("invalid Python in config")
    assert info.value.where.startswith(f"{path}:1")


def test_values_a_config_cannot_hold_are_errors(tmp_path):
    path = write(
        tmp_path,
        """
        class Opaque:
            pass
        model = dict(obj=Opaque(), f=lambda x: x)
    """,
    )
    with pytest.raises(ConfigError, match=r"a Opaque cannot be stored in a config") as info:
        load(path)
    assert "model.obj" in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "from mmengine.config import read_base\nwith read_base():\n    from .base import *\n",
        "from .base import model\n",
    ],
)
def test_new_style_configs_are_refused_with_a_hint(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load(path)
    assert "new-style" in info.value.message and "_base_ = [" in info.value.hint


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("empty.yaml", b"", "the config file is empty"),
        ("comments.yaml", b"# only a comment\n", "holds no keys"),
        ("list.yaml", b"- 1\n- 2\n", "must be a mapping, not a list"),
        ("scalar.json", b"3", "must be a mapping, not a int"),
        ("binary.yaml", b"\x89PNG\r\n\x1a\n\x00\x00", "binary data (a NUL byte at offset 8)"),
        ("binary.py", b"a = 1\n\x00", "binary data (a NUL byte at offset 6)"),
        ("latin1.py", b"a = '\xe9'\n", "not UTF-8 text"),
    ],
)
def test_bad_config_files_name_the_file_and_exit_2(tmp_path, capsys, name, data, says):
    from torchkiln.cli import main

    path = tmp_path / name
    path.write_bytes(data)
    assert main(["config", "show", str(path)]) == 2
    err = capsys.readouterr().err
    assert says in err and name in err
    assert "Traceback" not in err


def test_an_empty_python_config_is_an_empty_config(tmp_path):
    # as in MMEngine: an empty .py file is valid Python with no values
    path = write(tmp_path, "", "empty.py")
    assert load(path).to_dict() == {}


def test_config_show_round_trips_tuples(tmp_path, capsys):
    from torchkiln.cli import main

    path = write(
        tmp_path, "scale = (1333, 800)\nscales = [(1, 2), dict(s=(3,))]\nempty = ()\nlst = [1]\n"
    )
    assert main(["config", "show", path]) == 0
    out = capsys.readouterr().out
    assert "scale: !!python/tuple [1333, 800]\n" in out and "empty: !!python/tuple []\n" in out
    again = write(tmp_path, out, "dumped.yaml")
    assert (
        load(again).to_dict()
        == load(path).to_dict()
        == {
            "scale": (1333, 800),
            "scales": [(1, 2), {"s": (3,)}],
            "empty": (),
            "lst": [1],
        }
    )
