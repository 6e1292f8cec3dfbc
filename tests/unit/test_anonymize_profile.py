"""The profile format: shipped profiles against the reference table, loader errors, CSV/TSV import."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from dicomtools.core.anonymize.profile import (
    OPTIONS,
    ProfileError,
    TagSpec,
    builtin_profiles,
    option_short_name,
    parse_profile_toml,
    parse_tag_spec,
    resolve_options,
)
from dicomtools.core.anonymize.profile_files import load_profile
from dicomtools.core.anonymize.tsv_import import (
    ARIA_CLEANS_PATIENT_TEXT,
    aria_keeps,
    dump_profile_toml,
    profile_from_standard,
    read_table,
    regex_to_spec,
)

# The seed tool's table (about PS3.15 2024e), carried in the repository: a missing file fails the run.
REFERENCE = Path(__file__).resolve().parents[1] / "data" / "anonymization-profiles.tsv"
PROFILES_DIR = Path(__file__).resolve().parents[2] / "profiles"
# PS3.15 2026c Table E.1-1 as published, packaged with the profiles.
STANDARD = PROFILES_DIR / "standard" / "ps3.15-2026c-table-e1-1.tsv"
DEFAULTS = ("CleanDesc", "RetainDeviceIdent")


def reference_rows() -> list[dict[str, str]]:
    with REFERENCE.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [r for r in rows if r["base_cell"].strip()]


def standard_rows() -> list[dict[str, str]]:
    with STANDARD.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def key(spec: TagSpec) -> str:
    return spec.text().upper().replace("X", "x")


def seed_spec(tag: str) -> TagSpec:
    return parse_tag_spec(tag) if "[" not in tag else regex_to_spec(tag)


def test_shipped_profiles_are_found_by_name() -> None:
    assert {"aria", "basic"} <= set(builtin_profiles())
    aria, basic = load_profile("ARIA"), load_profile("basic")
    assert aria.name == "aria" and basic.name == "basic"
    assert tuple(aria.default_options) == DEFAULTS
    assert "113100" in basic.codes and "113100" not in aria.codes
    assert "CleanDesc" in aria.not_claimed


@pytest.mark.parametrize("name", ["basic", "aria"])
def test_profile_holds_every_row_of_the_2026c_table_with_its_cells(name: str) -> None:
    """PS3.15 2026c Table E.1-1 as published: every row, the Basic cell, every option column."""
    profile = load_profile(name)
    by_tag = {key(r.spec): r for r in profile.rules}
    rows = standard_rows()
    assert len(rows) == 656
    keeps = aria_keeps() if name == "aria" else frozenset()
    for row in rows:
        rule = by_tag.pop(key(parse_tag_spec(row["tag"])))
        assert rule.action == row["basic"], row["tag"]
        want = {o.short: row[o.short] for o in OPTIONS if row[o.short]}
        spec = parse_tag_spec(row["tag"])
        if spec.kind == "tag" and spec.value in keeps:
            assert want["CleanDesc"] == "C", row["tag"]
            want["CleanDesc"] = "K"  # the ARIA profile's documented difference
        assert dict(rule.options) == want, row["tag"]
    # beyond the table: only the alternative-calendar dates pydicom knows (removed)
    assert sorted(by_tag) == ["(0010,0033)", "(0010,0034)", "(0010,0035)"]
    assert all(r.action == "X" and not r.options for r in by_tag.values())


def test_the_33_rows_new_since_the_seed_table_are_in_both_profiles() -> None:
    seed = {key(seed_spec(r["tag"])) for r in reference_rows()}
    new = [r for r in standard_rows() if key(parse_tag_spec(r["tag"])) not in seed and "odd" not in r["tag"]]
    assert len(new) == 33
    tags = {parse_tag_spec(r["tag"]).value for r in new}
    for tag in (0x00100012, 0x00100013, 0x00100041, 0x00100043, 0x0040E012, 0x00081301, 0x00700006):
        assert tag in tags, hex(tag)
    for name in ("basic", "aria"):
        compiled = load_profile(name).compile(DEFAULTS)
        for tag in tags:
            assert compiled.action_for(tag) is not None, hex(tag)
        assert compiled.action_for(0x00100012) == "X"  # Name to Use
        assert compiled.action_for(0x0040E012) == "X"  # Display URI


@pytest.mark.parametrize("name", ["basic", "aria"])
def test_seed_rows_keep_the_seed_cells_where_the_standard_did_not_change(name: str) -> None:
    """Every row of the seed's table (about 2024e) is still there with the seed's cell and options."""
    by_tag = {key(r.spec): r for r in load_profile(name).rules}
    for row in reference_rows():
        spec = seed_spec(row["tag"])
        rule = by_tag[key(spec)]
        assert rule.action == row["base_cell"], row["tag"]
        overrides = dict(p.split("=") for p in row[f"{name}_overrides"].split(",") if p)
        if name == "aria" and row["tag"].upper() in ARIA_CLEANS_PATIENT_TEXT:
            overrides["CleanDesc"] = "C"  # our one deliberate change: patient free text is cleaned
        if spec.value == 0x00321033:
            overrides["CleanDesc"] = "C"  # Requesting Service: 2026c added its Clean Descriptors cell
        assert dict(rule.options) == overrides, row["tag"]


@pytest.mark.parametrize("name", ["basic", "aria"])
def test_default_options_give_the_seed_tools_actions(name: str) -> None:
    """With CleanDesc + RetainDeviceIdent each seed row resolves as the seed's resolved column says."""
    profile = load_profile(name)
    by_tag = {key(r.spec): r for r in profile.rules}
    for row in reference_rows():
        spec = seed_spec(row["tag"])
        want = row[f"{name}_action"]
        if name == "aria" and row["tag"].upper() in ARIA_CLEANS_PATIENT_TEXT or spec.value == 0x00321033:
            want = "C"
        assert by_tag[key(spec)].effective(DEFAULTS)[0] == want, row["tag"]


def test_basic_and_aria_differ_only_in_the_descriptors_aria_keeps() -> None:
    basic = {r.spec: r for r in load_profile("basic").rules}
    aria = {r.spec: r for r in load_profile("aria").rules}
    assert basic.keys() == aria.keys()
    differ = [s for s in basic if basic[s].effective(DEFAULTS) != aria[s].effective(DEFAULTS)]
    assert len(differ) == 125 - len(ARIA_CLEANS_PATIENT_TEXT) == len(aria_keeps())
    for spec in differ:
        assert basic[spec].effective(DEFAULTS) == "C" and aria[spec].effective(DEFAULTS) == "K"
    kept = {s.value for s in differ}
    for tag in (0x300A0002, 0x300A0003, 0x300A0004, 0x30060002, 0x30060004, 0x30060006,
                0x30060026, 0x30060028, 0x300A00C3, 0x0008103E, 0x00081030, 0x00181030):
        assert tag in kept, hex(tag)
    # the seed's ARIA keep list is the seed's 125 CleanDesc=K rows less the patient free text
    seed_keeps = {seed_spec(r["tag"]).value for r in reference_rows() if "CleanDesc=K" in r["aria_overrides"]}
    assert kept == seed_keeps - {parse_tag_spec(t).value for t in ARIA_CLEANS_PATIENT_TEXT}


@pytest.mark.parametrize("name", ["basic", "aria"])
def test_shipped_files_are_what_the_generator_writes(name: str) -> None:
    generated = dump_profile_toml(profile_from_standard(name))
    assert (PROFILES_DIR / f"{name}.toml").read_text(encoding="utf-8") == generated


def test_profiles_dir_holds_only_data() -> None:
    names = sorted(p.name for p in PROFILES_DIR.iterdir() if not p.name.startswith((".", "__pycache__")))
    assert all(n in ("__init__.py", "standard") or n.endswith(".toml") for n in names), names
    assert all(p.suffix == ".tsv" for p in (PROFILES_DIR / "standard").iterdir())


def test_option_names_short_long_and_standard() -> None:
    for o in OPTIONS:
        assert option_short_name(o.short) == o.short
        assert option_short_name(o.long) == o.short
        assert option_short_name(o.title) == o.short
    assert option_short_name("Rtn. Long. Modif. Dates Opt.") == "RetainLongModifDates"
    assert option_short_name("clean_descriptors") == "CleanDesc"
    assert resolve_options(["retain-uids, CleanDesc"]) == {"RetainUIDs", "CleanDesc"}
    with pytest.raises(ProfileError, match="unknown option 'RetainEverything'"):
        resolve_options(["RetainEverything"])
    with pytest.raises(ProfileError, match="exclude each other"):
        resolve_options(["RetainLongFullDates", "RetainLongModifDates"])


def test_tag_spellings() -> None:
    assert parse_tag_spec("(0010,0010)").value == 0x00100010
    assert parse_tag_spec("0010,0010").value == 0x00100010
    assert parse_tag_spec("00100010").value == 0x00100010
    assert parse_tag_spec("PatientName").value == 0x00100010
    curve = parse_tag_spec("(50xx,xxxx)")
    assert curve.kind == "mask" and curve.matches(0x50221234) and not curve.matches(0x51001234)
    overlay = parse_tag_spec("(60XX,4000)")
    assert overlay.matches(0x60024000) and not overlay.matches(0x60024001)
    assert parse_tag_spec("(gggg,eeee) where gggg is odd").kind == "private"
    safe = parse_tag_spec("(0019,xx0C)", creator="SIEMENS MR HEADER")
    assert safe.kind == "creator" and safe.matches(0x0019100C) and safe.matches(0x0019200C)
    assert not safe.matches(0x0019000C)
    assert regex_to_spec("50[0-9A-F]{2},[0-9A-F]{4}") == curve
    assert regex_to_spec("[0-9A-F]{3}[13579BDF],[0-9A-F]{4}").kind == "private"
    for bad in ("(0010,001)", "PatientNam", "(0010,00G0)"):
        with pytest.raises(ValueError):
            parse_tag_spec(bad)


GOOD = '''format = "dicomtools-anonymization-profile"
format_version = 1
name = "mine"
default_options = ["RetainUIDs"]
rules = [
  { tag = "(0010,0010)", action = "Z" },
  { tag = "PatientID", action = "Z/D", name = "Patient ID" },
  { tag = "private", action = "X", options = { RetainSafePrivate = "C" } },
  { tag = "(0008,0018)", action = "U", options = { retain-uids = "K" } },
]
'''


def test_user_toml_loads(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(GOOD, encoding="utf-8")
    profile = load_profile(str(path))
    assert profile.name == "mine" and len(profile.rules) == 4
    compiled = profile.compile(None)
    assert compiled.options == {"RetainUIDs"}
    assert compiled.exact[0x00080018] == "K"
    assert compiled.action_for(0x00091010) == "X"
    assert compiled.action_for(0x00200013) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('action = "Z/D"', 'action = "Q"'), r"mine\.toml:7: unknown action 'Q'"),
        (('tag = "PatientID"', 'tag = "PatientIdent"'), r"mine\.toml:7: unknown keyword 'PatientIdent'"),
        (('RetainSafePrivate = "C"', 'RetainSecrets = "C"'), r"mine\.toml:8: unknown option 'RetainSecrets'"),
        (('name = "Patient ID"', 'nmae = "Patient ID"'), r"mine\.toml:7: unknown key 'nmae'"),
        (('tag = "(0008,0018)"', 'tag = "(0010,0010)"'), r"mine\.toml:9: \(0010,0010\) is listed twice \(first on line 6\)"),
        (("format_version = 1", "format_version = 9"), "format_version 9 not supported"),
        (('format = "dicomtools-anonymization-profile"', 'format = "other"'), "not a dicomtools profile"),
        (('RetainUIDs"]', 'RetainUIDs"'), "TOML syntax error"),
    ],
)
def test_bad_toml_names_the_line(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(GOOD.replace(*change), encoding="utf-8")
    with pytest.raises(ProfileError, match=message):
        load_profile(str(path))


def test_unknown_profile_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ProfileError, match="unknown profile 'nope'.*aria.*basic"):
        load_profile("nope")
    with pytest.raises(ProfileError, match="not found"):
        load_profile("/no/such/profile.toml")


def test_csv_import_standard_table_columns(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_text(
        "Attribute Name,Tag,Retired,In Std. Comp. IOD,Basic Prof.,Rtn. Safe Priv. Opt.,Rtn. UIDs Opt.,"
        "Rtn. Dev. Id. Opt.,Rtn. Inst. Id. Opt.,Rtn. Pat. Chars. Opt.,Rtn. Long. Full Dates Opt.,"
        "Rtn. Long. Modif. Dates Opt.,Clean Desc. Opt.,Clean Struct. Cont. Opt.,Clean Graph. Opt.\n"
        "Patient's Name,\"(0010,0010)\",N,Y,Z,,,,,,,,,,\n"
        "Study Date,\"(0008,0020)\",N,Y,Z,,,,,,K,C,,,\n"
        "RT Plan Label,\"(300A,0002)\",N,Y,D,,,,,,,,C,,\n"
        "Curve Data,\"(50xx,xxxx)\",Y,N,X,,,,,,,,,,C\n",
        encoding="utf-8",
    )
    profile = read_table(path)
    compiled = profile.compile(["RetainLongModifDates", "CleanDesc"])
    assert compiled.exact == {0x00100010: "Z", 0x00080020: "C", 0x300A0002: "C"}
    assert profile.compile(["CleanGraph"]).action_for(0x50001234) == "C"


def test_tsv_import_simple_layout_with_overrides(tmp_path: Path) -> None:
    path = tmp_path / "mine.tsv"
    path.write_text(
        "tag\taction\tname\toverrides\n"
        "# a comment line\n"
        "(0010,0010)\tZ\tPatient's Name\t\n"
        "[0-9A-F]{3}[13579BDF],[0-9A-F]{4}\tX\tprivate\tRetainSafePrivate=C\n"
        "StationName\tX/Z/D\t\tRetainDeviceIdent=K\n",
        encoding="utf-8",
    )
    profile = read_table(path)
    assert len(profile.rules) == 3
    assert profile.compile(["RetainDeviceIdent"]).exact[0x00081010] == "K"
    assert profile.compile([]).private_action == "X"
    assert load_profile(str(path)).name == "mine"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tag,action\n00100010,Q\n", r"t\.csv:2: unknown action 'Q' for 00100010"),
        ("tag,action\n00100010,Z\n\"(0010,001)\",X\n", r"t\.csv:3: cannot read tag '\(0010,001\)'"),
        ("tag,action,colour\n00100010,Z,red\n", r"t\.csv:1: unknown column 'colour'"),
        ("name,action\nx,Z\n", r"t\.csv:1: the header needs a 'tag' and an 'action'"),
        ("tag,action,overrides\nPatientName,Z,RetainAll=K\n", r"t\.csv:2: unknown option 'RetainAll'"),
        ("tag;action\n(0010,0010);Z\n(0010,0010);X\n", r"t\.csv:3: \(0010,0010\) is listed twice"),
    ],
)
def test_bad_table_names_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError, match=message):
        read_table(path)


def test_dump_then_parse_round_trip(tmp_path: Path) -> None:
    basic = load_profile("basic")
    again = parse_profile_toml(dump_profile_toml(basic), "again.toml")
    assert [(r.spec, r.action, r.options) for r in again.rules] == [(r.spec, r.action, r.options) for r in basic.rules]
    assert again.default_options == basic.default_options and again.codes == basic.codes
