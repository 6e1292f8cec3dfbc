"""The seed tool's profile files (``AriaSecurityProfile.csv``, ``BasicSecurityProfile.csv``), as they are.

Format: ``;``-separated, no header row, 12 columns: a tag written as a
regular expression over the text ``gggg,eeee`` (case-insensitive, unanchored,
the first matching row wins, so ``4000,001`` acts as a prefix), the Basic
Profile action, then one action per option in the order of :data:`OPTIONS`
(RetainSafePrivate ... CleanGraph). An empty cell leaves the action; the last
chosen option with a cell wins; only the first letter of a cell counts, except
that a combined cell of the standard (``X/Z/D``...) stays combined so our engine
can choose by the IOD as PS3.15 E.3.1 asks (the seed used its first letter).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from dicomtools.core.anonymize.profile import (
    COMBINED_ACTIONS,
    OPTIONS,
    SINGLE_ACTIONS,
    Profile,
    ProfileError,
    Rule,
    TagSpec,
)

COLUMNS = 2 + len(OPTIONS)
_TAG_HEADS = {"tag", "tags", "attributetag", "dicomtag", "tagpattern", "attributename", "name"}


def looks_like_seed(text: str) -> bool:
    """A ``;`` file whose first row is a rule (a tag pattern), not a header."""
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = line.split(";")
        first = re.sub(r"[^a-z0-9]", "", cells[0].lower())
        return len(cells) > 2 and "," in cells[0] and first not in _TAG_HEADS and "\t" not in line
    return False


def _cell_action(cell: str) -> str | None:
    """The action a cell means: a combined cell as is, else its first letter; None when empty."""
    text = re.sub(r"\s+", "", cell).upper()
    if not text:
        return None
    if text in COMBINED_ACTIONS:
        return text
    return text[0]


def read_seed_csv(path: str | Path, text: str) -> Profile:
    """A profile from a seed-format file; every problem names ``file:line``."""
    where = str(path)
    rules: list[Rule] = []
    for number, row in enumerate(csv.reader(io.StringIO(text), delimiter=";"), 1):
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if len(row) > COLUMNS and any(c.strip() for c in row[COLUMNS:]):
            raise ProfileError(f"{where}:{number}: {len(row)} columns; the seed format has {COLUMNS}")
        pattern = row[0].strip()
        try:
            re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            raise ProfileError(f"{where}:{number}: tag pattern {pattern!r} is not a regular expression: {exc}") from None
        action = _cell_action(row[1] if len(row) > 1 else "")
        if action is None or not (action in SINGLE_ACTIONS or action in COMBINED_ACTIONS):
            raise ProfileError(
                f"{where}:{number}: unknown action {(row[1] if len(row) > 1 else '')!r} for {pattern} "
                f"(expected one of {', '.join(SINGLE_ACTIONS)})"
            )
        pairs: list[tuple[str, str]] = []
        for option, cell in zip(OPTIONS, row[2:COLUMNS], strict=False):
            act = _cell_action(cell)
            if act is None:
                continue
            if act not in SINGLE_ACTIONS and act not in COMBINED_ACTIONS:
                raise ProfileError(f"{where}:{number}: unknown action {cell!r} in the {option.short} column")
            pairs.append((option.short, act))
        rules.append(Rule(TagSpec("regex", 0, 0, pattern), action, "", tuple(pairs), number, last_wins=True))
    if not rules:
        raise ProfileError(f"{where}: no rules")
    p = Path(path)
    return Profile(name=p.stem, title=f"seed-format profile {p.name}", source=where, rules=rules, path=where)
