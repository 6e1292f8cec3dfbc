"""The Query/Retrieve SOP classes, in one place: FIND, MOVE and GET, Patient Root and Study Root.

Keys ``"P"`` (Patient Root) and ``"S"`` (Study Root) are the model a session
settled on (``find.choose_model``); the find, the fetch, the retrieve job and
the demo node all read these tables, so a model added or dropped is added or
dropped everywhere.
"""

from __future__ import annotations

from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

FIND_MODELS = {"P": PatientRootQueryRetrieveInformationModelFind, "S": StudyRootQueryRetrieveInformationModelFind}
MOVE_MODELS = {"P": PatientRootQueryRetrieveInformationModelMove, "S": StudyRootQueryRetrieveInformationModelMove}
GET_MODELS = {"P": PatientRootQueryRetrieveInformationModelGet, "S": StudyRootQueryRetrieveInformationModelGet}
FIND_CONTEXTS = list(FIND_MODELS.values())  # Patient Root first: preferred when both are accepted
ALL_QR_MODELS = (*FIND_MODELS.values(), *MOVE_MODELS.values(), *GET_MODELS.values())
