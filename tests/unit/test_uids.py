"""The SOP class constants mean what their names say, checked against pydicom's UID dictionary."""

from __future__ import annotations

import pytest
from pydicom.uid import UID

from dicomtools.core.archive import model

EXPECTED_NAMES = {
    "RT_PLAN": "RT Plan Storage",
    "RT_ION_PLAN": "RT Ion Plan Storage",
    "RT_STRUCT": "RT Structure Set Storage",
    "RT_DOSE": "RT Dose Storage",
    "RT_IMAGE": "RT Image Storage",
    "RT_BEAMS_RECORD": "RT Beams Treatment Record Storage",
    "RT_BRACHY_RECORD": "RT Brachy Treatment Record Storage",
    "RT_SUMMARY_RECORD": "RT Treatment Summary Record Storage",
    "RT_ION_BEAMS_RECORD": "RT Ion Beams Treatment Record Storage",
    "SPATIAL_REGISTRATION": "Spatial Registration Storage",
    "DEFORMABLE_REGISTRATION": "Deformable Spatial Registration Storage",
    "MEDIA_STORAGE_DIRECTORY": "Media Storage Directory Storage",
}


@pytest.mark.parametrize(("constant", "name"), sorted(EXPECTED_NAMES.items()))
def test_sop_class_constant_is_the_class_its_name_says(constant: str, name: str) -> None:
    assert UID(getattr(model, constant)).name == name


def test_every_dicom_sop_class_constant_is_checked() -> None:
    standard = {k for k, v in vars(model).items()
                if k.isupper() and isinstance(v, str) and v.startswith("1.2.840.10008.")}
    assert standard == set(EXPECTED_NAMES)


def test_no_brachy_plan_class_exists() -> None:
    """Brachy plans are RT Plan Storage; the old RT_BRACHY_PLAN held the brachy record's UID."""
    assert not hasattr(model, "RT_BRACHY_PLAN")
    assert model.RT_PLAN in model.PLAN_CLASSES and model.RT_BRACHY_RECORD in model.RECORD_CLASSES
