"""Anonymization: profiles (data in ``profiles/``), the engine, the UID map, the leak checker.

Entry points: :func:`anonymize_files` / :func:`anonymize_folder` (files in, files out),
:class:`Anonymizer` (one pydicom dataset in place), :func:`load_profile`,
:func:`verify_files` / :func:`verify_folder` (PHI leak checker).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dicomtools.core.anonymize.engine import Anonymizer, EngineResult
from dicomtools.core.anonymize.profile import (
    OPTIONS,
    CompiledProfile,
    Profile,
    ProfileError,
    builtin_profiles,
    resolve_options,
)
from dicomtools.core.anonymize.profile_files import load_profile
from dicomtools.core.anonymize.run import (
    AnonymizeError,
    AnonymizeReport,
    AnonymizeSettings,
    OutputFile,
    anonymize_files,
    anonymize_folder,
)
from dicomtools.core.anonymize.uidmap import UidMap, UidMapError

if TYPE_CHECKING:
    from dicomtools.core.anonymize.verify import (
        Finding,
        Identifiers,
        VerifyReport,
        verify_files,
        verify_folder,
    )

_FROM_VERIFY = frozenset({"Finding", "Identifiers", "VerifyReport", "verify_files", "verify_folder"})


def __getattr__(name: str) -> Any:
    """The leak checker on first use: an anonymize run that does not verify never imports it."""
    if name in _FROM_VERIFY:
        from dicomtools.core.anonymize import verify

        return getattr(verify, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "OPTIONS",
    "AnonymizeError",
    "AnonymizeReport",
    "AnonymizeSettings",
    "Anonymizer",
    "CompiledProfile",
    "EngineResult",
    "Finding",
    "Identifiers",
    "OutputFile",
    "Profile",
    "ProfileError",
    "UidMap",
    "UidMapError",
    "VerifyReport",
    "anonymize_files",
    "anonymize_folder",
    "builtin_profiles",
    "load_profile",
    "resolve_options",
    "verify_files",
    "verify_folder",
]
