"""Properties of load, dump and overrides, checked on generated configs (hypothesis)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from torchkiln.config import Config, loads
from torchkiln.config.loader import dump_yaml

KEYS = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True).filter(lambda k: k not in {"vars"})
TEXT = st.one_of(
    st.sampled_from(["", "yes", "no", "null", "~", "true", "1.5", "0x10", "a: b", "#x", "- a", "'q'", '"d"',
                     " lead", "trail ", "multi\nline", "tab\there", "ünï", "{a}", "[1]", "*star", "&amp", "!tag",
                     "%p", "@at", "`bt`", "|", ">", "1e3", ".inf", "-", "?", "a,b"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12),
).filter(lambda s: "${" not in s and "{{" not in s)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**62), max_value=2**62),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(KEYS, children, max_size=4),
    ),
    max_leaves=12,
)
CONFIGS = st.dictionaries(KEYS, VALUES, min_size=1, max_size=6)

# Strings the loader would act on: references, MMEngine placeholders, their escapes.
REF_TEXT = st.one_of(
    st.sampled_from(["${a}", "${root}/x", "\\${a}", "\\\\${a}", "$${", "${${", "{{$HOME}}",
                     "{{_base_.a}}", "x {{$K:1}} y", "{{{", "{{{{", "\\{{", "${{a}}}", "a}}{{b", "${env:HOME}"]),
    st.text(alphabet="${}\\a.", max_size=10),
)
REF_VALUES = st.recursive(
    st.one_of(SCALARS, REF_TEXT),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=4)),
    max_leaves=12,
)
REF_CONFIGS = st.dictionaries(KEYS, REF_VALUES, min_size=1, max_size=6)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(CONFIGS)
def test_load_dump_load_is_a_fixed_point(data):
    first = loads(json.dumps(data), "json")
    assert first.to_dict() == data
    text = first.dump()
    assert dump_yaml(data) == text
    second = loads(text, "yaml")
    assert second.to_dict() == data
    assert second.dump() == text


@SETTINGS
@given(REF_CONFIGS)
def test_dumped_literal_references_load_back_unchanged(data):
    """A config holding literal ``${`` / ``{{`` text dumps to YAML and JSON that load back to it."""
    import tempfile
    from pathlib import Path

    cfg = Config(data)
    text = cfg.dump()
    assert text == dump_yaml(data, escape_refs=True)
    again = loads(text, "yaml")
    assert again.to_dict() == data
    assert again.dump() == text
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cfg.json"
        cfg.dump(path)
        assert Config.fromfile(path).to_dict() == data


def _leaves(node, path=()):
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list) and node:
        for i, value in enumerate(node):
            yield from _leaves(value, (*path, str(i)))
    else:
        yield path, node


def _flow(value) -> str:
    """A value as YAML flow text for an override (JSON is YAML)."""
    return json.dumps(value, ensure_ascii=False)


@SETTINGS
@given(CONFIGS, st.data())
def test_an_override_then_its_inverse_restores_the_config(data, draw):
    leaves = [(p, v) for p, v in _leaves(data) if p]
    path, old = draw.draw(st.sampled_from(leaves))
    new = draw.draw(SCALARS)
    key = ".".join(path)
    base = loads(json.dumps(data), "json")
    changed = loads(json.dumps(data), "json", [f"{key}={_flow(new)}"])
    node = changed.to_dict()
    for part in path:
        node = node[int(part)] if isinstance(node, list) else node[part]
    assert node == new
    restored = loads(json.dumps(data), "json", [f"{key}={_flow(new)}", f"{key}={_flow(old)}"])
    assert restored.to_dict() == base.to_dict() == data


@SETTINGS
@given(CONFIGS, CONFIGS)
def test_merge_from_dict_of_a_full_config_is_the_recursive_merge(base, child):
    cfg = Config(base)
    cfg.merge_from_dict(child)

    def merged(a, b):
        if isinstance(a, dict) and isinstance(b, dict):
            out = dict(a)
            for k, v in b.items():
                out[k] = merged(a.get(k), v)
            return out
        return b

    assert cfg.to_dict() == merged(base, child)
