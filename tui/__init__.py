"""dicomtools TUI: the Textual front end over dicomtools.core."""
