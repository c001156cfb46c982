"""The Config object: mapping and attribute access, copies, merge_from_dict."""

from __future__ import annotations

import copy
import pickle

import pytest

from torchkiln.config import Config, ConfigDict
from torchkiln.errors import ConfigError


def make() -> Config:
    return Config(
        {
            "model": {"type": "Net", "backbone": {"depth": 50, "out_indices": [0, 1]}},
            "param_scheduler": [{"type": "LinearLR", "end": 500}, {"type": "MultiStepLR", "milestones": [8, 11]}],
            "work_dir": "runs/a",
        },
        filename="/cfg/a.yaml",
        provenance={"work_dir": "/cfg/a.yaml:7:11"},
    )


def test_attribute_and_item_access_agree():
    cfg = make()
    assert cfg.model.backbone.depth == 50
    assert cfg["model"]["backbone"]["depth"] == 50
    assert cfg.model["type"] == "Net"
    assert cfg.param_scheduler[1].milestones == [8, 11]
    assert isinstance(cfg.model, ConfigDict) and isinstance(cfg.model, dict)
    assert isinstance(cfg.param_scheduler[0], ConfigDict)
    assert cfg.get("missing", 3) == 3
    assert cfg.model.get("neck") is None
    assert "model" in cfg and "neck" not in cfg
    assert list(cfg) == ["model", "param_scheduler", "work_dir"]
    assert len(cfg) == 3
    assert cfg.filename == "/cfg/a.yaml"
    assert cfg.provenance == {"work_dir": "/cfg/a.yaml:7:11"}


def test_missing_attribute_suggests_the_closest_key():
    cfg = make()
    with pytest.raises(AttributeError, match=r"no key 'modle'; did you mean 'model'\?"):
        _ = cfg.modle
    with pytest.raises(KeyError):
        _ = cfg["modle"]
    assert not hasattr(cfg.model, "neck")


def test_setting_values_wraps_dicts_and_lists():
    cfg = make()
    cfg.train_cfg = {"by_epoch": True, "max_epochs": 3}
    cfg["hooks"] = [{"type": "A"}]
    cfg.model.neck = {"type": "FPN"}
    assert cfg.train_cfg.max_epochs == 3
    assert cfg.hooks[0].type == "A"
    assert cfg.model.neck.type == "FPN"
    assert cfg.model.setdefault("head", {"n": 1}).n == 1
    del cfg.work_dir
    assert "work_dir" not in cfg
    with pytest.raises(AttributeError):
        cfg._private = 1


def test_to_dict_is_a_plain_independent_copy():
    cfg = make()
    plain = cfg.to_dict()
    assert type(plain) is dict and type(plain["model"]) is dict and type(plain["param_scheduler"][0]) is dict
    plain["model"]["backbone"]["depth"] = 101
    assert cfg.model.backbone.depth == 50
    assert cfg != plain
    assert cfg.to_dict()["model"]["backbone"] == {"depth": 50, "out_indices": [0, 1]}


def test_copies_and_pickle_are_independent_and_keep_metadata():
    cfg = make()
    deep = copy.deepcopy(cfg)
    also_deep = cfg.copy()
    shallow = copy.copy(cfg)
    deep.model.backbone.depth = 18
    also_deep.param_scheduler[0].end = 1
    assert cfg.model.backbone.depth == 50 and cfg.param_scheduler[0].end == 500
    assert deep.filename == cfg.filename and deep.provenance == cfg.provenance
    shallow.model.backbone.depth = 34  # shares nested dicts, like dict.copy()
    assert cfg.model.backbone.depth == 34
    restored = pickle.loads(pickle.dumps(cfg))
    assert restored == cfg and restored.filename == "/cfg/a.yaml" and isinstance(restored.model, ConfigDict)
    nested = pickle.loads(pickle.dumps(cfg.model))
    assert isinstance(nested, ConfigDict) and nested.backbone.depth == 34


def test_equality_with_dicts_and_configs():
    assert Config({"a": {"b": 1}}) == {"a": {"b": 1}}
    assert Config({"a": {"b": 1}}) == Config({"a": {"b": 1}})
    assert Config({"a": 1}) != Config({"a": 2})


def test_constructor_rejects_non_mappings():
    with pytest.raises(ConfigError, match="must be a mapping"):
        Config([1, 2])  # type: ignore[arg-type]


def test_merge_from_dict_creates_merges_and_indexes_lists():
    cfg = make()
    cfg.merge_from_dict(
        {
            "model.backbone.depth": 101,
            "model.backbone.norm_cfg": {"type": "BN"},
            "model.neck.type": "FPN",
            "param_scheduler.1.milestones": [16, 22],
            "train_cfg": {"max_epochs": 2},
        }
    )
    assert cfg.to_dict()["model"] == {
        "type": "Net",
        "backbone": {"depth": 101, "out_indices": [0, 1], "norm_cfg": {"type": "BN"}},
        "neck": {"type": "FPN"},
    }
    assert cfg.param_scheduler[1].milestones == [16, 22]
    assert cfg.train_cfg == {"max_epochs": 2}
    assert cfg.provenance["model.backbone.depth"] == "merge_from_dict"
    assert cfg.provenance["model.backbone.norm_cfg.type"] == "merge_from_dict"
    assert cfg.provenance["param_scheduler.1.milestones.0"] == "merge_from_dict"


def test_merge_from_dict_merges_dicts_unless_delete():
    cfg = Config({"model": {"backbone": {"depth": 50, "frozen": 1}}})
    cfg.merge_from_dict({"model.backbone": {"depth": 18}})
    assert cfg.to_dict() == {"model": {"backbone": {"depth": 18, "frozen": 1}}}
    cfg.merge_from_dict({"model.backbone": {"_delete_": True, "type": "Swin"}})
    assert cfg.to_dict() == {"model": {"backbone": {"type": "Swin"}}}


def test_merge_from_dict_follows_the_file_merge_for_delete():
    """A true ``_delete_`` replaces; it is dropped where a dict meets a key: as _native.merge."""
    from torchkiln import _native

    base = {"model": {"backbone": {"depth": 50, "frozen": 1}, "head": 3}}
    for child in (
        {"backbone": {"_delete_": "yes", "type": "Swin"}},
        {"backbone": {"_delete_": 1, "type": "Swin"}},
        {"backbone": {"_delete_": True, "type": "Swin", "norm": {"_delete_": True, "t": "GN"}}},
        {"head": {"_delete_": True, "x": [{"_delete_": False, "y": 1}]}},
        {"neck": {"_delete_": True, "x": 1}},
    ):
        cfg = Config(copy.deepcopy(base))
        cfg.merge_from_dict({"model": child})
        assert cfg.to_dict() == _native.merge(base, {"model": child}), child


def test_merge_from_dict_errors():
    cfg = make()
    with pytest.raises(ConfigError, match="out of range"):
        cfg.merge_from_dict({"param_scheduler.5.end": 1})
    with pytest.raises(ConfigError, match="indexes a list"):
        cfg.merge_from_dict({"param_scheduler.first.end": 1})


def test_fromfile_with_dict_options_creates_keys(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("model:\n  type: Net\n  depth: 50\n")
    cfg = Config.fromfile(path, cfg_options={"model.depth": 18, "work_dir": "w"})
    assert cfg.to_dict() == {"model": {"type": "Net", "depth": 18}, "work_dir": "w"}
    assert cfg.filename == str(path)


def test_dump_round_trips_through_yaml_and_json(tmp_path):
    cfg = make()
    text = cfg.dump(tmp_path / "out" / "cfg.yaml")
    assert (tmp_path / "out" / "cfg.yaml").read_text() == text
    assert Config.fromfile(tmp_path / "out" / "cfg.yaml").to_dict() == cfg.to_dict()
    assert cfg.pretty_text == text
    cfg.dump(tmp_path / "cfg.json")
    assert Config.fromfile(tmp_path / "cfg.json").to_dict() == cfg.to_dict()
    assert Config.fromstring(text, ".yaml") == cfg


def test_fromfile_with_override_strings_is_strict(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("model:\n  type: Net\n  depth: 50\n")
    cfg = Config.fromfile(path, cfg_options=["model.depth=18", "+model.width=4"])
    assert cfg.to_dict() == {"model": {"type": "Net", "depth": 18, "width": 4}}
    assert cfg.provenance["model.depth"] == "--cfg-options model.depth=18"
    with pytest.raises(ConfigError, match="does not exist"):
        Config.fromfile(path, cfg_options=["model.dpeth=18"])
