"""C-FIND: what a node holds for one patient, study by study, series by series.

Patient Root is used when the peer accepts it, else Study Root. Optional
keys a peer does not return (dcmqrscp knows no RT Plan Label, many PACS
return no Modality at series level) show up as empty strings; callers
decide what they can rely on (see ``PatientQuery.series_modality_known``).
Queries are flat ``{keyword: value}`` maps; they travel over the lean UL
(:class:`ul_find.LeanFind`, no pydicom) or a pynetdicom association (the
interactive search), whichever the caller opened.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from dicomtools.core.net.assoc import NetError
from dicomtools.core.net.find_model import (  # noqa: F401 - re-exported
    InstanceInfo,
    PatientQuery,
    PatientRow,
    SeriesInfo,
    StudyInfo,
)
from dicomtools.core.net.ident import CHARSET
from dicomtools.core.net.qr_models import FIND_MODELS
from dicomtools.core.net.status import FAILURE, describe_status, status_category
from dicomtools.core.net.ul import PeerAborted, PeerTimedOut
from dicomtools.core.net.ul_find import LeanFind

if TYPE_CHECKING:
    from pydicom.dataset import Dataset
    from pynetdicom.association import Association

log = logging.getLogger(__name__)

WILDCARDS = "*?\\"
Keys = dict[str, str]  # one query identifier: keyword -> value ("" asks for the key)


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


def _accepted(assoc: LeanFind | Association) -> set[str]:
    if isinstance(assoc, LeanFind):
        return assoc.accepted_models
    return {str(cx.abstract_syntax) for cx in assoc.accepted_contexts}


def choose_model(assoc: LeanFind | Association) -> str:
    """'P' (Patient Root) when accepted, else 'S' (Study Root)."""
    accepted = _accepted(assoc)
    for key, uid in FIND_MODELS.items():
        if str(uid) in accepted:
            return key
    raise NetError("the node accepted neither Patient Root nor Study Root C-FIND")


def _s(ds: Any, keyword: str) -> str:
    value = ds.get(keyword, "")
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v).strip() for v in value)
    return str(value).strip()


def _lean_find(assoc: LeanFind, model: str, keys: Mapping[str, str]) -> list[Keys]:
    out: list[Keys] = []
    try:
        responses = list(assoc.find(FIND_MODELS[model], keys))
    except PeerTimedOut:
        raise NetError(f"C-FIND: no response from the node within {assoc.dimse_timeout:g} s "
                       "(dimse_timeout)") from None
    except PeerAborted as exc:
        raise NetError(f"C-FIND: {exc}") from None
    for rsp in responses:
        cat = status_category(rsp.status)
        if cat == "pending":
            if rsp.identifier is not None:
                out.append(rsp.identifier)
        elif cat == FAILURE:
            comment = rsp.comment.strip()
            raise NetError(f"C-FIND failed: {describe_status(rsp.status)}" + (f" ({comment})" if comment else ""))
    return out


def _dataset(keys: Mapping[str, str]) -> Dataset:
    from pydicom.dataset import Dataset

    ds = Dataset()
    for kw, value in keys.items():
        setattr(ds, kw, value)
    return ds


def c_find(assoc: LeanFind | Association, model: str, identifier: Keys | Dataset) -> list[Any]:
    """All pending identifiers of one C-FIND; raises :class:`NetError` on a failure status.

    Over :class:`LeanFind` the answers are ``{keyword: text}`` maps, over
    pynetdicom pydicom datasets; both answer ``.get(keyword)``.
    """
    if isinstance(assoc, LeanFind):
        if not isinstance(identifier, dict):
            flat: Any = identifier  # a Dataset: its flat keys
            identifier = {el.keyword: str(el.value or "") for el in flat}
        return _lean_find(assoc, model, identifier)
    ds = _dataset(identifier) if isinstance(identifier, dict) else identifier
    out: list[Any] = []
    for status, ident in assoc.send_c_find(with_charset(ds), FIND_MODELS[model]):
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


def find_studies(assoc: LeanFind | Association, model: str, patient_id: str) -> tuple[str, list[StudyInfo]]:
    ds: Keys = {"QueryRetrieveLevel": "STUDY", "PatientID": id_key(patient_id), "PatientName": "",
                "StudyInstanceUID": "", "StudyDate": "", "StudyDescription": "", "ModalitiesInStudy": ""}
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


def find_series(assoc: LeanFind | Association, model: str, patient_id: str, study_uid: str) -> list[SeriesInfo]:
    ds: Keys = {"QueryRetrieveLevel": "SERIES", "PatientID": id_key(patient_id), "StudyInstanceUID": study_uid,
                "SeriesInstanceUID": "", "Modality": "", "SeriesDescription": "", "SeriesNumber": "",
                "NumberOfSeriesRelatedInstances": ""}
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
    assoc: LeanFind | Association, model: str, patient_id: str, study_uid: str, series_uid: str,
    extra_keys: Iterable[str] = (),
) -> list[InstanceInfo]:
    ds: Keys = {"QueryRetrieveLevel": "IMAGE", "PatientID": id_key(patient_id), "StudyInstanceUID": study_uid,
                "SeriesInstanceUID": series_uid, "SOPInstanceUID": "", "SOPClassUID": ""}
    for key in extra_keys:
        ds[key] = ""
    out = []
    for ident in c_find(assoc, model, ds):
        uid = _s(ident, "SOPInstanceUID")
        if uid:
            out.append(InstanceInfo(uid, _s(ident, "SOPClassUID"), series_uid,
                                    _s(ident, "RTPlanLabel"), _s(ident, "ApprovalStatus"), _s(ident, "RTPlanDate")))
    return out


def query_patient(assoc: LeanFind | Association, patient_id: str, model: str | None = None) -> PatientQuery:
    """Studies and their series for one Patient ID (exact match, no wildcards)."""
    if model is None:
        model = choose_model(assoc)
        accepted = _accepted(assoc)
        if not id_key(patient_id) and str(FIND_MODELS["S"]) in accepted:
            model = "S"  # Study Root needs no Patient ID below the study: the ID is matched by us
    name, studies = find_studies(assoc, model, patient_id)
    for st in studies:
        st.series = find_series(assoc, model, patient_id, st.study_uid)
    return PatientQuery(patient_id, name, model, studies)


def sop_classes_in_study(assoc: LeanFind | Association, model: str, patient_id: str, study_uid: str) -> set[str]:
    """SOP Classes in Study (0008,0062) of one study; empty when the node does not return it."""
    ds: Keys = {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": study_uid, "SOPClassesInStudy": ""}
    if model == "P":
        ds["PatientID"] = id_key(patient_id)
    out: set[str] = set()
    for ident in c_find(assoc, model, ds):
        out.update(v for v in _s(ident, "SOPClassesInStudy").split("\\") if v)
    return out
