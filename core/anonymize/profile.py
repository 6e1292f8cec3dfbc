"""Anonymization profiles: the versioned TOML format, its loader and the options.

A profile is data (``profiles/*.toml``): one rule per tag or tag pattern with
an action from PS3.15 Table E.1-1 and, per option column, the action that
replaces it when the option is chosen. This module parses and validates such
a file (every error names the file and line) and compiles it, for a set of
options, into the flat look-up tables the engine walks with: a dict
tag -> action plus a short list of masks, so no element ever meets a regex.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from dicomtools.core.errors import DicomToolsError, ExitStatus

log = logging.getLogger(__name__)

FORMAT = "dicomtools-anonymization-profile"
FORMAT_VERSION = 1
PROFILE_PACKAGE = "dicomtools.profiles"

# PS3.15 Table E.1-1 vocabulary; combined cells are chosen by the engine (see engine.py).
SINGLE_ACTIONS = ("D", "Z", "X", "K", "C", "U")
COMBINED_ACTIONS = ("Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*")
ACTIONS = SINGLE_ACTIONS + COMBINED_ACTIONS
# Lower rank = more protective; when several chosen options name a row, the most protective wins.
_RANK = {"X": 0, "Z": 1, "D": 2, "U": 3, "C": 4, "K": 5}

PRIVATE_SPELLINGS = ("private", "(gggg,eeee) where gggg is odd", "(gggg,eeee)")


class ProfileError(DicomToolsError, ValueError):
    """A profile file or option list that cannot be used; the message names file and line."""

    exit_status = ExitStatus.USAGE


@dataclass(frozen=True, slots=True)
class OptionInfo:
    """One option column of Table E.1-1 with its CID 7050 code."""

    short: str  # the seed tool's name, used in config and profile files
    long: str  # kebab-case long name accepted on the command line
    title: str  # the standard's name, also the CID 7050 code meaning
    code: str
    aliases: tuple[str, ...] = ()  # column headings of the standard's table


OPTIONS: tuple[OptionInfo, ...] = (
    OptionInfo("RetainSafePrivate", "retain-safe-private", "Retain Safe Private Option", "113111", ("rtnsafepriv",)),
    OptionInfo("RetainUIDs", "retain-uids", "Retain UIDs Option", "113110", ("rtnuids",)),
    OptionInfo("RetainDeviceIdent", "retain-device-identity", "Retain Device Identity Option", "113109", ("rtndevid",)),
    OptionInfo("RetainInstitutionIdent", "retain-institution-identity", "Retain Institution Identity Option", "113112", ("rtninstid",)),
    OptionInfo("RetainPatientChars", "retain-patient-characteristics", "Retain Patient Characteristics Option", "113108", ("rtnpatchars",)),
    OptionInfo("RetainLongFullDates", "retain-longitudinal-full-dates", "Retain Longitudinal Temporal Information Full Dates Option", "113106", ("rtnlongfulldates",)),
    OptionInfo("RetainLongModifDates", "retain-longitudinal-modified-dates", "Retain Longitudinal Temporal Information Modified Dates Option", "113107", ("rtnlongmodifdates",)),
    OptionInfo("CleanDesc", "clean-descriptors", "Clean Descriptors Option", "113105", ("cleandesc",)),
    OptionInfo("CleanStructdCont", "clean-structured-content", "Clean Structured Content Option", "113104", ("cleanstructcont", "cleanstructuredcont")),
    OptionInfo("CleanGraph", "clean-graphics", "Clean Graphics Option", "113103", ("cleangraph",)),
)
OPTION_BY_SHORT = {o.short: o for o in OPTIONS}
BASIC_PROFILE_CODE = ("113100", "Basic Application Confidentiality Profile")
CID7050_MEANINGS = {BASIC_PROFILE_CODE[0]: BASIC_PROFILE_CODE[1], "113101": "Clean Pixel Data Option",
                    "113102": "Clean Recognizable Visual Features Option"}
CID7050_MEANINGS.update({o.code: o.title for o in OPTIONS})


def _norm(text: str) -> str:
    n = re.sub(r"[^a-z0-9]", "", text.lower())
    for tail in ("option", "opt"):
        if n.endswith(tail) and len(n) > len(tail):
            n = n[: -len(tail)]
    return n


_OPTION_LOOKUP: dict[str, str] = {}
for _o in OPTIONS:
    for _spelling in (_o.short, _o.long, _o.title, *_o.aliases):
        _OPTION_LOOKUP[_norm(_spelling)] = _o.short
_OPTION_LOOKUP["retaindeviceident"] = "RetainDeviceIdent"
_OPTION_LOOKUP["retaininstitutionident"] = "RetainInstitutionIdent"
_OPTION_LOOKUP["retainlongitudinaltemporalinformationwithfulldates"] = "RetainLongFullDates"
_OPTION_LOOKUP["retainlongitudinaltemporalinformationwithmodifieddates"] = "RetainLongModifDates"


def option_short_name(text: str) -> str | None:
    """The short name of an option spelled any accepted way (short, long, the standard's title)."""
    return _OPTION_LOOKUP.get(_norm(text))


def resolve_options(names: Iterable[str]) -> frozenset[str]:
    """Short names for user-given option names; unknown or contradictory ones raise."""
    out: set[str] = set()
    for raw in names:
        for part in re.split(r"[,\s]+", raw.strip()):
            if not part:
                continue
            short = option_short_name(part)
            if short is None:
                known = ", ".join(f"{o.short} ({o.long})" for o in OPTIONS)
                raise ProfileError(f"unknown option {part!r}; known options: {known}")
            out.add(short)
    if {"RetainLongFullDates", "RetainLongModifDates"} <= out:
        raise ProfileError("options RetainLongFullDates and RetainLongModifDates exclude each other")
    return frozenset(out)


def normalize_action(text: str) -> str | None:
    """Canonical spelling of an action cell, or None when it is not in the vocabulary."""
    cell = re.sub(r"\s+", "", text).upper()
    return cell if cell in ACTIONS else None


# -- tag specifications ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TagSpec:
    """What a rule matches: one tag, a masked tag, all private tags, or one private tag of a creator.

    ``kind`` is ``tag`` (value is the tag), ``mask`` (``tag & mask == value``),
    ``private`` (odd groups), ``creator`` (group, low element byte and
    private creator string; value = group << 16 | low byte) or ``regex`` (the
    seed tool's files: a regular expression over ``gggg,eeee`` in ``creator``,
    searched case-insensitively and unanchored; the first matching row wins).
    """

    kind: str
    value: int
    mask: int = 0xFFFFFFFF
    creator: str = ""

    def matches(self, tag: int) -> bool:
        if self.kind == "regex":
            return re.search(self.creator, f"{tag >> 16:04X},{tag & 0xFFFF:04X}", re.IGNORECASE) is not None
        if self.kind == "private":
            return bool(tag & 0x10000)
        if self.kind == "creator":
            return (tag >> 16) == (self.value >> 16) and (tag & 0xFF) == (self.value & 0xFF) and (tag & 0xFF00) >= 0x1000
        return (tag & self.mask) == self.value

    def example(self) -> int:
        """A concrete tag this spec matches (for tests and docs)."""
        if self.kind == "private":
            return 0x00091010
        if self.kind == "creator":
            return (self.value & 0xFFFF0000) | 0x1000 | (self.value & 0xFF)
        if self.kind == "mask" and not self.mask & 0xFFFF:
            return self.value | 0x0010  # not the group length (xxxx,0000)
        return self.value

    def text(self) -> str:
        if self.kind == "regex":
            return self.creator
        if self.kind == "private":
            return "private"
        if self.kind == "creator":
            return f"({self.value >> 16:04X},xx{self.value & 0xFF:02X})"
        digits = []
        for shift in range(28, -1, -4):
            nibble_mask = (self.mask >> shift) & 0xF
            digits.append(f"{(self.value >> shift) & 0xF:X}" if nibble_mask else "x")
        s = "".join(digits)
        return f"({s[:4]},{s[4:]})"


_TAG_RE = re.compile(r"^\(?\s*([0-9A-Fa-fxX]{4})\s*,\s*([0-9A-Fa-fxX]{4})\s*\)?$")
_TAG8_RE = re.compile(r"^[0-9A-Fa-f]{8}$")


def parse_tag_spec(text: str, creator: str = "") -> TagSpec:
    """Parse ``(gggg,eeee)``, ``gggg,eeee``, ``ggggeeee``, masks with ``x`` digits, ``private``, a keyword."""
    t = text.strip()
    if t.lower() in PRIVATE_SPELLINGS:
        if creator:
            raise ValueError("'creator' needs a tag like (0019,xx0C), not the private pattern")
        return TagSpec("private", 0x00010000, 0x00010000)
    m = _TAG_RE.match(t)
    if m or _TAG8_RE.match(t):
        g, e = (m.group(1), m.group(2)) if m else (t[:4], t[4:])
        g, e = g.lower(), e.lower()
        if creator:
            if "x" in g or not e.startswith("xx") or "x" in e[2:]:
                raise ValueError(f"tag {text!r} with a creator must look like (gggg,xxEE)")
            group = int(g, 16)
            if not group & 1:
                raise ValueError(f"tag {text!r} has a creator but an even (public) group")
            return TagSpec("creator", (group << 16) | int(e[2:], 16), creator=creator)
        digits = g + e
        value = mask = 0
        for ch in digits:
            value <<= 4
            mask <<= 4
            if ch != "x":
                value |= int(ch, 16)
                mask |= 0xF
        return TagSpec("tag" if mask == 0xFFFFFFFF else "mask", value, mask)
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", t):
        from pydicom.datadict import tag_for_keyword

        tag = tag_for_keyword(t)
        if tag is None:
            raise ValueError(f"unknown keyword {t!r}")
        if creator:
            raise ValueError("'creator' is only for private tags like (0019,xx0C)")
        return TagSpec("tag", int(tag))
    raise ValueError(f"cannot read tag {text!r} (expected (gggg,eeee), a mask like (50xx,xxxx), 'private' or a keyword)")


# -- the profile --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """One row: a tag spec, its base action and the actions chosen options put in its place."""

    spec: TagSpec
    action: str
    name: str = ""
    options: tuple[tuple[str, str], ...] = ()  # (option short name, action), file order
    line: int = 0
    last_wins: bool = False  # seed files: the last chosen option column with a cell wins

    def effective(self, options: Collection[str]) -> str:
        """The action with these options: the most protective action among the chosen option columns
        (a seed file's rule: the last chosen column, in the order of :data:`OPTIONS`)."""
        chosen = [a for o, a in self.options if o in options]
        if not chosen:
            return self.action
        if self.last_wins:
            return chosen[-1]
        return min(chosen, key=lambda a: _RANK[a[0]])


@dataclass(slots=True)
class Profile:
    name: str
    title: str = ""
    description: str = ""
    source: str = ""
    profile_version: str = "1"
    codes: tuple[str, ...] = ()  # CID 7050 codes the profile itself claims (113100 for Basic)
    default_options: tuple[str, ...] = ()
    not_claimed: tuple[str, ...] = ()  # options this profile applies differently: no code written
    rules: list[Rule] = field(default_factory=list)
    path: str = ""

    def compile(self, options: Collection[str] | None = None) -> CompiledProfile:
        chosen = frozenset(self.default_options if options is None else options)
        unknown = sorted(o for o in chosen if o not in OPTION_BY_SHORT)
        if unknown:
            raise ProfileError(f"unknown option(s): {', '.join(unknown)}")
        if {"RetainLongFullDates", "RetainLongModifDates"} <= chosen:
            raise ProfileError("options RetainLongFullDates and RetainLongModifDates exclude each other")
        exact: dict[int, str] = {}
        masks: list[tuple[int, int, str]] = []
        creators: dict[tuple[int, int, str], str] = {}
        regexes: list[tuple[re.Pattern[str], str]] = []
        private_action = "X"
        for rule in self.rules:
            action = rule.effective(chosen)
            spec = rule.spec
            if spec.kind == "regex":
                regexes.append((re.compile(spec.creator, re.IGNORECASE), action))
            elif spec.kind == "tag":
                exact[spec.value] = action
            elif spec.kind == "mask":
                masks.append((spec.value, spec.mask, action))
            elif spec.kind == "private":
                private_action = action
            else:
                creators[(spec.value >> 16, spec.value & 0xFF, spec.creator.strip())] = action
        # most specific mask first
        masks.sort(key=lambda m: -bin(m[1]).count("1"))
        return CompiledProfile(self, chosen, exact, tuple(masks), creators, private_action, tuple(regexes))

    def claimed_codes(self, options: Collection[str]) -> list[tuple[str, str]]:
        """CID 7050 (code, meaning) pairs for (0012,0064): the profile's own plus chosen options'."""
        out = [(c, CID7050_MEANINGS.get(c, c)) for c in self.codes]
        for o in OPTIONS:
            if o.short in options and o.short not in self.not_claimed:
                out.append((o.code, o.title))
        return out


@dataclass(frozen=True, slots=True)
class CompiledProfile:
    """A profile with its options applied: what the engine consults per element."""

    profile: Profile
    options: frozenset[str]
    exact: dict[int, str]
    masks: tuple[tuple[int, int, str], ...]
    creators: dict[tuple[int, int, str], str]
    private_action: str
    regexes: tuple[tuple[re.Pattern[str], str], ...] = ()  # seed files: (pattern, action), first match wins

    @property
    def retain_uids(self) -> bool:
        return "RetainUIDs" in self.options

    @property
    def modified_dates(self) -> bool:
        return "RetainLongModifDates" in self.options

    @property
    def full_dates(self) -> bool:
        return "RetainLongFullDates" in self.options

    @property
    def keeps_private(self) -> bool:
        """Whether any private element can survive (Retain Safe Private or a profile keeping them)."""
        if self.private_action != "X" or self.regexes:
            return True
        return any(a != "X" for a in self.creators.values())

    def action_for(self, tag: int, creator: str = "") -> str | None:
        """The action for a tag (None = not listed); slow path for tests and tools, the engine inlines it."""
        action = self.exact.get(tag)
        if action is not None:
            return action
        if tag & 0x10000:
            if (tag & 0xFFFF) < 0x1000:
                return self.private_action
            return self.creators.get((tag >> 16, tag & 0xFF, creator.strip()), self.private_action)
        for value, mask, act in self.masks:
            if tag & mask == value:
                return act
        text = f"{tag >> 16:04X},{tag & 0xFFFF:04X}"
        return next((act for pattern, act in self.regexes if pattern.search(text)), None)


# -- reading files ------------------------------------------------------------------------

_TOP_KEYS = {
    "format", "format_version", "name", "title", "description", "source", "profile_version",
    "codes", "default_options", "not_claimed", "rules",
}
_RULE_KEYS = {"tag", "action", "name", "options", "creator", "note"}


def _rule_lines(text: str) -> list[int]:
    """Line numbers (1-based) of each rule's ``tag =`` key, in file order."""
    lines: list[int] = []
    pattern = re.compile(r"(?:^|[{,\s])tag\s*=")
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.split("#", 1)[0] if '"' not in line else line
        lines.extend(number for _ in pattern.finditer(stripped))
    return lines


def parse_profile_toml(text: str, path: str = "<profile>") -> Profile:
    """Build a :class:`Profile` from TOML text; raise :class:`ProfileError` naming the line."""
    import tomllib  # deferred: a cached profile (profile_cache) never needs the parser

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: TOML syntax error: {exc}") from None
    for key in data:
        if key not in _TOP_KEYS:
            raise ProfileError(f"{path}: unknown key {key!r} (known: {', '.join(sorted(_TOP_KEYS))})")
    if data.get("format") != FORMAT:
        raise ProfileError(f"{path}: not a dicomtools profile (expected format = \"{FORMAT}\")")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise ProfileError(f"{path}: format_version {version!r} not supported (this version reads {FORMAT_VERSION})")
    rules_raw = data.get("rules", [])
    if not isinstance(rules_raw, list) or not rules_raw:
        raise ProfileError(f"{path}: 'rules' must be a non-empty array of rules")
    line_of = _rule_lines(text)

    def where(i: int) -> str:
        return f"{path}:{line_of[i]}" if i < len(line_of) else f"{path}: rule #{i + 1}"

    rules: list[Rule] = []
    for i, raw in enumerate(rules_raw):
        if not isinstance(raw, dict):
            raise ProfileError(f"{where(i)}: a rule must be a table like {{ tag = \"(0010,0010)\", action = \"Z\" }}")
        rules.append(_rule_from_mapping(raw, where(i), line_of[i] if i < len(line_of) else 0))
    profile = Profile(
        name=str(data.get("name") or Path(path).stem),
        title=str(data.get("title", "")),
        description=str(data.get("description", "")),
        source=str(data.get("source", "")),
        profile_version=str(data.get("profile_version", "1")),
        codes=tuple(str(c) for c in data.get("codes", [])),
        default_options=_option_list(data.get("default_options", []), path, "default_options"),
        not_claimed=_option_list(data.get("not_claimed", []), path, "not_claimed"),
        rules=rules,
        path=path,
    )
    check_duplicates(profile)
    return profile


def _option_list(value: Any, path: str, key: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ProfileError(f"{path}: '{key}' must be a list of option names")
    try:
        return tuple(sorted(resolve_options(str(v) for v in value)))
    except ProfileError as exc:
        raise ProfileError(f"{path}: '{key}': {exc}") from None


def _rule_from_mapping(raw: dict[str, Any], where: str, line: int) -> Rule:
    for key in raw:
        if key not in _RULE_KEYS:
            raise ProfileError(f"{where}: unknown key {key!r} in rule (known: {', '.join(sorted(_RULE_KEYS))})")
    if "tag" not in raw or "action" not in raw:
        raise ProfileError(f"{where}: a rule needs 'tag' and 'action'")
    try:
        spec = parse_tag_spec(str(raw["tag"]), str(raw.get("creator", "")))
    except ValueError as exc:
        raise ProfileError(f"{where}: {exc}") from None
    action = normalize_action(str(raw["action"]))
    if action is None:
        raise ProfileError(f"{where}: unknown action {raw['action']!r} for {raw['tag']} (expected one of {', '.join(ACTIONS)})")
    opts = raw.get("options", {})
    if not isinstance(opts, dict):
        raise ProfileError(f"{where}: 'options' must be a table like {{ RetainUIDs = \"K\" }}")
    pairs: list[tuple[str, str]] = []
    for name, value in opts.items():
        short = option_short_name(name)
        if short is None:
            raise ProfileError(f"{where}: unknown option {name!r} (known: {', '.join(o.short for o in OPTIONS)})")
        act = normalize_action(str(value))
        if act is None:
            raise ProfileError(f"{where}: unknown action {value!r} for option {name} (expected one of {', '.join(ACTIONS)})")
        pairs.append((short, act))
    return Rule(spec, action, str(raw.get("name", "")), tuple(pairs), line)


def check_duplicates(profile: Profile) -> None:
    seen: dict[tuple[str, int, int, str], Rule] = {}
    for rule in profile.rules:
        key = (rule.spec.kind, rule.spec.value, rule.spec.mask, rule.spec.creator)
        if key in seen:
            first = seen[key]
            raise ProfileError(
                f"{profile.path}:{rule.line}: {rule.spec.text()} is listed twice (first on line {first.line})"
            )
        seen[key] = rule


def builtin_profiles() -> list[str]:
    """Names of the profiles shipped in ``dicomtools.profiles``."""
    root = resources.files(PROFILE_PACKAGE)
    return sorted(p.name[: -len(".toml")] for p in root.iterdir() if p.name.endswith(".toml"))
