"""dicomtools.core stays headless: importing it must not pull in Textual or Rich."""

from __future__ import annotations

import subprocess
import sys


def test_core_imports_without_textual() -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        "import dicomtools.core as c\n"
        "for m in pkgutil.walk_packages(c.__path__, 'dicomtools.core.'):\n"
        "    if m.name.endswith('__main__'): continue\n"
        "    importlib.import_module(m.name)\n"
        "bad = [n for n in sys.modules if n.split('.')[0] in ('textual', 'rich', 'dicomtools') and n.startswith(('textual', 'rich', 'dicomtools.tui'))]\n"
        "print(','.join(bad))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""


def test_no_bare_core_or_tui_module_installed() -> None:
    r = subprocess.run(
        [sys.executable, "-c", "import importlib.util as u; print(u.find_spec('core'), u.find_spec('tui'))"],
        capture_output=True, text=True, timeout=60, cwd="/",
    )
    assert r.stdout.strip() == "None None"
