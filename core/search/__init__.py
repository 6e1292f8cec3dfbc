"""Search: tag expressions (expr) and their evaluation over a folder (folder)."""
