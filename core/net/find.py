"""C-FIND: what a node holds for one patient, study by study, series by series.

Patient Root is used when the peer accepts it, else Study Root. Optional
keys a peer does not return (dcmqrscp knows no RT Plan Label, many PACS
return no Modality at series level) show up as empty strings; callers
decide what they can rely on (see ``PatientQuery.series_modality_known``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pynetdicom.association import Association

from dicomtools.core.net.assoc import NetError
from dicomtools.core.net.find_model import (  # noqa: F401 - re-exported
    InstanceInfo,
    PatientQuery,
    PatientRow,
    SeriesInfo,
    StudyInfo,
)
from dicomtools.core.net.qr_models import FIND_MODELS
from dicomtools.core.net.status import FAILURE, describe_status, status_category

log = logging.getLogger(__name__)

CHARSET = "ISO_IR 192"  # UTF-8: every identifier says how its text is encoded
WILDCARDS = "*?\\"


def with_charset(ds: Dataset, charset: str = CHARSET) -> Dataset:
    """Declare (0008,0005) in an identifier so non-ASCII values travel as what they are.

    Without it a node reads the bytes as ASCII: ``Jörg`` matches nothing, and
    an encoder that falls back to ``?`` turns a letter into a wildcard.
    """
    if "SpecificCharacterSet" not in ds:
        ds.SpecificCharacterSet = charset
    return ds


def id_key(patient_id: str) -> str:
    """The Patient ID as a matching key: universal ("") when it holds ``*``, ``?`` or ``\\``.

    Those are legal in the ID but a node reads them as wildcards (or a value
    separator); the answers are then filtered exactly by the caller.
    """
    return "" if any(c in patient_id for c in WILDCARDS) else patient_id


def choose_model(assoc: Association) -> str:
    """'P' (Patient Root) when accepted, else 'S' (Study Root)."""
    accepted = {str(cx.abstract_syntax) for cx in assoc.accepted_contexts}
    for key, uid in FIND_MODELS.items():
        if str(uid) in accepted:
            return key
    raise NetError("the node accepted neither Patient Root nor Study Root C-FIND")


def _s(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(v).strip() for v in value)
    return str(value).strip()


def c_find(assoc: Association, model: str, identifier: Dataset) -> list[Dataset]:
    """All pending identifiers of one C-FIND; raises :class:`NetError` on a failure status."""
    out: list[Dataset] = []
    for status, ident in assoc.send_c_find(with_charset(identifier), FIND_MODELS[model]):
        if "Status" not in status:
            raise NetError(f"C-FIND: no response from the node within {assoc.dimse_timeout:g} s "
                           "(dimse_timeout), or the association was aborted")
        code = int(status.Status)
        cat = status_category(code)
        if cat == "pending":
            if ident is not None:
                out.append(ident)
        elif cat == FAILURE:
            comment = _s(status, "ErrorComment")
            raise NetError(f"C-FIND failed: {describe_status(code)}" + (f" ({comment})" if comment else ""))
    return out


def find_studies(assoc: Association, model: str, patient_id: str) -> tuple[str, list[StudyInfo]]:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientID = id_key(patient_id)
    ds.PatientName = ""
    ds.StudyInstanceUID = ""
    ds.StudyDate = ""
    ds.StudyDescription = ""
    ds.ModalitiesInStudy = ""
    name = ""
    studies: dict[str, StudyInfo] = {}
    for ident in c_find(assoc, model, ds):
        uid = _s(ident, "StudyInstanceUID")
        got = _s(ident, "PatientID")
        if not uid or got not in ("", patient_id) or (got != patient_id and not id_key(patient_id)):
            continue  # exact match: an ID with wildcard characters was queried universally
        name = name or _s(ident, "PatientName")
        studies[uid] = StudyInfo(uid, _s(ident, "StudyDate"), _s(ident, "StudyDescription"),
                                 _s(ident, "ModalitiesInStudy"))
    return name, sorted(studies.values(), key=lambda s: (s.date, s.study_uid))


def find_series(assoc: Association, model: str, patient_id: str, study_uid: str) -> list[SeriesInfo]:
    ds = Dataset()
    ds.QueryRetrieveLevel = "SERIES"
    ds.PatientID = id_key(patient_id)
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = ""
    ds.Modality = ""
    ds.SeriesDescription = ""
    ds.SeriesNumber = ""
    ds.NumberOfSeriesRelatedInstances = ""
    out: dict[str, SeriesInfo] = {}
    for ident in c_find(assoc, model, ds):
        uid = _s(ident, "SeriesInstanceUID")
        if not uid:
            continue
        raw_count = _s(ident, "NumberOfSeriesRelatedInstances")
        try:
            count: int | None = int(raw_count) if raw_count else None
        except ValueError:
            count = None
        out[uid] = SeriesInfo(study_uid, uid, _s(ident, "Modality").upper(), _s(ident, "SeriesDescription"),
                              _s(ident, "SeriesNumber"), count)
    return list(out.values())


def find_instances(
    assoc: Association, model: str, patient_id: str, study_uid: str, series_uid: str,
    extra_keys: Iterable[str] = (),
) -> list[InstanceInfo]:
    ds = Dataset()
    ds.QueryRetrieveLevel = "IMAGE"
    ds.PatientID = id_key(patient_id)
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SOPInstanceUID = ""
    ds.SOPClassUID = ""
    for key in extra_keys:
        setattr(ds, key, "")
    out = []
    for ident in c_find(assoc, model, ds):
        uid = _s(ident, "SOPInstanceUID")
        if uid:
            out.append(InstanceInfo(uid, _s(ident, "SOPClassUID"), series_uid,
                                    _s(ident, "RTPlanLabel"), _s(ident, "ApprovalStatus"), _s(ident, "RTPlanDate")))
    return out


def query_patient(assoc: Association, patient_id: str, model: str | None = None) -> PatientQuery:
    """Studies and their series for one Patient ID (exact match, no wildcards)."""
    if model is None:
        model = choose_model(assoc)
        accepted = {str(cx.abstract_syntax) for cx in assoc.accepted_contexts}
        if not id_key(patient_id) and str(FIND_MODELS["S"]) in accepted:
            model = "S"  # Study Root needs no Patient ID below the study: the ID is matched by us
    name, studies = find_studies(assoc, model, patient_id)
    for st in studies:
        st.series = find_series(assoc, model, patient_id, st.study_uid)
    return PatientQuery(patient_id, name, model, studies)


def sop_classes_in_study(assoc: Association, model: str, patient_id: str, study_uid: str) -> set[str]:
    """SOP Classes in Study (0008,0062) of one study; empty when the node does not return it."""
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    if model == "P":
        ds.PatientID = id_key(patient_id)
    ds.StudyInstanceUID = study_uid
    ds.SOPClassesInStudy = ""
    out: set[str] = set()
    for ident in c_find(assoc, model, ds):
        out.update(v for v in _s(ident, "SOPClassesInStudy").split("\\") if v)
    return out
