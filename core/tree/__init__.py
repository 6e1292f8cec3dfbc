"""The reference tree: per-patient trees with RT Plans as roots.

``model`` holds the typed data (``NodeKind``, ``Node``, one ``*Info`` per kind),
``index`` the look-up tables over one patient's instances, ``build`` the rules
(summaries in, trees out; pure), ``labels`` every text of the tree. Data flows
one way: archive summaries -> ``build_forest`` -> render / TUI / store / retrieve
/ anonymize, which read ``Node.info`` and never parse labels.
"""

from __future__ import annotations

from dicomtools.core.tree.build import (
    UNCONNECTED_ORDER,
    build_forest,
    build_patient,
    plan_kind,
    plan_nodes,
    sop_class_name,
)
from dicomtools.core.tree.index import NON_IMAGE_MODALITIES, is_image
from dicomtools.core.tree.model import (
    PLAN_KINDS,
    SERIES_KINDS,
    BeamNodeInfo,
    DoseInfo,
    MissingInfo,
    Node,
    NodeInfo,
    NodeKind,
    OtherInfo,
    PatientTree,
    PlanInfo,
    RecordInfo,
    RegInfo,
    RtImageInfo,
    SeriesInfo,
    StructInfo,
)

__all__ = [
    "NON_IMAGE_MODALITIES",
    "PLAN_KINDS",
    "SERIES_KINDS",
    "UNCONNECTED_ORDER",
    "BeamNodeInfo",
    "DoseInfo",
    "MissingInfo",
    "Node",
    "NodeInfo",
    "NodeKind",
    "OtherInfo",
    "PatientTree",
    "PlanInfo",
    "RecordInfo",
    "RegInfo",
    "RtImageInfo",
    "SeriesInfo",
    "StructInfo",
    "build_forest",
    "build_patient",
    "is_image",
    "plan_kind",
    "plan_nodes",
    "sop_class_name",
]
