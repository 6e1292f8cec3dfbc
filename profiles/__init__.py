"""Anonymization profiles shipped with dicomtools: data files (``*.toml``) only, no code."""
