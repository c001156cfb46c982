"""Typed validation: unknown keys, wrong types, loop rules, user variables (no registry lookups)."""

from __future__ import annotations

import warnings

import pytest

from torchkiln.config import Config, ConfigWarning, RunConfig, structure, validate
from torchkiln.config.schema import TrainLoopCfg
from torchkiln.errors import ConfigError

YAML = "/proj/cfg.yaml"


def yaml_cfg(data, provenance=None, referenced=()):
    """A config as if loaded from YAML: every top-level key has a YAML provenance."""
    prov = dict(provenance or {})
    for i, (key, value) in enumerate(data.items(), start=1):
        if not isinstance(value, (dict, list)):
            prov.setdefault(key, f"{YAML}:{i}:1")
    return Config(data, filename=YAML, provenance=prov, referenced=referenced)


def check(data, *, sets=False, **kw):
    """Validate without registries; leave out the train/val/test all-or-none rule unless ``sets``."""
    errors = validate(yaml_cfg(data, **kw), components=False)
    return errors if sets else [e for e in errors if "given without" not in e.message]


def messages(errors):
    return [str(e) for e in errors]


def test_a_valid_config_has_no_errors_and_structures():
    data = {
        "work_dir": "runs/x",
        "train_cfg": {"by_epoch": True, "max_epochs": 12, "val_interval": 2, "dynamic_intervals": [[10, 1]]},
        "train_dataloader": {"batch_size": 2, "num_workers": 1, "dataset": {"type": "D"}, "sampler": {"type": "S"}},
        "optim_wrapper": {"optimizer": {"type": "SGD", "lr": 0.1}},
        "val_dataloader": {"batch_size": 2, "dataset": {"type": "D"}},
        "val_evaluator": [{"type": "Accuracy"}],
        "val_cfg": {"fp16": True},
        "randomness": {"seed": 3, "deterministic": True},
        "env_cfg": {"cudnn_benchmark": False, "mp_cfg": {"mp_start_method": "fork"}, "dist_cfg": {"backend": "gloo"}},
        "launcher": "pytorch",
        "log_level": "WARNING",
        "resume": "runs/x/epoch_3.pth",
        "compile": {"mode": "max-autotune"},
        "auto_scale_lr": {"enable": True, "base_batch_size": 16},
        "plugins": {"disable": ["example_logger"]},
        "vars": {"anything": [1, 2]},
    }
    assert check(data, sets=True) == []
    typed = structure(Config(data))
    assert isinstance(typed, RunConfig)
    assert typed.train_cfg == TrainLoopCfg(by_epoch=True, max_epochs=12, val_interval=2, dynamic_intervals=[(10, 1)])
    assert typed.env_cfg.mp_cfg.mp_start_method == "fork"
    assert typed.compile.mode == "max-autotune" and typed.compile.backend == "inductor"
    assert typed.plugins.disable == ["example_logger"]


def test_unknown_nested_key_names_path_file_line_and_suggestion():
    errors = check(
        {"train_cfg": {"by_epoch": True, "max_epoch": 3}},
        provenance={"train_cfg.by_epoch": f"{YAML}:2:3", "train_cfg.max_epoch": f"{YAML}:3:3"},
    )
    assert len(errors) >= 1
    err = errors[0]
    assert isinstance(err, ConfigError)
    assert err.message == "unknown key 'train_cfg.max_epoch'"
    assert err.where == f"{YAML}:3:3, key train_cfg.max_epoch"
    assert err.hint.startswith("did you mean 'max_epochs'")


@pytest.mark.parametrize(
    ("data", "path", "expected"),
    [
        ({"train_cfg": {"by_epoch": True, "max_epochs": "two"}}, "train_cfg.max_epochs", "got 'two' (a string)"),
        ({"train_cfg": {"by_epoch": True, "max_epochs": 3.5}}, "train_cfg.max_epochs", "got 3.5 (a number)"),
        ({"train_cfg": {"by_epoch": True, "max_epochs": True}}, "train_cfg.max_epochs", "got true (a boolean)"),
        ({"work_dir": 3}, "work_dir", "expected a string or null, got 3 (an integer)"),
        ({"randomness": {"seed": "0"}}, "randomness.seed", "got '0' (a string)"),
        ({"randomness": {"deterministic": 1}}, "randomness.deterministic", "got 1 (an integer)"),
        ({"launcher": "pytoch"}, "launcher", "must be one of 'none', 'pytorch', 'slurm', 'mpi'"),
        ({"log_level": "info"}, "log_level", "must be one of 'DEBUG', 'INFO'"),
        ({"resume": 1}, "resume", "expected a boolean (true/false) or a string"),
        ({"custom_hooks": {"type": "A"}}, "custom_hooks", "expected a list"),
        ({"default_hooks": {"logger": 3}}, "default_hooks.logger", "expected a mapping or null"),
        ({"train_dataloader": {"dataset": {"type": "D"}, "batch_size": 0}}, "train_dataloader.batch_size", "must be >= 1"),
        ({"train_cfg": {"max_epochs": 2, "dynamic_intervals": [[1, 2, 3]]}}, "train_cfg.dynamic_intervals.0",
         "a list of 2 items"),
        ({"auto_scale_lr": {"enable": True}}, "auto_scale_lr.base_batch_size", "required key is missing"),
        ({"train_dataloader": {"batch_size": 2}}, "train_dataloader.dataset", "required key is missing"),
    ],
)
def test_wrong_values_are_errors_with_their_key_path(data, path, expected):
    errors = check(data)
    assert errors, data
    text = "\n".join(messages(errors))
    assert f"key {path}" in text
    assert expected in text


def test_no_silent_coercion_in_structure():
    with pytest.raises(Exception):
        structure(Config({"work_dir": 3}))
    with pytest.raises(Exception):
        structure(Config({"train_cfg": {"max_epochs": "2"}}))
    assert structure(Config({"env_cfg": {"dist_cfg": {"timeout": 30}}})).env_cfg.dist_cfg.timeout == 30


def test_a_whole_float_is_an_integer():
    """``val_interval=1e6`` (Python configs' "never") structures as the integer 1000000."""
    cfg = structure(Config({"train_cfg": {"by_epoch": True, "max_epochs": 2, "val_interval": 1e6}}))
    assert cfg.train_cfg.val_interval == 1_000_000 and type(cfg.train_cfg.val_interval) is int
    assert not check({"train_cfg": {"by_epoch": True, "max_epochs": 2.0}})


def test_every_error_is_collected():
    errors = check(
        {
            "work_dir": 3,
            "train_cfg": {"by_epoch": True, "max_epochs": "two", "val_intervl": 1},
            "randomness": {"seed": 1.5},
            "log_level": "LOUD",
            "train_cgf": {},
        }
    )
    text = "\n".join(messages(errors))
    for needle in ("key work_dir", "key train_cfg.max_epochs", "unknown key 'train_cfg.val_intervl'",
                   "key randomness.seed", "key log_level", "unknown top-level key 'train_cgf'"):
        assert needle in text
    assert len(errors) == 6  # one each, none reported twice


def test_train_cfg_type_and_by_epoch_together_is_an_error():
    errors = check({"train_cfg": {"type": "MyLoop", "by_epoch": True, "max_epochs": 2}},
                   provenance={"train_cfg.type": "/p/child.yaml:3:3", "train_cfg.by_epoch": "/p/base.yaml:1:13"})
    assert [e.message for e in errors] == ["train_cfg has both 'type' and 'by_epoch'"]
    assert errors[0].where == "/p/child.yaml:3:3, key train_cfg.type"
    assert "not both" in errors[0].hint
    assert errors[0].hint.endswith("by_epoch comes from /p/base.yaml:1:13: add '_delete_: true' to this train_cfg "
                                   "to replace the base's")


@pytest.mark.parametrize(
    ("train_cfg", "message"),
    [
        ({"by_epoch": True, "max_iters": 100}, "train_cfg has by_epoch: true with max_iters"),
        ({"max_iters": 100}, "train_cfg has by_epoch left out (true) with max_iters"),
        ({"by_epoch": False, "max_epochs": 3}, "train_cfg has by_epoch: false with max_epochs"),
        ({"by_epoch": True}, "train_cfg with by_epoch: true needs max_epochs"),
        ({"val_interval": 2}, "train_cfg with by_epoch left out (true) needs max_epochs"),
        ({"by_epoch": False, "val_interval": 2}, "train_cfg with by_epoch: false needs max_iters"),
    ],
)
def test_train_loop_rules(train_cfg, message):
    assert [e.message for e in check({"train_cfg": train_cfg})] == [message]


def test_custom_loop_keys_are_not_checked_by_the_schema():
    assert check({"train_cfg": {"type": "MyLoop", "max_epochs": 2, "anything": [1]}}) == []


def test_train_val_test_sets_are_all_or_none():
    errors = check({"train_dataloader": {"dataset": {"type": "D"}}, "train_cfg": {"max_epochs": 1}}, sets=True)
    assert [e.message for e in errors] == [
        "train_dataloader, train_cfg given without optim_wrapper"
        " (train_dataloader, train_cfg, optim_wrapper should be either all None or not None)"
    ]
    errors = check({"val_evaluator": {"type": "Accuracy"}, "val_dataloader": None}, sets=True)
    assert [e.message for e in errors] == [
        "val_evaluator given without val_dataloader, val_cfg"
        " (val_dataloader, val_cfg, val_evaluator should be either all None or not None)"
    ]


def test_param_scheduler_needs_an_optimizer():
    errors = check({"param_scheduler": {"type": "MultiStepLR", "milestones": [1]}}, sets=True)
    assert [e.where for e in errors] == ["key param_scheduler"]
    assert "should be None when optim_wrapper is None" in errors[0].message


def test_partial_sets_refuse_a_runner_with_a_value_error(tmp_path):
    import pytest
    from kiln_toys import ToyModel, make_loader

    from torchkiln import Runner
    from torchkiln.config import ConfigValidationError

    with pytest.raises(ValueError, match="either all None or not None") as info:
        Runner(model=ToyModel(), work_dir=str(tmp_path), train_dataloader=make_loader(4, 2))
    assert isinstance(info.value, ConfigValidationError)


def test_unknown_top_level_key_is_an_error_with_suggestion():
    errors = check({"train_cgf": {"max_epochs": 3}}, provenance={"train_cgf.max_epochs": f"{YAML}:4:3"})
    assert len(errors) == 1
    err = errors[0]
    assert err.message == "unknown top-level key 'train_cgf'"
    assert err.where == f"{YAML}:4, key train_cgf"
    assert err.hint.startswith("did you mean 'train_cfg'?")
    assert "vars:" in err.hint


def test_referenced_user_variable_and_vars_are_accepted():
    data = {"data_root": "data/coco/", "vars": {"img_scale": [1333, 800]}, "work_dir": "x"}
    assert check(data, referenced=["data_root"]) == []
    assert check({"train_pipeline": [1]}, referenced=["_base_.train_pipeline"]) == []
    assert [e.message for e in check(data)] == ["unknown top-level key 'data_root'"]


def test_python_configs_only_warn_about_unused_values():
    cfg = Config({"dataset_type": "CocoDataset", "work_dir": "x"}, filename="/p/cfg.py",
                 provenance={"dataset_type": "/p/cfg.py", "work_dir": "/p/cfg.py"})
    with pytest.warns(ConfigWarning, match="top-level value 'dataset_type' is not a runner setting"):
        assert validate(cfg, components=False) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # a plain dict made in Python behaves like a .py config
        with pytest.raises(ConfigWarning):
            validate({"dataset_type": "x"}, components=False)


def test_an_override_that_adds_an_unused_top_level_key_is_an_error():
    cfg = Config({"extra": 1}, filename=YAML, provenance={"extra": "--cfg-options +extra=1"})
    errors = validate(cfg, components=False)
    assert [e.where for e in errors] == ["--cfg-options +extra=1, key extra"]


def test_values_added_from_python_only_warn():
    cfg = Config({"work_dir": "x"})
    cfg.merge_from_dict({"extra_value": 1})
    with pytest.warns(ConfigWarning, match="'extra_value'"):
        assert validate(cfg, components=False) == []
    loaded = yaml_cfg({"work_dir": "x"})
    loaded.merge_from_dict({"extra_value": 1})
    with pytest.warns(ConfigWarning, match="'extra_value'"):
        assert validate(loaded, components=False) == []
