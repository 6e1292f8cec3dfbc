"""The fast indented JSON writer gives exactly the standard library's bytes (a public contract)."""

from __future__ import annotations

import json
import math
import os
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from dicomtools.core.archive.scan import scan
from dicomtools.core.phantom.manifest import PhantomManifest
from dicomtools.core.render.forest import forest_to_json, render_json
from dicomtools.core.render.jsontext import dumps_indented
from dicomtools.core.tree import build_forest

_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text()
_json = st.recursive(
    _leaf,
    lambda inner: st.lists(inner, max_size=4)
    | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=4),
    max_leaves=30,
)


def _standard(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False)


@given(_json)
def test_any_json_value_gives_the_standard_text(obj: Any) -> None:
    assert dumps_indented(obj) == _standard(obj)


def test_special_values_and_strings() -> None:
    for obj in (
        {"nan": math.nan, "inf": [math.inf, -math.inf]},
        {"ctl": "a\x00\x1b[2J\u2028\ud800", "é": "王^小東", "q": '"\\'},
        {1: "int key", None: "null key", 2.5: "float key", False: "bool key"},
        [[], {}, [[]], {"a": {}}],
        {"big": 10**30, "neg": -0.0, "small": 1e-300},
    ):
        assert dumps_indented(obj) == _standard(obj), obj


def test_the_phantom_tree_json(phantom: PhantomManifest) -> None:
    result = scan(phantom.root, workers=1)
    doc = forest_to_json(build_forest(result.instances), result.unreadable, {"elapsed_seconds": 0.25})
    text = dumps_indented(doc)
    assert text == _standard(doc)
    assert json.loads(text)["stats"]["instances"] == len(result.instances) > 0
    assert os.path.basename(result.instances[0].path) in text


def test_render_json_writes_the_instances_itself_and_gives_the_standard_bytes(phantom: PhantomManifest) -> None:
    result = scan(phantom.root, workers=1)
    patients = build_forest(result.instances)
    assert any(i.truncated for i in result.instances)  # the "truncated" key is written too
    stats = {"elapsed_seconds": 0.25}
    assert render_json(patients, result.unreadable, stats) == _standard(
        forest_to_json(patients, result.unreadable, stats)) + "\n"


def test_an_odd_value_in_an_instance_falls_back_to_the_standard_encoder(phantom: PhantomManifest) -> None:
    result = scan(phantom.root, workers=1)
    patients = build_forest(result.instances)
    odd = patients[0].plans[0].instances[0]
    odd.path = 12345  # type: ignore[assignment]  # not a string: the writer hands over to json.dumps
    doc = forest_to_json(patients, result.unreadable)
    assert render_json(patients, result.unreadable) == _standard(doc) + "\n"
    assert '"path": 12345' in render_json(patients, result.unreadable)
