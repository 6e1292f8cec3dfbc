"""``retrieve``: one patient's plans and everything they reference, from a node to a folder.

C-FIND the patient's studies and series; C-MOVE into our own Storage SCP
(or C-GET over the same association) into a temporary folder inside the
target; build the reference tree from what arrived; keep the wanted plans'
subtrees (or everything); move them into the target with a new Patient
ID/Name applied when asked; remove the temporary folder always.

Selective retrieval, when the node answers series-level queries with
Modality and a plan filter is given: the RTPLAN series first, then the RT
object series (structure sets, doses, records, RT images, registrations),
then the image series the chosen plans' structure sets and registrations
name, then one sample instance of every other image series (a CBCT names
its plan only inside its instances) and the whole series when the sample
belongs to a chosen plan. When unsure, the whole patient is fetched.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import BinaryIO

from dicomtools.core.config import NodeConfig
from dicomtools.core.net.retrieve_job import _Job
from dicomtools.core.net.retrieve_model import (  # noqa: F401 - re-exported
    FIND_CONTEXTS,
    GET_MODELS,
    MOVE_MODELS,
    RT_OBJECT_MODALITIES,
    FetchOutcome,
    RetrieveOptions,
    RetrieveResult,
)
from dicomtools.core.net.retrieve_save import (  # noqa: F401 - re-exported
    TEMP_PREFIX,
    _lock_temp_folder,
    _save,
    _save_anonymized,
    make_temp_folder,
    remove_stale_temp_folders,
    remove_temp_folder,
    write_anonymization_map,
)
from dicomtools.core.net.retrieve_select import select  # noqa: F401 - re-exported
from dicomtools.core.progress import CancelToken, ProgressSink, Reporter
from dicomtools.core.tree import build_forest

log = logging.getLogger(__name__)


def retrieve(
    node: NodeConfig,
    opts: RetrieveOptions,
    *,
    sink: ProgressSink | None = None,
    cancel: CancelToken | None = None,
) -> RetrieveResult:
    """Run the whole retrieve; raises :class:`NetError` when the node refuses us.

    Problems that leave data missing are listed in ``result.problems`` (exit
    non-zero). The temporary folder is removed in every case, also on
    ``KeyboardInterrupt``.
    """
    cancel = cancel or CancelToken()
    rep = Reporter("retrieve", sink)
    out = Path(opts.out_dir)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale_temp_folders(out):
        rep.message(f"removed {stale}: left by an interrupted retrieve")
    tmp = make_temp_folder(out)
    lock: BinaryIO | None = None
    try:
        lock = _lock_temp_folder(tmp)
        job = _Job(node, opts, tmp, rep, cancel)
        result = job.run()
        job.read_new()
        result.problems.extend(f"received an unreadable file: {why}" for why in job.unreadable.values())
        result.problems.extend(job.rejected.values())
        forest = build_forest(job.summaries.values(), opts.default_machines)
        others = [t.patient_id for t in forest if t.patient_id != opts.patient_id]
        if others:
            result.problems.append(f"the node sent instances of other patients: {', '.join(others)} (ignored)")
        forest = [t for t in forest if t.patient_id == opts.patient_id]
        selected, chosen, problems = select(forest, opts.plan_ids, opts.only_approved)
        result.chosen_plans = chosen
        result.problems.extend(problems)
        if opts.anonymize is not None:
            # the map row first: a Ctrl-C while saving must not leave saved files without it
            original_name = next((i.patient_name for i in selected if i.patient_name), "")
            if selected:
                write_anonymization_map(out, [(opts.patient_id, original_name, opts.anonymize.new_patient_id,
                                               opts.anonymize.new_patient_name)])
            result.saved = _save_anonymized(selected, out, opts.anonymize, sink, cancel, result.problems)
        else:
            result.saved = _save(selected, out, opts.new_patient_id, opts.new_patient_name, rep, cancel)
        result.default_machines = opts.default_machines  # result.forest is built when asked for
        result.cancelled = cancel.cancelled
        rep.finished(len(result.saved), len(selected), result.summary())
        return result
    finally:
        remove_temp_folder(tmp)
        if lock is not None:
            lock.close()
        if created:
            try:
                out.rmdir()  # only when nothing was saved
            except OSError:
                pass
