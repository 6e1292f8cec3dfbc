"""The ``receive`` service's storage classes, written out by hand, against pynetdicom's own list."""

from __future__ import annotations

from pynetdicom.presentation import AllStoragePresentationContexts

from dicomtools.core.net.receive.server import STORAGE_CLASSES, STORAGE_ROOT, is_storage_class


def test_every_pynetdicom_storage_class_is_accepted() -> None:
    theirs = {str(cx.abstract_syntax) for cx in AllStoragePresentationContexts}
    assert all(is_storage_class(uid) for uid in theirs)
    # the hand-written list is exactly what the root prefix does not cover
    assert STORAGE_CLASSES == {uid for uid in theirs if not uid.startswith(STORAGE_ROOT)}


def test_services_that_are_not_storage_are_refused() -> None:
    for uid in ("1.2.840.10008.5.1.4.1.2.1.1",  # Patient Root FIND
                "1.2.840.10008.5.1.4.1.2.2.3",  # Study Root GET
                "1.2.840.10008.3.1.2.3.3",  # Modality Performed Procedure Step
                "1.2.840.10008.5.1.4.31"):  # Modality Worklist FIND
        assert not is_storage_class(uid)
    assert is_storage_class("1.2.246.352.70.1.70")  # a vendor's private RT class
