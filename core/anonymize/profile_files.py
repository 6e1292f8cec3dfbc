"""Finding and reading a profile file, whatever its format.

Separate from :mod:`profile` (the model and the TOML format) because it
dispatches to the CSV/TSV readers, which build on that model: with the loader
inside ``profile`` the two imported each other.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from dicomtools.core.anonymize.profile import (
    PROFILE_PACKAGE,
    Profile,
    ProfileError,
    builtin_profiles,
)
from dicomtools.core.anonymize.profile_cache import parse_cached


def load_profile(name_or_path: str | Path) -> Profile:
    """A shipped profile by name (``aria``, ``basic``) or a user's file (.toml, .csv, .tsv)."""
    text = str(name_or_path)
    p = Path(text)
    suffix = p.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        from dicomtools.core.anonymize.seed_csv import (  # deferred: start-up time
            looks_like_seed,
            read_seed_csv,
        )
        from dicomtools.core.anonymize.tsv_import import read_table

        try:
            table = p.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise ProfileError(f"profile file {text!r} not found") from None
        except UnicodeDecodeError:
            table = p.read_text(encoding="latin-1")  # the seed's files come from Windows tools
        except OSError as exc:
            raise ProfileError(f"cannot read profile {text!r}: {exc}") from None
        if looks_like_seed(table):
            return read_seed_csv(p, table)
        return read_table(p, table)
    if suffix == ".toml" or p.exists() or "/" in text or "\\" in text:
        try:
            data = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ProfileError(f"profile file {text!r} not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ProfileError(f"cannot read profile {text!r}: {exc}") from None
        return parse_cached(data, text)
    resource = resources.files(PROFILE_PACKAGE) / f"{text.lower()}.toml"
    if not resource.is_file():
        raise ProfileError(f"unknown profile {text!r}; shipped profiles: {', '.join(builtin_profiles())} (or give a .toml/.csv/.tsv file)")
    return parse_cached(resource.read_text(encoding="utf-8"), f"{text.lower()}.toml")
