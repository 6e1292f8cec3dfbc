"""CSV/TSV import of tag/action tables, and the generator of ``profiles/*.toml``.

People bring their own tables: the standard's Table E.1-1 pasted into a
spreadsheet (columns "Basic Prof.", "Rtn. UIDs Opt." ...) or a short list
``tag,action[,name][,<option columns>]``. :func:`read_table` turns either into
a :class:`Profile`; every problem is an error naming the line.

:func:`profile_from_standard` reads PS3.15 2026c Table E.1-1 as published
(``profiles/standard/``, packaged) and :func:`dump_profile_toml` writes our
format, one rule per line. Regenerate the shipped profiles with::

    python -m dicomtools.core.anonymize.tsv_import basic profiles/basic.toml
    python -m dicomtools.core.anonymize.tsv_import aria profiles/aria.toml
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dicomtools.core.anonymize.profile import (
    ACTIONS,
    FORMAT,
    FORMAT_VERSION,
    OPTIONS,
    Profile,
    ProfileError,
    Rule,
    TagSpec,
    check_duplicates,
    normalize_action,
    option_short_name,
    parse_tag_spec,
)
from dicomtools.core.anonymize.standard import EDITION, TABLE_E1_1, read_tsv

log = logging.getLogger(__name__)

_TAG_HEADERS = {"tag", "tags", "attributetag", "dicomtag", "tagpattern"}
_NAME_HEADERS = {"name", "attributename", "attribute", "keyword", "description"}
_ACTION_HEADERS = {"action", "basicprof", "basicprofile", "basic", "basicaction"}
_OVERRIDE_HEADERS = {"overrides", "options"}
_IGNORED_HEADERS = {"retired", "instdcompiod", "stdcompiod", "incompiod", "comment", "comments", "note", "notes"}


def _head(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


# -- tag cells: also the regular-expression spelling of the seed tool's files ------------


def regex_to_spec(pattern: str) -> TagSpec:
    """Translate the seed's simple tag regexes (``50[0-9A-F]{2},[0-9A-F]{4}``) into a mask spec.

    Only hex literals, ``[0-9A-F]`` (any digit), ``[13579BDF]`` (odd; only as
    the last group digit = private) and ``{n}`` repeats are understood.
    """
    body = pattern.strip().lstrip("^").rstrip("$").replace("(", "").replace(")", "")
    if "," not in body:
        raise ValueError(f"cannot read tag pattern {pattern!r}")
    digits: list[str] = []
    pos = 0
    while pos < len(body):
        ch = body[pos]
        if ch == ",":
            if len(digits) != 4:
                raise ValueError(f"tag pattern {pattern!r}: the group must have 4 digits")
            pos += 1
            continue
        if ch == "[":
            end = body.index("]", pos)
            cls = body[pos + 1 : end].upper().replace("A-F", "ABCDEF")
            if cls in ("0-9ABCDEF", "0-9ABCDEFABCDEF"):
                token = "x"
            elif cls == "13579BDF":
                token = "odd"
            else:
                raise ValueError(f"tag pattern {pattern!r}: class [{cls}] not understood")
            pos = end + 1
        elif ch == ".":
            token, pos = "x", pos + 1
        elif ch.upper() in "0123456789ABCDEF":
            token, pos = ch.lower(), pos + 1
        else:
            raise ValueError(f"tag pattern {pattern!r}: {ch!r} not understood")
        count = 1
        m = re.match(r"\{(\d+)\}", body[pos:])
        if m:
            count = int(m.group(1))
            pos += m.end()
        digits.extend([token] * count)
    if len(digits) != 8:
        raise ValueError(f"tag pattern {pattern!r} does not describe 8 hex digits")
    if "odd" in digits:
        if digits.index("odd") != 3 or digits.count("odd") != 1 or any(d != "x" for i, d in enumerate(digits) if i != 3):
            raise ValueError(f"tag pattern {pattern!r}: odd-digit class only supported as 'all private groups'")
        return TagSpec("private", 0x00010000, 0x00010000)
    return parse_tag_spec(f"({''.join(digits[:4])},{''.join(digits[4:])})")


def parse_tag_cell(text: str, creator: str = "") -> TagSpec:
    try:
        return parse_tag_spec(text, creator)
    except ValueError as first:
        if any(c in text for c in "[{.^$"):
            return regex_to_spec(text)
        raise first


def _overrides(cell: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for part in re.split(r"[;,]", cell):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise ValueError(f"override {part!r}: expected Option=Action")
        name, act = (s.strip() for s in part.split("=", 1))
        short = option_short_name(name)
        if short is None:
            raise ValueError(f"unknown option {name!r} (known: {', '.join(o.short for o in OPTIONS)})")
        action = normalize_action(act)
        if action is None:
            raise ValueError(f"unknown action {act!r} for option {name} (expected one of {', '.join(ACTIONS)})")
        pairs.append((short, action))
    return pairs


# -- user tables ------------------------------------------------------------------------------


@dataclass
class _Columns:
    tag: int
    action: int
    name: int | None
    overrides: int | None
    options: dict[int, str]  # column index -> option short name


def _columns(header: list[str], where: str) -> _Columns:
    tag = action = None
    name = overrides = None
    options: dict[int, str] = {}
    for i, cell in enumerate(header):
        h = _head(cell)
        if not h:
            continue
        if h in _TAG_HEADERS and tag is None:
            tag = i
        elif h in _ACTION_HEADERS and action is None:
            action = i
        elif h in _NAME_HEADERS and name is None:
            name = i
        elif h in _OVERRIDE_HEADERS:
            overrides = i
        elif option_short_name(cell) is not None:
            options[i] = option_short_name(cell) or ""
        elif h in _IGNORED_HEADERS:
            continue
        else:
            raise ProfileError(
                f"{where}:1: unknown column {cell!r} (expected tag, action, name, overrides "
                f"or an option: {', '.join(o.short for o in OPTIONS)})"
            )
    if tag is None or action is None:
        raise ProfileError(f"{where}:1: the header needs a 'tag' and an 'action' (or 'Basic Prof.') column")
    return _Columns(tag, action, name, overrides, options)


def read_table(path: str | Path, text: str | None = None) -> Profile:
    """A profile from a CSV or TSV file with a header row; errors name the line."""
    p = Path(path)
    where = str(p)
    if text is None:
        try:
            text = p.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise ProfileError(f"profile file {where!r} not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ProfileError(f"cannot read profile {where!r}: {exc}") from None
    first = text.splitlines()[0] if text.strip() else ""
    if p.suffix.lower() == ".tsv" or "\t" in first:
        delimiter = "\t"
    elif ";" in first and "," not in first:
        delimiter = ";"
    else:
        delimiter = ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows = list(reader)
    if not rows:
        raise ProfileError(f"{where}: empty file")
    cols = _columns(rows[0], where)
    rules: list[Rule] = []
    for number, row in enumerate(rows[1:], 2):
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue

        def cell(i: int | None, row: list[str] = row) -> str:
            return row[i].strip() if i is not None and i < len(row) else ""

        tag_text = cell(cols.tag)
        try:
            spec = parse_tag_cell(tag_text)
        except ValueError as exc:
            raise ProfileError(f"{where}:{number}: {exc}") from None
        action = normalize_action(cell(cols.action))
        if action is None:
            raise ProfileError(
                f"{where}:{number}: unknown action {cell(cols.action)!r} for {tag_text} "
                f"(expected one of {', '.join(ACTIONS)})"
            )
        pairs: list[tuple[str, str]] = []
        for i, short in cols.options.items():
            value = cell(i)
            if not value:
                continue
            act = normalize_action(value)
            if act is None:
                raise ProfileError(f"{where}:{number}: unknown action {value!r} in column {rows[0][i]!r}")
            pairs.append((short, act))
        try:
            pairs += _overrides(cell(cols.overrides))
        except ValueError as exc:
            raise ProfileError(f"{where}:{number}: {exc}") from None
        rules.append(Rule(spec, action, cell(cols.name), tuple(pairs), number))
    if not rules:
        raise ProfileError(f"{where}: no rules")
    profile = Profile(name=p.stem, title=f"imported from {p.name}", source=where, rules=rules, path=where,
                      default_options=())
    check_duplicates(profile)
    return profile


# -- the standard's table -> shipped profiles -----------------------------------------------------

# Attributes pydicom knows that PS3.15 2026c Table E.1-1 does not list, kept out of both profiles:
# a birth date in another calendar is still a birth date.
EXTRA_ROWS: tuple[tuple[str, str, str], ...] = (
    ("(0010,0033)", "Patient's Birth Date in Alternative Calendar", "X"),
    ("(0010,0034)", "Patient's Death Date in Alternative Calendar", "X"),
    ("(0010,0035)", "Patient's Alternative Calendar", "X"),
)
ARIA_KEEPS = "aria-keeps-descriptors.tsv"

_META: dict[str, dict[str, object]] = {
    "basic": {
        "title": "DICOM Basic Application Level Confidentiality Profile",
        "description": "PS3.15 Table E.1-1, every attribute, with its option columns. Strict: descriptions, "
        "labels and names are cleaned with CleanDesc and removed without it, so the result does not "
        "re-import into ARIA as a plan with named structures; use 'aria' for that.",
        "codes": ["113100"],
        "not_claimed": [],
    },
    "aria": {
        "title": "ARIA-compatible: Basic Profile keeping the descriptors ARIA/Eclipse import needs",
        "description": "Like 'basic', but with CleanDesc the descriptive attributes (plan labels, structure set "
        "and ROI names, beam and series descriptions...) are kept instead of cleaned, so an anonymized "
        "plan re-imports into ARIA and retrieves by plan label still match. Kept text is not checked "
        "for identifiers: run 'dicomtools anonymize --verify'. Not a conforming Basic Profile, so no "
        "113100 code and no Clean Descriptors code are written.",
        "codes": [],
        "not_claimed": ["CleanDesc"],
    },
}
_DEFAULT_OPTIONS = ["CleanDesc", "RetainDeviceIdent"]

# Patient free text the seed's ARIA profile kept: ARIA import and plan matching never need it,
# and it is where names and histories hide, so our ARIA profile cleans it like Basic does
# (these are not in aria-keeps-descriptors.tsv).
ARIA_CLEANS_PATIENT_TEXT = frozenset(
    {"0008,4000", "0010,2000", "0010,2110", "0010,2180", "0010,21B0", "0010,4000", "0038,0500"}
)


def aria_keeps() -> frozenset[int]:
    """Tags whose CleanDesc action the ARIA profile turns from C into K (the seed's list less patient text)."""
    return frozenset(parse_tag_spec(r["tag"]).value for r in read_tsv(ARIA_KEEPS))


def profile_from_standard(variant: str) -> Profile:
    """Build the ``basic`` or ``aria`` profile from PS3.15 2026c Table E.1-1 (packaged)."""
    if variant not in _META:
        raise ProfileError(f"variant must be one of {', '.join(_META)}")
    keeps = aria_keeps() if variant == "aria" else frozenset()
    rules: list[Rule] = []
    for number, row in enumerate(read_tsv(TABLE_E1_1), 2):
        try:
            spec = parse_tag_spec(row["tag"])
        except ValueError as exc:
            raise ProfileError(f"{TABLE_E1_1}:{number}: {exc}") from None
        action = normalize_action(row["basic"])
        if action is None:
            raise ProfileError(f"{TABLE_E1_1}:{number}: unknown action {row['basic']!r}")
        pairs: list[tuple[str, str]] = []
        for option in OPTIONS:
            cell = row.get(option.short, "").strip()
            if not cell:
                continue
            act = normalize_action(cell)
            if act is None:
                raise ProfileError(f"{TABLE_E1_1}:{number}: unknown action {cell!r} ({option.short})")
            if option.short == "CleanDesc" and spec.kind == "tag" and spec.value in keeps:
                act = "K"
            pairs.append((option.short, act))
        name = "Private attributes (odd groups) not listed as safe" if spec.kind == "private" else row["name"]
        rules.append(Rule(spec, action, name, tuple(pairs), number))
    for tag, name, action in EXTRA_ROWS:
        rules.append(Rule(parse_tag_spec(tag), action, name, (), 0))
    meta = _META[variant]
    profile = Profile(
        name=variant,
        title=str(meta["title"]),
        description=str(meta["description"]),
        source=f"DICOM PS3.15 {EDITION} Table E.1-1 (private: Table E.3.10-1 with RetainSafePrivate)"
        + ("; descriptors kept as the seed tool's AriaSecurityProfile.csv did" if variant == "aria" else ""),
        profile_version="2",
        codes=tuple(str(c) for c in meta["codes"]),  # type: ignore[attr-defined]
        default_options=tuple(_DEFAULT_OPTIONS),
        not_claimed=tuple(str(c) for c in meta["not_claimed"]),  # type: ignore[attr-defined]
        rules=rules,
        path=TABLE_E1_1,
    )
    check_duplicates(profile)
    return profile


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _rule_sort_key(rule: Rule) -> tuple[int, int, int, str]:
    order = {"private": 0, "mask": 1, "creator": 2, "tag": 3, "regex": 4}[rule.spec.kind]
    return (order, rule.spec.value, rule.spec.mask, rule.spec.creator)


def dump_profile_toml(profile: Profile) -> str:
    """Our TOML format, one rule per line (sorted: patterns, private creators, then by tag)."""
    out = io.StringIO()
    w = out.write
    w("# dicomtools anonymization profile; format documented in the README (\"Anonymization profiles\").\n")
    w("# Generated by dicomtools.core.anonymize.tsv_import from the reference table; edit with care.\n")
    w(f"format = {_q(FORMAT)}\n")
    w(f"format_version = {FORMAT_VERSION}\n")
    w(f"name = {_q(profile.name)}\n")
    w(f"profile_version = {_q(profile.profile_version)}\n")
    w(f"title = {_q(profile.title)}\n")
    w(f"description = {_q(profile.description)}\n")
    w(f"source = {_q(profile.source)}\n")
    w(f"codes = [{', '.join(_q(c) for c in profile.codes)}]\n")
    w(f"default_options = [{', '.join(_q(o) for o in profile.default_options)}]\n")
    w(f"not_claimed = [{', '.join(_q(o) for o in profile.not_claimed)}]\n")
    w("# tag: (gggg,eeee) | mask with x digits (50xx,xxxx) | \"private\" | (gggg,xxee) + creator | keyword\n")
    w("# action: D Z X K C U Z/D X/Z X/D X/Z/D X/Z/U*; options = { Option = action } replace it when chosen\n")
    w("rules = [\n")
    for rule in sorted(profile.rules, key=_rule_sort_key):
        parts = [f"tag = {_q(rule.spec.text())}"]
        if rule.spec.kind == "creator":
            parts.append(f"creator = {_q(rule.spec.creator)}")
        parts.append(f"action = {_q(rule.action)}")
        if rule.name:
            parts.append(f"name = {_q(rule.name)}")
        if rule.options:
            inner = ", ".join(f"{o} = {_q(a)}" for o, a in rule.options)
            parts.append(f"options = {{ {inner} }}")
        w(f"  {{ {', '.join(parts)} }},\n")
    w("]\n")
    return out.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        sys.stderr.write("usage: python -m dicomtools.core.anonymize.tsv_import basic|aria OUT.toml\n")
        return 2
    from dicomtools.core.anonymize.profile import parse_profile_toml
    from dicomtools.core.atomic import atomic_write_bytes

    profile = profile_from_standard(args[0])
    text = dump_profile_toml(profile)
    parse_profile_toml(text, args[1])  # never write a file we could not read back
    atomic_write_bytes(args[1], text.encode("utf-8"))
    sys.stdout.write(f"{args[1]}: {len(profile.rules)} rules\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
