"""Reading an archive folder: the one place that decides what a file is."""
