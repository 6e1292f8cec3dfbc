"""The Query/Retrieve SOP classes, in one place: FIND, MOVE and GET, Patient Root and Study Root.

Keys ``"P"`` (Patient Root) and ``"S"`` (Study Root) are the model a session
settled on (``find.choose_model``); the find, the fetch, the retrieve job and
the demo node all read these tables, so a model added or dropped is added or
dropped everywhere. Plain UID strings (PS3.4 C.6): no pynetdicom import for them.
"""

from __future__ import annotations

FIND_MODELS = {"P": "1.2.840.10008.5.1.4.1.2.1.1", "S": "1.2.840.10008.5.1.4.1.2.2.1"}
MOVE_MODELS = {"P": "1.2.840.10008.5.1.4.1.2.1.2", "S": "1.2.840.10008.5.1.4.1.2.2.2"}
GET_MODELS = {"P": "1.2.840.10008.5.1.4.1.2.1.3", "S": "1.2.840.10008.5.1.4.1.2.2.3"}
FIND_CONTEXTS = list(FIND_MODELS.values())  # Patient Root first: preferred when both are accepted
ALL_QR_MODELS = (*FIND_MODELS.values(), *MOVE_MODELS.values(), *GET_MODELS.values())
