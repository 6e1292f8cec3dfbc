"""The filter input: tag expressions (the search language), checked while typing.

Several expressions are separated by ``;`` and must all hold. Errors are shown
inline under the input as the user types; Enter applies, Esc clears. The
keyword being typed is completed from the DICOM dictionary (right arrow takes it).
"""

from __future__ import annotations

import re
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.suggester import Suggester
from textual.widgets import Input, Static

from dicomtools.core.search.expr import ExprError, Expression, parse, suggest
from dicomtools.tui.actions import bindings_for
from dicomtools.tui.widgets.inputs import TextInput

SEPARATOR = ";"
_TOKEN_START = re.compile(r"[^;/\s]*$")


def split_expressions(text: str) -> list[str]:
    return [part.strip() for part in text.split(SEPARATOR) if part.strip()]


def parse_filter(text: str) -> list[Expression]:
    """Parse ``a; b; c``; raises :class:`ExprError` naming the failing expression."""
    exprs = []
    parts = split_expressions(text)
    for n, part in enumerate(parts, start=1):
        try:
            exprs.append(parse(part))
        except ExprError as exc:
            where = f"expression {n}: " if len(parts) > 1 else ""
            raise ExprError(f"{where}{exc}") from None
    return exprs


class KeywordSuggester(Suggester):
    """Completes the keyword at the end of the input (not inside values)."""

    def __init__(self) -> None:
        super().__init__(use_cache=True, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        token = _TOKEN_START.search(value)
        if token is None:
            return None
        word = token.group(0)
        if len(word) < 2 or any(c in word for c in "=!~<>()") or word[0].isdigit():
            return None
        found = suggest(word, limit=1)
        if not found or not found[0].lower().startswith(word.lower()) or found[0] == word:
            return None
        return value[: token.start()] + found[0]


class FilterInput(TextInput):
    BINDINGS = bindings_for("filter")

    def action_clear(self) -> None:
        self.value = ""
        self.post_message(FilterBar.Cleared())


class FilterBar(Vertical):
    """Input + inline error line; posts :class:`Applied` / :class:`Cleared`."""

    DEFAULT_CSS = """
    FilterBar { height: auto; }
    FilterBar Horizontal { height: 1; }
    FilterBar #filter-label { width: auto; padding: 0 1 0 1; }
    FilterBar FilterInput { width: 1fr; }
    FilterBar #filter-error { height: auto; padding: 0 1; display: none; }
    FilterBar #filter-error.-shown { display: block; }
    """

    class Applied(Message):
        def __init__(self, text: str, expressions: list[Expression]) -> None:
            super().__init__()
            self.text = text
            self.expressions = expressions

    class Cleared(Message):
        pass

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = ""

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Static("Filter /", id="filter-label")
            yield FilterInput(
                placeholder="e.g. RTPlanLabel=PLAN*; (300A,00B0)/(300A,00B2)=?   Enter applies, Esc clears",
                suggester=KeywordSuggester(),
                id="filter-input",
                compact=True,
            )
        yield Static("", id="filter-error", markup=False)

    @property
    def input(self) -> FilterInput:
        return self.query_one(FilterInput)

    def show_error(self, error: str) -> None:
        self.error = error
        err = self.query_one("#filter-error", Static)
        err.update(f"! {error}" if error else "")
        err.set_class(bool(error), "-shown")

    @on(Input.Changed, "#filter-input")
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        try:
            parse_filter(event.value)
        except ExprError as exc:
            self.show_error(str(exc))
        else:
            self.show_error("")

    @on(Input.Submitted, "#filter-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            self.post_message(self.Cleared())
            return
        try:
            exprs = parse_filter(text)
        except ExprError as exc:
            self.show_error(str(exc))
            return
        self.show_error("")
        self.post_message(self.Applied(text, exprs))

    def clear(self) -> None:
        self.input.value = ""
        self.show_error("")
