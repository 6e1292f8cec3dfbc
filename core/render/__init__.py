"""Text for the CLI: trees as tree/flat/JSON text (forest), the indented JSON writer (jsontext)."""
