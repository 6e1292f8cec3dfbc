"""Use cases both faces call (CLI commands and TUI screens): jobs that combine lower layers.

A service may import ``net``, ``anonymize``, ``tree`` and the archive; none of those
imports a service (import-linter contract), so networking never decides what is
done to the files it moves.
"""
