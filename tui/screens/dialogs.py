"""Modal dialogs: confirm, ask for values, show text, show keys, show an error.

Every dialog closes with Esc (cancel) and answers through ``dismiss`` so a
screen can ``push_screen(dialog, callback)`` without blocking. Each has its own
footer, so the keys shown under a dialog are the dialog's. A form checks its
values before closing and keeps them, with the reason, when they do not do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, ScrollableContainer, Vertical
from textual.css.query import QueryType
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Footer, Input, Label, Static

from dicomtools.tui.actions import Action, actions_for
from dicomtools.tui.widgets.inputs import TextInput, deliver_typed_ahead

_CANCEL: list[BindingType] = [Binding("escape", "cancel", "Close")]


class ConfirmDialog(ModalScreen[bool]):
    """Yes/No; Enter or y confirms, Esc or n declines."""

    BINDINGS = [*_CANCEL, Binding("y", "answer(True)", "Yes"), Binding("n", "answer(False)", "No")]

    def __init__(self, question: str, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.question = question
        self.yes = yes
        self.no = no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="dialog-text", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="error", compact=True)
                yield Button(f"{self.no} (n)", id="no", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    def action_cancel(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


@dataclass(frozen=True)
class Field:
    key: str
    label: str
    value: str = ""
    placeholder: str = ""


TAB, BACKTAB = "\t", "\x1b[Z"  # held keys: Tab and Shift+Tab; anything else is a typed character


class FormDialog(ModalScreen[dict[str, str] | None]):
    """A few labelled inputs; Enter in any of them (or OK) returns the values, Tab moves."""

    BINDINGS = _CANCEL

    def __init__(self, title: str, fields: list[Field], ok: str = "OK", note: str = "",
                 check: Callable[[dict[str, str]], str] | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.fields = fields
        self.ok = ok
        self.note = note
        self.check = check
        self._ready = False
        self._early: list[str] = []  # keys typed before the fields were there (TAB, BACKTAB or a character)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.title_text, style="bold"), classes="dialog-title")
            if self.note:
                yield Static(self.note, classes="dialog-text", markup=False)
            for f in self.fields:
                with Horizontal(classes="dialog-row"):
                    yield Label(f.label, classes="dialog-label")
                    yield TextInput(value=f.value, placeholder=f.placeholder, id=f"field-{f.key}", compact=True)
            yield Static("", id="dialog-error", classes="dialog-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.ok, id="ok", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        # focus now, before any key typed ahead is handled: it belongs in the first field
        self.set_focus(self.query_one(f"#field-{self.fields[0].key}", Input))
        self._ready = True
        early, self._early = self._early, []
        for key in early:  # in the order typed: a Tab moves on, a character goes where the focus is
            self._apply(key)

    def _apply(self, key: str) -> bool:
        """Move the focus (Tab, Shift+Tab) or type a character into the focused field; False if neither."""
        if key == TAB:
            super().focus_next()
        elif key == BACKTAB:
            super().focus_previous()
        elif isinstance(self.focused, Input) and not self.focused.disabled:
            field = self.focused
            if field.selection.is_empty:
                field.insert_text_at_cursor(key)
            else:
                field.replace(key, *field.selection)
        else:
            return False
        return True

    def route_key(self, event: events.Key) -> bool:
        """Take a Tab or a typed character in the order typed; the app calls this for every key.

        Textual hands a key to the widget focused when the app takes it, and a
        Tab moves the focus only when it is handled later: in a burst over SSH
        ("a", a folder, Tab, an ID) the ID could land in the folder field. Here,
        at the app, every key passes one at a time. True when taken.
        """
        if event.key in ("tab", "shift+tab"):
            key = TAB if event.key == "tab" else BACKTAB
        elif event.is_printable and event.character is not None:
            key = event.character
        else:
            return False
        if not self._ready:  # the fields are not there yet: replayed by on_mount, in order
            self._early.append(key)
            return True
        return self._apply(key)

    def take_early_key(self, key: str) -> bool:
        """Hold a key that arrived before the fields took the focus (a burst over SSH); True if held."""
        if self._ready:
            return False
        self._early.append(key)
        return True

    def focus_next(self, selector: str | type[QueryType] = "*") -> Widget | None:
        # a Tab typed ahead of the dialog's own mount must move on from the first field, not be lost
        if not self._ready:
            self._early.append(TAB)
            return self.focused
        return super().focus_next(selector)

    def on_key(self, event: events.Key) -> None:
        deliver_typed_ahead(self, event)

    def values(self) -> dict[str, str]:
        return {f.key: self.query_one(f"#field-{f.key}", Input).value.strip() for f in self.fields}

    def show_error(self, text: str) -> None:
        self.query_one("#dialog-error", Static).update(text)

    def action_submit(self) -> None:
        values = self.values()
        problem = self.check(values) if self.check is not None else ""
        if problem:
            self.app.bell()
            self.show_error(f"! {problem}")
            return
        self.dismiss(values)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self.action_submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class TextDialog(ModalScreen[None]):
    """A scrollable text (flat lists, reports); Esc or q closes."""

    BINDINGS = [*_CANCEL, Binding("q", "cancel", "Close", show=False)]

    def __init__(self, title: str, text: str | Text) -> None:
        super().__init__()
        self.title_text = title
        self.body = text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-wide"):
            yield Static(Text(self.title_text + "   (esc closes)", style="bold"), classes="dialog-title")
            with ScrollableContainer(classes="dialog-scroll"):
                body = Text(self.body, no_wrap=True) if isinstance(self.body, str) else self.body
                yield Static(body, classes="dialog-body")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(ScrollableContainer).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)


def keys_text(scopes: list[str]) -> Text:
    """The keys of ``scopes`` as an aligned two-column text."""
    rows: list[Action] = actions_for(*scopes)
    text = Text()
    names = {"app": "Everywhere", "top": "Top-level screens"}
    current = None
    for a in rows:
        if a.scope != current:
            current = a.scope
            if text:
                text.append("\n")
            text.append(names.get(a.scope, a.scope.capitalize()) + "\n", style="bold underline")
        text.append(f"  {a.key_display:<12}", style="bold")
        text.append(f" {a.description}")
        if a.help and a.help != a.description:
            text.append(f" - {a.help}", style="dim")
        text.append("\n")
    text.append("\n")
    text.append("  ^p          ", style="bold")
    text.append(" Command palette: every action by name\n")
    text.append("  tab         ", style="bold")
    text.append(" Next field / pane\n")
    return text


class KeysDialog(TextDialog):
    """The keys of the current screen, generated from the action table."""

    def __init__(self, scopes: list[str]) -> None:
        super().__init__("Keys", keys_text(scopes))


class ErrorDialog(TextDialog):
    def __init__(self, message: str, title: str = "Error") -> None:
        super().__init__(title, Text(message))


__all__ = [
    "ConfirmDialog",
    "ErrorDialog",
    "Field",
    "FormDialog",
    "KeysDialog",
    "TextDialog",
]
