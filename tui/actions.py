"""The one table of user actions: key bindings, footer labels, the keys screen and the
command palette are all generated from it, so they can never drift apart.

``scope`` says where an action lives: ``app`` (everywhere), ``top`` (every
top-level screen, not dialogs), a screen name, or a widget name. ``id`` is the
binding id users can remap through a Textual keymap.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding, BindingType


@dataclass(frozen=True, slots=True)
class Action:
    id: str
    scope: str
    keys: str  # Textual key names, comma separated; the first one is shown
    action: str  # Textual action string, run in the scope's namespace
    description: str  # footer / palette title
    help: str = ""
    show: bool = True  # in the footer
    priority: bool = False
    palette: bool = True  # in the command palette

    @property
    def key_display(self) -> str:
        return display_keys(self.keys)


_KEY_NAMES = {
    "question_mark": "?",
    "slash": "/",
    "space": "space",
    "escape": "esc",
    "enter": "enter",
    "delete": "del",
}


def display_keys(keys: str) -> str:
    """``"ctrl+g,f8"`` -> ``"^g / F8"`` (how a user reads them)."""
    out = []
    for key in keys.split(","):
        key = key.strip()
        if key.startswith("ctrl+"):
            out.append("^" + key[5:])
        elif key.startswith("f") and key[1:].isdigit():
            out.append(key.upper())
        else:
            out.append(_KEY_NAMES.get(key, key))
    return " / ".join(out)


SCREENS = ("browse", "retrieve", "store", "settings", "log", "receive")

ACTIONS: tuple[Action, ...] = (
    # everywhere
    Action("quit", "app", "ctrl+q", "quit", "Quit", "Quit (asks first when jobs run)", show=False, priority=True),
    Action("keys", "app", "f1", "keys", "Keys", "Show all keys of this screen"),
    Action("screen.browse", "app", "f2", "goto('browse')", "Browse", "Reference tree of a folder", show=False),
    Action("screen.retrieve", "app", "f3", "goto('retrieve')", "Retrieve", "Query a node and retrieve plans", show=False),
    Action("screen.store", "app", "f4", "goto('store')", "Store", "Send files to a node", show=False),
    Action("screen.settings", "app", "f5", "goto('settings')", "Settings", "Nodes, local AE, profile, machines", show=False),
    Action("screen.log", "app", "f6", "goto('log')", "Log", "Everything logged since start", show=False),
    # not "screen.": kept out of the nav bar (full at 80 columns); F1 and the palette list it
    Action("receive.open", "app", "f7", "goto('receive')", "Receive", "Run a Storage SCP and watch arrivals", show=False),
    # every top-level screen
    Action("quit.q", "top", "q", "quit_key", "Quit", "Quit the application"),
    Action("keys.q", "top", "question_mark", "app.keys", "Keys", "Show all keys", show=False, palette=False),
    # browse
    Action("browse.filter", "browse", "slash", "filter", "Filter", "Filter the tree with a tag expression"),
    Action("browse.mark", "browse", "space", "mark", "Mark", "Mark or unmark the plan / patient under the cursor"),
    Action("browse.store", "browse", "t", "store_marks", "Store", "Send the marked plans to a node"),
    Action("browse.export", "browse", "e", "export_marks", "Export", "Copy marked plans with all they reference into a folder"),
    Action("browse.anonymize", "browse", "a", "anonymize_marks", "Anonymize", "Anonymize marked plans into a folder", show=False),
    Action("browse.flat", "browse", "f", "flat_marks", "Flat list", "Show the marked plans as a flat list", show=False),
    Action("browse.unmark", "browse", "u", "clear_marks", "Unmark all", "Clear all marks", show=False),
    Action("browse.details", "browse", "d", "tab('details')", "Details", "Show the details pane", show=False),
    Action("browse.results", "browse", "r", "tab('results')", "Results", "Show the search results", show=False),
    Action("browse.marked", "browse", "m", "tab('marked')", "Marked", "Show the marked items", show=False),
    Action("browse.open", "browse", "o", "open_folder", "Open", "Open another folder"),
    Action("browse.zoom", "browse", "z", "zoom", "Zoom", "Maximize the focused pane (z again restores)", show=False),
    Action("browse.clear", "browse", "escape", "clear_filter", "Clear filter", "Clear the filter (Esc)", show=False),
    Action("browse.rescan", "browse", "ctrl+r", "rescan", "Rescan", "Read the folder again", show=False),
    Action("browse.cancel", "browse", "ctrl+g,f8", "cancel", "Cancel", "Cancel the running scan or search", show=False),
    # filter bar (widget)
    Action("filter.clear", "filter", "escape", "clear", "Clear filter", "Clear the filter and show everything", palette=False),
    # details pane element search
    Action("details.clear", "elements", "escape", "clear", "Clear search", palette=False),
    # retrieve
    Action("retrieve.find", "retrieve", "ctrl+f", "find", "Find", "Query the node (C-FIND)"),
    Action("retrieve.mark", "retrieve", "space", "mark", "Mark", "Mark the patient / plan row", show=False),
    Action("retrieve.go", "retrieve", "ctrl+r", "retrieve", "Retrieve", "Retrieve the marked rows into the folder"),
    Action("retrieve.cancel", "retrieve", "ctrl+g,f8", "cancel", "Cancel", "Cancel the running retrieve"),
    Action("retrieve.list", "retrieve", "ctrl+l", "load_list", "Load list",
           "Load a patient list (text, CSV or hand-off JSON): find its patients and mark them and their plans",
           show=False),
    # receive
    Action("receive.toggle", "receive", "ctrl+s", "start_stop", "Start/stop", "Start or stop the Storage SCP"),
    # store
    Action("store.send", "store", "ctrl+s", "send", "Send", "Store the listed files to the node"),
    Action("store.check", "store", "ctrl+t", "check", "Check", "Re-check machine mappings", show=False),
    Action("store.cancel", "store", "ctrl+g,f8", "cancel", "Cancel", "Cancel the running store"),
    Action("store.leftout", "store", "ctrl+l", "left_out", "Left out", "Every file the store leaves out, and why"),
    # settings
    Action("settings.save", "settings", "ctrl+s", "save", "Save", "Save the preset (keeps a .bak)"),
    Action("settings.new", "settings", "ctrl+n", "new_node", "New node", "Add a DICOM node"),
    Action("settings.echo", "settings", "ctrl+t", "echo", "Echo", "C-ECHO the selected node"),
    Action("settings.delete", "settings", "ctrl+y", "delete_node", "Delete node", "Delete the selected node", show=False),
    # log
    Action("log.debug", "log", "1", "level('DEBUG')", "Debug+", "Show debug and above"),
    Action("log.info", "log", "2", "level('INFO')", "Info+", "Show info and above"),
    Action("log.warning", "log", "3", "level('WARNING')", "Warn+", "Show warnings and errors"),
    Action("log.error", "log", "4", "level('ERROR')", "Errors", "Show errors only"),
    Action("log.wrap", "log", "w", "wrap", "Wrap", "Wrap long lines, or one line each"),
)


def actions_for(*scopes: str) -> list[Action]:
    return [a for a in ACTIONS if a.scope in scopes]


def bindings_for(*scopes: str) -> list[BindingType]:
    """Textual bindings for the given scopes, in table order (typed as Textual's ``BINDINGS``)."""
    return [
        Binding(
            a.keys,
            a.action,
            a.description,
            show=a.show,
            priority=a.priority,
            tooltip=a.help,
            id=a.id,
            key_display=display_keys(a.keys.split(",")[0]),
        )
        for a in actions_for(*scopes)
    ]
