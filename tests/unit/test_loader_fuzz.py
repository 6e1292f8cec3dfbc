"""Config and profile loaders on arbitrary input: a clear one-line error, never a traceback."""

from __future__ import annotations

from pathlib import Path

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dicomtools.core.anonymize.profile import ProfileError, parse_profile_toml
from dicomtools.core.anonymize.profile_files import load_profile
from dicomtools.core.cli.main import main
from dicomtools.core.config import ConfigError, load_config

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

keys = st.sampled_from(
    ["local", "nodes", "machines", "anonymize", "logging", "ae_title", "scp_port", "host", "port", "called_ae",
     "tls", "mapping", "defaults", "profile", "options", "level", "rules", "tag", "action", "format",
     "format_version", "name", "default_options", "codes", "x", "aria"]
)
scalars = st.one_of(st.integers(-(2**40), 2**40), st.text(max_size=12), st.booleans(), st.floats(allow_nan=False))
values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)),
    max_leaves=12,
)
documents = st.dictionaries(keys, values, max_size=5)


def _one_line(exc: Exception) -> None:
    text = str(exc)
    assert text and "\n" not in text and "Traceback" not in text


@FUZZ
@given(doc=documents)
def test_config_loader_structured(tmp_path: Path, doc: dict) -> None:
    path = tmp_path / "config.toml"
    path.write_text(tomli_w.dumps(doc))
    try:
        load_config(path)
    except ConfigError as exc:
        _one_line(exc)
        assert str(path) in str(exc)


@FUZZ
@given(text=st.text(max_size=200))
def test_config_loader_raw_text(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(text.encode("utf-8", errors="surrogatepass"))  # invalid UTF-8 included
    try:
        load_config(path)
    except ConfigError as exc:
        _one_line(exc)


@FUZZ
@given(doc=documents)
def test_profile_parser_structured(doc: dict) -> None:
    doc.setdefault("format", "dicomtools-anonymization-profile")
    try:
        parse_profile_toml(tomli_w.dumps(doc), "fuzz.toml")
    except ProfileError as exc:
        _one_line(exc)


@FUZZ
@given(text=st.text(max_size=200))
def test_profile_parser_raw_text(text: str) -> None:
    try:
        parse_profile_toml(text, "fuzz.toml")
    except ProfileError as exc:
        _one_line(exc)


@FUZZ
@given(rules=st.lists(st.dictionaries(st.sampled_from(["tag", "action", "name", "creator", "options"]),
                                      st.one_of(st.text(max_size=14), st.dictionaries(st.text(max_size=8), st.text(max_size=4), max_size=2)),
                                      max_size=5), max_size=5))
def test_profile_rules_fuzz(rules: list[dict]) -> None:
    doc = {"format": "dicomtools-anonymization-profile", "format_version": 1, "name": "f", "rules": rules}
    try:
        parse_profile_toml(tomli_w.dumps(doc), "fuzz.toml")
    except ProfileError as exc:
        _one_line(exc)


def test_bad_files_through_the_cli(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "c.toml"
    cfg.write_text("[nodes.a]\nhost = 3\n[[[")
    assert main(["echo", "--config", str(cfg), "--node", "a"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(cfg) in err
    prof = tmp_path / "p.toml"
    prof.write_text('format = "dicomtools-anonymization-profile"\nformat_version = 1\nrules = [{tag = "(0010,0010)", action = "Q"}]\n')
    try:
        load_profile(prof)
    except ProfileError as exc:
        assert "p.toml" in str(exc)
    else:
        raise AssertionError("unknown action accepted")
