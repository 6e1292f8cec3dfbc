"""Anonymization: profiles (data in ``profiles/``), the engine, the UID map, the leak checker.

Entry points: :func:`anonymize_files` / :func:`anonymize_folder` (files in, files out),
:class:`Anonymizer` (one pydicom dataset in place), :func:`load_profile`,
:func:`verify_files` / :func:`verify_folder` (PHI leak checker).
"""

from __future__ import annotations

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
from dicomtools.core.anonymize.verify import (
    Finding,
    Identifiers,
    VerifyReport,
    verify_files,
    verify_folder,
)

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
