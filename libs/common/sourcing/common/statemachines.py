"""The lifecycle state machines of the operations manual (§8) as data.

Each machine is a list of states and a frozen set of allowed ``(from, to)`` moves. Every status
write goes through :func:`sourcing.common.transitions.move`, which checks it with
:meth:`StateMachine.assert_transition`; a forbidden move raises
:class:`sourcing.common.errors.InvalidTransition`, which the gateway renders as HTTP 409
``invalid_transition``. The status columns' CHECK constraints in :mod:`sourcing.common.models`
are generated from the same state lists, and the documentation generator renders these machines
with :func:`to_mermaid`, so code, database and docs cannot drift apart.

Reading of the manual's diagrams
--------------------------------
* ``A → B → C`` allows ``A→B`` and ``B→C`` (never ``A→C``); ``A ↔ B`` allows both directions.
* Lead: the ``\\→ DISQUALIFIED`` branch is drawn starting under ``OUTREACH_PENDING``, so the
  manual's only disqualification is ``OUTREACH_PENDING → DISQUALIFIED``.
* Call task: the diagram's lines all pass through ``ASSIGNED``; it has no way back to the pool.
* Caller allocation: ``ACTIVE`` is the initial state (a registered caller), and a shift start
  moves it to ``WARMUP_GRACE``.

Additions to the manual (each listed in the machine's ``additions``)
--------------------------------------------------------------------
Lead (issue 3: a lead no provider could enrich keeps "a clear status and reason"; issue 3/4:
suppressed experts stop everywhere and are never revived by re-ingestion):

* new state ``ENRICHMENT_FAILED``: ``ENRICHING → ENRICHMENT_FAILED`` when the whole waterfall
  found nothing usable (the reason goes in ``leads.status_reason``), and
  ``ENRICHMENT_FAILED → ENRICHING`` to retry (re-ingestion or an operator).
* ``NEW``, ``ENRICHING``, ``ENRICHED``, ``ENRICHMENT_FAILED``, ``CONTACTED``, ``REPLIED``
  ``→ DISQUALIFIED``: a never-contact suppression (or another disqualifying rule) ends a lead in
  whatever non-terminal state it is.

Lead (issue 13: the expert signed up, whichever channel reached them, a caller's link
included):

* ``ENRICHED``, ``OUTREACH_PENDING``, ``CONTACTED`` ``→ CONVERTED``: a sign-up converts the
  expert's leads that were reached or ready to be reached; a lead still being enriched (NEW,
  ENRICHING, ENRICHMENT_FAILED) or already DISQUALIFIED keeps its status.

Call task (issue 4: expired tasks "return to the pool"; operators requeue stalled tasks; a
never-contact expert gets no more calls):

* ``EXPIRED → PENDING``: an assigned task not dialled in time returns to the pool.
* ``ASSIGNED → PENDING`` and ``DIALING → PENDING``: operator requeue (manual §4.5, §12).
* ``PENDING → CANCELLED``: pending tasks of a suppressed expert (or a closed project) are
  cancelled instead of lingering in the allocation index.

Caller allocation status (issue 4 and manual §14):

* ``PAUSED_LOW_DIAL_RATE → ACTIVE``: "back to ACTIVE when dialling resumes".
* ``AT_RISK``, ``PAUSED_LOW_DIAL_RATE``, ``WARMUP_GRACE``, ``IDLE_NO_AVAILABLE_TASKS``
  ``→ RESTRICTED_FRAUD``: fraud thresholds apply whatever the dial-rate state.
* ``RESTRICTED_FRAUD → ACTIVE``: an admin clears the caller after review ("requires admin review").
* ``ACTIVE``, ``WARMUP_GRACE``, ``AT_RISK``, ``PAUSED_LOW_DIAL_RATE``,
  ``IDLE_NO_AVAILABLE_TASKS → SUSPENDED`` and ``SUSPENDED → ACTIVE`` (issue 13): an admin
  suspends a caller from any working state, and reactivates a suspended one
  (``POST /api/v1/callers/{callerId}/status``). The performance evaluation never enters or
  leaves SUSPENDED, so these moves are the admin's alone.
* ``AT_RISK``, ``PAUSED_LOW_DIAL_RATE → IDLE_NO_AVAILABLE_TASKS``: a caller whose dial rate is
  low because nothing is left to dial is idle, not at risk.
* ``AT_RISK``, ``PAUSED_LOW_DIAL_RATE``, ``IDLE_NO_AVAILABLE_TASKS → WARMUP_GRACE``: a new shift
  starts with the grace period whatever state the previous shift ended in.

Outreach thread, screening response and project: exactly as the manual draws them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from sourcing.common.errors import InvalidTransition

Transition = tuple[str, str]


@dataclass(frozen=True, slots=True)
class StateMachine:
    """States and allowed moves of one entity's status."""

    name: str
    states: tuple[str, ...]
    initial: str
    transitions: frozenset[Transition]
    # Moves not drawn in manual §8, added for the issues (see the module docstring).
    additions: frozenset[Transition] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        known = set(self.states)
        if len(known) != len(self.states):
            raise ValueError(f"{self.name}: duplicate states")
        if self.initial not in known:
            raise ValueError(f"{self.name}: unknown initial state {self.initial!r}")
        for source, target in self.transitions:
            if source not in known or target not in known:
                raise ValueError(f"{self.name}: transition {source}->{target} uses unknown state")
            if source == target:
                raise ValueError(f"{self.name}: self-transition {source}->{target}")
        if not self.additions <= self.transitions:
            raise ValueError(f"{self.name}: additions must be allowed transitions")

    @property
    def terminal(self) -> frozenset[str]:
        """States with no way out."""
        sources = {source for source, _ in self.transitions}
        return frozenset(state for state in self.states if state not in sources)

    @property
    def manual_transitions(self) -> frozenset[Transition]:
        """The moves exactly as manual §8 draws them."""
        return self.transitions - self.additions

    def is_state(self, state: str) -> bool:
        return state in self.states

    def can(self, from_state: str, to_state: str) -> bool:
        return (from_state, to_state) in self.transitions

    def next_states(self, from_state: str) -> tuple[str, ...]:
        """States reachable in one move from ``from_state``, in declaration order."""
        return tuple(state for state in self.states if (from_state, state) in self.transitions)

    def assert_transition(
        self, from_state: str, to_state: str, *, allow_same: bool = False
    ) -> None:
        """Raise :class:`InvalidTransition` unless ``from_state → to_state`` is allowed.

        ``allow_same`` accepts a write that keeps the status unchanged (an idempotent handler
        seeing its own earlier write again); the state must still be one of the machine's.
        """
        if allow_same and from_state == to_state and from_state in self.states:
            return
        if not self.can(from_state, to_state):
            raise InvalidTransition(
                self.name, from_state, to_state, allowed=self.next_states(from_state)
            )

    def path(
        self, from_state: str, to_state: str, *, avoid: Iterable[str] = ()
    ) -> tuple[str, ...] | None:
        """The states after ``from_state`` on a shortest chain of allowed moves to ``to_state``
        (``()`` when already there), never passing through ``avoid``; None when unreachable."""
        if from_state == to_state:
            return ()
        avoided = set(avoid)
        queue: deque[tuple[str, tuple[str, ...]]] = deque([(from_state, ())])
        seen = {from_state}
        while queue:
            state, steps = queue.popleft()
            for nxt in self.next_states(state):
                if nxt in seen:
                    continue
                seen.add(nxt)
                if nxt == to_state:
                    return (*steps, nxt)
                if nxt not in avoided:
                    queue.append((nxt, (*steps, nxt)))
        return None

    def ordered_transitions(self) -> list[Transition]:
        """Every allowed move, ordered by the states' declaration order (deterministic)."""
        rank = {state: index for index, state in enumerate(self.states)}
        return sorted(self.transitions, key=lambda move: (rank[move[0]], rank[move[1]]))


def _chain(*states: str) -> set[Transition]:
    """``A → B → C`` as moves."""
    return {(states[i], states[i + 1]) for i in range(len(states) - 1)}


def _both(a: str, b: str) -> set[Transition]:
    """``A ↔ B`` as moves."""
    return {(a, b), (b, a)}


def _machine(
    name: str,
    states: type[StrEnum],
    *,
    initial: StrEnum,
    manual: set[Transition],
    additions: set[Transition] | None = None,
) -> StateMachine:
    extra = additions or set()
    overlap = manual & extra
    if overlap:
        raise ValueError(f"{name}: additions already in the manual: {sorted(overlap)}")
    return StateMachine(
        name=name,
        states=tuple(member.value for member in states),
        initial=initial.value,
        transitions=frozenset({(str(a), str(b)) for a, b in manual | extra}),
        additions=frozenset({(str(a), str(b)) for a, b in extra}),
    )


# --- Lead -----------------------------------------------------------------------------------


class LeadStatus(StrEnum):
    NEW = "NEW"
    ENRICHING = "ENRICHING"
    ENRICHED = "ENRICHED"
    ENRICHMENT_FAILED = "ENRICHMENT_FAILED"  # addition (issue 3)
    OUTREACH_PENDING = "OUTREACH_PENDING"
    CONTACTED = "CONTACTED"
    REPLIED = "REPLIED"
    CONVERTED = "CONVERTED"
    DISQUALIFIED = "DISQUALIFIED"


_L = LeadStatus
LEAD = _machine(
    "lead",
    LeadStatus,
    initial=_L.NEW,
    manual=_chain(
        _L.NEW,
        _L.ENRICHING,
        _L.ENRICHED,
        _L.OUTREACH_PENDING,
        _L.CONTACTED,
        _L.REPLIED,
        _L.CONVERTED,
    )
    | {(_L.OUTREACH_PENDING, _L.DISQUALIFIED)},
    additions={
        (_L.ENRICHING, _L.ENRICHMENT_FAILED),
        (_L.ENRICHMENT_FAILED, _L.ENRICHING),
        (_L.NEW, _L.DISQUALIFIED),
        (_L.ENRICHING, _L.DISQUALIFIED),
        (_L.ENRICHED, _L.DISQUALIFIED),
        (_L.ENRICHMENT_FAILED, _L.DISQUALIFIED),
        (_L.CONTACTED, _L.DISQUALIFIED),
        (_L.REPLIED, _L.DISQUALIFIED),
        (_L.ENRICHED, _L.CONVERTED),
        (_L.OUTREACH_PENDING, _L.CONVERTED),
        (_L.CONTACTED, _L.CONVERTED),
    },
)


# --- Outreach thread ------------------------------------------------------------------------


class OutreachThreadStatus(StrEnum):
    OPEN = "OPEN"
    CLOSED = "CLOSED"
    ARCHIVED = "ARCHIVED"


_T = OutreachThreadStatus
OUTREACH_THREAD = _machine(
    "outreach_thread",
    OutreachThreadStatus,
    initial=_T.OPEN,
    manual=_chain(_T.OPEN, _T.CLOSED, _T.ARCHIVED) | {(_T.OPEN, _T.ARCHIVED)},
)


# --- Screening response ---------------------------------------------------------------------


class ScreeningResponseStatus(StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETE = "COMPLETE"
    ESCALATED = "ESCALATED"


_S = ScreeningResponseStatus
SCREENING_RESPONSE = _machine(
    "screening_response",
    ScreeningResponseStatus,
    initial=_S.PENDING,
    manual=_chain(_S.PENDING, _S.IN_PROGRESS, _S.COMPLETE)
    | {(_S.PENDING, _S.ESCALATED), (_S.IN_PROGRESS, _S.ESCALATED)},
)


# --- Call task ------------------------------------------------------------------------------


class CallTaskStatus(StrEnum):
    PENDING = "PENDING"
    ASSIGNED = "ASSIGNED"
    DIALING = "DIALING"
    COMPLETED = "COMPLETED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"
    RESTRICTED = "RESTRICTED"


_C = CallTaskStatus
CALL_TASK = _machine(
    "call_task",
    CallTaskStatus,
    initial=_C.PENDING,
    manual=_chain(_C.PENDING, _C.ASSIGNED, _C.DIALING, _C.COMPLETED)
    | _chain(_C.PENDING, _C.ASSIGNED, _C.EXPIRED)
    | _chain(_C.PENDING, _C.ASSIGNED, _C.DIALING, _C.CANCELLED)
    | _chain(_C.PENDING, _C.ASSIGNED, _C.DIALING, _C.RESTRICTED),
    additions={
        (_C.EXPIRED, _C.PENDING),
        (_C.ASSIGNED, _C.PENDING),
        (_C.DIALING, _C.PENDING),
        (_C.PENDING, _C.CANCELLED),
    },
)

# Statuses in which a task belongs to a caller (at most one per caller, enforced by an index).
CALL_TASK_ACTIVE_STATUSES: tuple[str, ...] = (_C.ASSIGNED.value, _C.DIALING.value)
# Statuses in which a task is still to be worked (at most one per expert and project).
CALL_TASK_OPEN_STATUSES: tuple[str, ...] = (
    _C.PENDING.value,
    _C.ASSIGNED.value,
    _C.DIALING.value,
)


# --- Caller allocation status ---------------------------------------------------------------


class CallerAllocationStatus(StrEnum):
    ACTIVE = "ACTIVE"
    WARMUP_GRACE = "WARMUP_GRACE"
    AT_RISK = "AT_RISK"
    PAUSED_LOW_DIAL_RATE = "PAUSED_LOW_DIAL_RATE"
    IDLE_NO_AVAILABLE_TASKS = "IDLE_NO_AVAILABLE_TASKS"
    RESTRICTED_FRAUD = "RESTRICTED_FRAUD"
    SUSPENDED = "SUSPENDED"


_A = CallerAllocationStatus
CALLER_ALLOCATION = _machine(
    "caller_allocation",
    CallerAllocationStatus,
    initial=_A.ACTIVE,
    manual=_both(_A.ACTIVE, _A.AT_RISK)
    | _both(_A.AT_RISK, _A.PAUSED_LOW_DIAL_RATE)
    | _chain(_A.ACTIVE, _A.WARMUP_GRACE, _A.ACTIVE)
    | _chain(_A.ACTIVE, _A.RESTRICTED_FRAUD, _A.SUSPENDED)
    | _chain(_A.ACTIVE, _A.IDLE_NO_AVAILABLE_TASKS, _A.ACTIVE),
    additions={
        (_A.ACTIVE, _A.SUSPENDED),
        (_A.WARMUP_GRACE, _A.SUSPENDED),
        (_A.AT_RISK, _A.SUSPENDED),
        (_A.PAUSED_LOW_DIAL_RATE, _A.SUSPENDED),
        (_A.IDLE_NO_AVAILABLE_TASKS, _A.SUSPENDED),
        (_A.SUSPENDED, _A.ACTIVE),
        (_A.PAUSED_LOW_DIAL_RATE, _A.ACTIVE),
        (_A.AT_RISK, _A.RESTRICTED_FRAUD),
        (_A.PAUSED_LOW_DIAL_RATE, _A.RESTRICTED_FRAUD),
        (_A.WARMUP_GRACE, _A.RESTRICTED_FRAUD),
        (_A.IDLE_NO_AVAILABLE_TASKS, _A.RESTRICTED_FRAUD),
        (_A.RESTRICTED_FRAUD, _A.ACTIVE),
        (_A.AT_RISK, _A.IDLE_NO_AVAILABLE_TASKS),
        (_A.PAUSED_LOW_DIAL_RATE, _A.IDLE_NO_AVAILABLE_TASKS),
        (_A.AT_RISK, _A.WARMUP_GRACE),
        (_A.PAUSED_LOW_DIAL_RATE, _A.WARMUP_GRACE),
        (_A.IDLE_NO_AVAILABLE_TASKS, _A.WARMUP_GRACE),
    },
)

# --- Project --------------------------------------------------------------------------------


class ProjectStatus(StrEnum):
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    ARCHIVED = "ARCHIVED"


_P = ProjectStatus
PROJECT = _machine(
    "project",
    ProjectStatus,
    initial=_P.ACTIVE,
    manual={(_P.ACTIVE, _P.COMPLETED), (_P.ACTIVE, _P.ARCHIVED), (_P.PAUSED, _P.ARCHIVED)}
    | _chain(_P.ACTIVE, _P.PAUSED, _P.ACTIVE),
)


MACHINES: dict[str, StateMachine] = {
    machine.name: machine
    for machine in (
        LEAD,
        OUTREACH_THREAD,
        SCREENING_RESPONSE,
        CALL_TASK,
        CALLER_ALLOCATION,
        PROJECT,
    )
}


def machine(name: str) -> StateMachine:
    try:
        return MACHINES[name]
    except KeyError:
        raise KeyError(f"unknown state machine {name!r}; known: {', '.join(MACHINES)}") from None


def to_mermaid(machine: StateMachine, *, mark_additions: bool = False) -> str:
    """The machine as a Mermaid ``stateDiagram-v2`` (deterministic: same machine, same text).

    ``mark_additions`` labels the moves that are not drawn in manual §8.
    """
    lines = ["stateDiagram-v2", f"    [*] --> {machine.initial}"]
    for source, target in machine.ordered_transitions():
        label = (
            ": not in manual" if mark_additions and (source, target) in machine.additions else ""
        )
        lines.append(f"    {source} --> {target}{label}")
    lines.extend(f"    {state} --> [*]" for state in machine.states if state in machine.terminal)
    return "\n".join(lines) + "\n"
