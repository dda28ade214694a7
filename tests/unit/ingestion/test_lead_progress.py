"""An expert's best lead: LEAD_PROGRESS ranks every lead status once, in the machine's order."""

from __future__ import annotations

from sourcing.common.statemachines import LEAD, LeadStatus
from sourcing.ingestion.service import LEAD_PROGRESS


def test_every_lead_status_ranked_once() -> None:
    assert sorted(LEAD_PROGRESS) == sorted(LEAD.states)


def test_each_forward_move_of_the_machine_is_progress() -> None:
    rank = {status: index for index, status in enumerate(LEAD_PROGRESS)}
    backward = {
        (source, target)
        for source, target in LEAD.transitions
        if rank[target] < rank[source]
        and target not in (LeadStatus.DISQUALIFIED, LeadStatus.ENRICHMENT_FAILED)
    }
    # Every move goes up, but into the two dead ends (disqualified, enrichment failed).
    assert backward == set()
    assert LEAD_PROGRESS[0] == LeadStatus.DISQUALIFIED
    assert LEAD_PROGRESS[-1] == LeadStatus.CONVERTED
