"""The §8 state machines: every allowed move accepted, forbidden ones refused, docs rendered."""

from __future__ import annotations

import itertools

import pytest

from sourcing.common.errors import InvalidTransition
from sourcing.common.statemachines import (
    CALL_TASK,
    CALLER_ALLOCATION,
    LEAD,
    MACHINES,
    OUTREACH_THREAD,
    PROJECT,
    SCREENING_RESPONSE,
    StateMachine,
    machine,
    to_mermaid,
)

ALL = sorted(MACHINES.values(), key=lambda m: m.name)
ALLOWED = [(m, a, b) for m in ALL for a, b in m.ordered_transitions()]
FORBIDDEN = [
    (m, a, b)
    for m in ALL
    for a, b in itertools.product(m.states, m.states)
    if (a, b) not in m.transitions
]

# One clearly wrong move per machine, named so a failure reads well.
FORBIDDEN_EXAMPLES = {
    "lead": ("NEW", "CONVERTED"),
    "outreach_thread": ("ARCHIVED", "OPEN"),
    "screening_response": ("COMPLETE", "PENDING"),
    "call_task": ("PENDING", "COMPLETED"),
    "caller_allocation": ("SUSPENDED", "WARMUP_GRACE"),
    "project": ("ARCHIVED", "ACTIVE"),
}

# The manual §8 diagrams, transcribed as moves: the additions must be the only difference.
MANUAL = {
    "lead": {
        ("NEW", "ENRICHING"),
        ("ENRICHING", "ENRICHED"),
        ("ENRICHED", "OUTREACH_PENDING"),
        ("OUTREACH_PENDING", "CONTACTED"),
        ("CONTACTED", "REPLIED"),
        ("REPLIED", "CONVERTED"),
        ("OUTREACH_PENDING", "DISQUALIFIED"),
    },
    "outreach_thread": {("OPEN", "CLOSED"), ("CLOSED", "ARCHIVED"), ("OPEN", "ARCHIVED")},
    "screening_response": {
        ("PENDING", "IN_PROGRESS"),
        ("IN_PROGRESS", "COMPLETE"),
        ("PENDING", "ESCALATED"),
        ("IN_PROGRESS", "ESCALATED"),
    },
    "call_task": {
        ("PENDING", "ASSIGNED"),
        ("ASSIGNED", "DIALING"),
        ("DIALING", "COMPLETED"),
        ("ASSIGNED", "EXPIRED"),
        ("DIALING", "CANCELLED"),
        ("DIALING", "RESTRICTED"),
    },
    "caller_allocation": {
        ("ACTIVE", "AT_RISK"),
        ("AT_RISK", "ACTIVE"),
        ("AT_RISK", "PAUSED_LOW_DIAL_RATE"),
        ("PAUSED_LOW_DIAL_RATE", "AT_RISK"),
        ("ACTIVE", "WARMUP_GRACE"),
        ("WARMUP_GRACE", "ACTIVE"),
        ("ACTIVE", "RESTRICTED_FRAUD"),
        ("RESTRICTED_FRAUD", "SUSPENDED"),
        ("ACTIVE", "IDLE_NO_AVAILABLE_TASKS"),
        ("IDLE_NO_AVAILABLE_TASKS", "ACTIVE"),
    },
    "project": {
        ("ACTIVE", "COMPLETED"),
        ("ACTIVE", "PAUSED"),
        ("PAUSED", "ACTIVE"),
        ("ACTIVE", "ARCHIVED"),
        ("PAUSED", "ARCHIVED"),
    },
}


def _id(value: object) -> str:
    return value.name if isinstance(value, StateMachine) else str(value)


def test_the_six_machines_are_registered() -> None:
    assert set(MACHINES) == {
        "lead",
        "outreach_thread",
        "screening_response",
        "call_task",
        "caller_allocation",
        "project",
    }
    assert machine("lead") is LEAD
    with pytest.raises(KeyError, match="unknown state machine"):
        machine("invoice")


@pytest.mark.parametrize(("sm", "source", "target"), ALLOWED, ids=_id)
def test_every_allowed_transition_is_accepted(sm: StateMachine, source: str, target: str) -> None:
    assert sm.can(source, target)
    sm.assert_transition(source, target)
    assert target in sm.next_states(source)


@pytest.mark.parametrize(("sm", "source", "target"), FORBIDDEN, ids=_id)
def test_every_other_move_is_refused(sm: StateMachine, source: str, target: str) -> None:
    assert not sm.can(source, target)
    with pytest.raises(InvalidTransition):
        sm.assert_transition(source, target)


@pytest.mark.parametrize("name", sorted(FORBIDDEN_EXAMPLES))
def test_forbidden_move_error_names_the_move(name: str) -> None:
    sm = MACHINES[name]
    source, target = FORBIDDEN_EXAMPLES[name]
    with pytest.raises(InvalidTransition) as caught:
        sm.assert_transition(source, target)
    error = caught.value
    assert (error.machine, error.from_state, error.to_state) == (name, source, target)
    assert error.code == "invalid_transition"
    assert error.status == 409
    assert f"{source} -> {target}" in str(error)
    assert error.allowed == sm.next_states(source)


@pytest.mark.parametrize("sm", ALL, ids=_id)
def test_manual_moves_plus_documented_additions_are_exactly_the_machine(sm: StateMachine) -> None:
    assert sm.manual_transitions == MANUAL[sm.name]
    assert sm.transitions == MANUAL[sm.name] | sm.additions
    # Every addition is explained in the module docstring.
    import sourcing.common.statemachines as module

    doc = module.__doc__ or ""
    for source, target in sm.additions:
        assert source in doc and target in doc


def test_unknown_states_are_refused() -> None:
    with pytest.raises(InvalidTransition):
        LEAD.assert_transition("NEW", "TELEPORTED")
    with pytest.raises(InvalidTransition):
        LEAD.assert_transition("TELEPORTED", "NEW", allow_same=True)


def test_same_state_is_refused_unless_allowed() -> None:
    with pytest.raises(InvalidTransition):
        CALL_TASK.assert_transition("ASSIGNED", "ASSIGNED")
    CALL_TASK.assert_transition("ASSIGNED", "ASSIGNED", allow_same=True)


def test_initial_and_terminal_states() -> None:
    assert LEAD.initial == "NEW"
    assert LEAD.terminal == {"CONVERTED", "DISQUALIFIED"}
    assert OUTREACH_THREAD.terminal == {"ARCHIVED"}
    assert SCREENING_RESPONSE.terminal == {"COMPLETE", "ESCALATED"}
    assert CALL_TASK.terminal == {"COMPLETED", "CANCELLED", "RESTRICTED"}
    assert CALLER_ALLOCATION.initial == "ACTIVE"
    assert CALLER_ALLOCATION.terminal == frozenset()  # an admin reactivates SUSPENDED
    assert PROJECT.terminal == {"COMPLETED", "ARCHIVED"}


def test_issue_requirements_are_reachable() -> None:
    # Issue 3: enrichment that found nothing has its own status, and can be retried.
    assert LEAD.can("ENRICHING", "ENRICHMENT_FAILED")
    assert LEAD.can("ENRICHMENT_FAILED", "ENRICHING")
    # Issue 4: expired and requeued tasks return to the pool.
    assert CALL_TASK.can("EXPIRED", "PENDING")
    assert CALL_TASK.can("ASSIGNED", "PENDING")
    # Issue 4: paused callers come back when dialling resumes; fraud from any working state.
    assert CALLER_ALLOCATION.can("PAUSED_LOW_DIAL_RATE", "ACTIVE")
    for state in ("ACTIVE", "AT_RISK", "PAUSED_LOW_DIAL_RATE", "WARMUP_GRACE"):
        assert CALLER_ALLOCATION.can(state, "RESTRICTED_FRAUD")
    assert CALLER_ALLOCATION.can("RESTRICTED_FRAUD", "SUSPENDED")
    # Issue 13: admin review and administration of callers; sign-up converts leads.
    assert CALLER_ALLOCATION.can("RESTRICTED_FRAUD", "ACTIVE")
    assert CALLER_ALLOCATION.can("SUSPENDED", "ACTIVE")
    for state in ("ACTIVE", "WARMUP_GRACE", "AT_RISK", "PAUSED_LOW_DIAL_RATE"):
        assert CALLER_ALLOCATION.can(state, "SUSPENDED")
    for state in ("ENRICHED", "OUTREACH_PENDING", "CONTACTED", "REPLIED"):
        assert LEAD.can(state, "CONVERTED")
    assert not LEAD.can("ENRICHING", "CONVERTED")


def test_shortest_path_through_allowed_moves() -> None:
    assert CALLER_ALLOCATION.path("ACTIVE", "ACTIVE") == ()
    assert CALLER_ALLOCATION.path("ACTIVE", "PAUSED_LOW_DIAL_RATE") == (
        "AT_RISK",
        "PAUSED_LOW_DIAL_RATE",
    )
    assert CALLER_ALLOCATION.path("WARMUP_GRACE", "PAUSED_LOW_DIAL_RATE") == (
        "ACTIVE",
        "AT_RISK",
        "PAUSED_LOW_DIAL_RATE",
    )
    # SUSPENDED leaves only to ACTIVE: with ACTIVE avoided, AT_RISK is unreachable.
    assert CALLER_ALLOCATION.path("SUSPENDED", "AT_RISK", avoid={"ACTIVE"}) is None
    assert LEAD.path("CONVERTED", "NEW") is None


def test_invalid_definitions_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown state"):
        StateMachine("x", ("A", "B"), "A", frozenset({("A", "C")}))
    with pytest.raises(ValueError, match="initial"):
        StateMachine("x", ("A", "B"), "C", frozenset({("A", "B")}))
    with pytest.raises(ValueError, match="self-transition"):
        StateMachine("x", ("A", "B"), "A", frozenset({("A", "A")}))
    with pytest.raises(ValueError, match="additions"):
        StateMachine("x", ("A", "B"), "A", frozenset({("A", "B")}), frozenset({("B", "A")}))


@pytest.mark.parametrize("sm", ALL, ids=_id)
def test_mermaid_contains_every_transition(sm: StateMachine) -> None:
    diagram = to_mermaid(sm)
    lines = diagram.splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert f"    [*] --> {sm.initial}" in lines
    for source, target in sm.transitions:
        assert f"    {source} --> {target}" in lines
    for state in sm.terminal:
        assert f"    {state} --> [*]" in lines
    assert len(lines) == 2 + len(sm.transitions) + len(sm.terminal)
    assert to_mermaid(sm) == diagram  # deterministic


def test_mermaid_can_mark_additions() -> None:
    diagram = to_mermaid(CALL_TASK, mark_additions=True)
    assert "    EXPIRED --> PENDING: not in manual" in diagram.splitlines()
    assert "    PENDING --> ASSIGNED" in diagram.splitlines()
