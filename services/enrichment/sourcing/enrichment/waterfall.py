"""The enrichment waterfall of manual §9, without the database (the handler persists it).

1. **Selection**: the available providers ordered by success per credit: past success rate
   (EnrichmentAttempt history, smoothed towards a neutral prior so a provider with no history
   is neither favoured nor buried) divided by the provider's declared cost per lookup,
   registry order breaking ties. The history is the expert's region's
   (:func:`history_region`: Europe as one region, elsewhere the country) for a provider with
   enough attempts there, else the global one (:func:`regional_stats`). A provider whose
   circuit breaker is open is skipped (:mod:`sourcing.enrichment.guard`).
2. **Parallel phase**: the first ``parallel`` of them are asked at once.
3. **Region rule** (:meth:`ProviderResult.for_region`) on every answer, *before* ranking: in
   CA, GB, AU and Europe personal emails are dropped, so a personal-only answer is worth nothing.
4. **Evaluation**: answers ranked by confidence; one at or above ``threshold`` wins.
5. **Fallback phase**: otherwise the remaining providers one by one, stopping at the first
   answer at or above the threshold.
6. **Budget**: the whole run is bounded by ``budget_seconds``; every lookup gets what remains
   (a hanging or rate-limited provider ends as a TIMEOUT/RATE_LIMITED attempt, not a stall).

The best answer overall (even below the threshold) is the run's result; none with contacts
means the run failed, and :attr:`WaterfallOutcome.failure_reason` says why. A provider that
answers by callback (Zeliq) is PENDING, not failed: without a confident answer the run waits
for it (:attr:`WaterfallOutcome.waiting`) and completes when the callback lands or times out.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sourcing.common.models.enums import EnrichmentAttemptStatus, EnrichmentPhase
from sourcing.enrichment.providers import (
    EnrichmentProvider,
    PersonQuery,
    ProviderResult,
    ResultStatus,
)
from sourcing.people.contacts import (
    EUROPEAN_COUNTRIES,
    normalize_country,
    requires_professional_email,
)

if TYPE_CHECKING:
    from sourcing.enrichment.guard import ProviderGuard

Clock = Callable[[], float]
"""Monotonic seconds (``time.monotonic``); tests inject their own."""

# Below this much remaining budget a lookup cannot do anything useful: stop asking.
MIN_LOOKUP_SECONDS = 0.05
# Pseudo-attempts of the prior in the success-rate estimate (smoothing strength).
PRIOR_WEIGHT = 4.0
# A free provider's cost in the success-per-credit ratio (it ranks first, not infinitely).
MIN_CREDITS = 0.01
# The history region of the European countries (one market for the providers' coverage).
EUROPE = "EUROPE"

_STATUS: dict[ResultStatus, EnrichmentAttemptStatus] = {
    ResultStatus.HIT: EnrichmentAttemptStatus.SUCCESS,
    ResultStatus.MISS: EnrichmentAttemptStatus.NO_MATCH,
    ResultStatus.ERROR: EnrichmentAttemptStatus.ERROR,
    ResultStatus.TIMEOUT: EnrichmentAttemptStatus.TIMEOUT,
    ResultStatus.RATE_LIMITED: EnrichmentAttemptStatus.RATE_LIMITED,
    ResultStatus.UNAVAILABLE: EnrichmentAttemptStatus.UNAVAILABLE,
    ResultStatus.PENDING: EnrichmentAttemptStatus.PENDING,
}


@dataclass(frozen=True, slots=True)
class ProviderStats:
    """A provider's recent attempts: all of them (unavailable excluded) and the successes."""

    attempts: int = 0
    successes: int = 0


def success_rate(stats: ProviderStats | None, *, prior: float) -> float:
    """Smoothed success rate: ``(successes + prior * k) / (attempts + k)``, ``k`` =
    :data:`PRIOR_WEIGHT`; an untried provider scores exactly ``prior``."""
    if stats is None or stats.attempts <= 0:
        return prior
    return (stats.successes + prior * PRIOR_WEIGHT) / (stats.attempts + PRIOR_WEIGHT)


def history_region(country_iso: str | None) -> str | None:
    """The region whose history ranks providers for an expert: Europe as one (:data:`EUROPE`),
    elsewhere the country itself; None (unknown country) uses the global history."""
    country = normalize_country(country_iso)
    if country is None:
        return None
    return EUROPE if country in EUROPEAN_COUNTRIES else country


def regional_stats(
    by_country: Mapping[str | None, Mapping[str, ProviderStats]],
    country_iso: str | None,
    *,
    min_attempts: int,
) -> dict[str, ProviderStats]:
    """Each provider's history for the expert's region when it has at least ``min_attempts``
    attempts there, else its global history. ``by_country``: stats per attempt country."""
    region = history_region(country_iso)
    overall: dict[str, ProviderStats] = {}
    local: dict[str, ProviderStats] = {}
    for country, stats in by_country.items():
        in_region = region is not None and history_region(country) == region
        for provider, counts in stats.items():
            for target in (overall, local) if in_region else (overall,):
                known = target.get(provider, ProviderStats())
                target[provider] = ProviderStats(
                    attempts=known.attempts + counts.attempts,
                    successes=known.successes + counts.successes,
                )
    return {
        provider: local[provider]
        if provider in local and local[provider].attempts >= min_attempts
        else counts
        for provider, counts in overall.items()
    }


def success_per_credit(
    provider: EnrichmentProvider, stats: Mapping[str, ProviderStats], *, prior: float
) -> float:
    """Smoothed success rate divided by the declared cost of a lookup."""
    rate = success_rate(stats.get(provider.key), prior=prior)
    return rate / max(provider.credits_per_lookup, MIN_CREDITS)


def order_providers(
    providers: Mapping[str, EnrichmentProvider],
    stats: Mapping[str, ProviderStats],
    *,
    prior: float,
) -> list[EnrichmentProvider]:
    """Available providers, best success per credit first (registry order on ties)."""
    available = [(index, p) for index, p in enumerate(providers.values()) if p.available]
    available.sort(key=lambda item: (-success_per_credit(item[1], stats, prior=prior), item[0]))
    return [provider for _, provider in available]


def attempt_status(result: ProviderResult) -> EnrichmentAttemptStatus:
    """The EnrichmentAttempt status of a region-filtered result (FILTERED: data returned but the
    region rule left nothing)."""
    if result.status is ResultStatus.HIT and not result.has_contacts:
        return EnrichmentAttemptStatus.FILTERED
    return _STATUS[result.status]


@dataclass(slots=True)
class Attempt:
    """One provider call of a run (region rule already applied to ``result``)."""

    phase: EnrichmentPhase
    result: ProviderResult
    # The EnrichmentAttempt row's id (drawn here so the run's best answer names its row).
    attempt_id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def status(self) -> EnrichmentAttemptStatus:
        return attempt_status(self.result)

    @property
    def usable(self) -> bool:
        return self.result.has_contacts and self.result.confidence is not None


@dataclass(slots=True)
class WaterfallOutcome:
    attempts: list[Attempt] = field(default_factory=list)
    best: Attempt | None = None
    threshold: float = 0.7
    budget_exhausted: bool = False
    available: int = 0
    country_iso: str | None = None
    # Providers skipped because their circuit breaker is open.
    skipped: list[str] = field(default_factory=list)

    @property
    def credits(self) -> float:
        """What the run's lookups cost."""
        return sum(attempt.result.credits for attempt in self.attempts)

    @property
    def met_threshold(self) -> bool:
        return (
            self.best is not None
            and self.best.result.confidence is not None
            and self.best.result.confidence >= self.threshold
        )

    @property
    def pending(self) -> list[Attempt]:
        """Attempts whose answer comes later by callback."""
        return [a for a in self.attempts if a.status is EnrichmentAttemptStatus.PENDING]

    @property
    def waiting(self) -> bool:
        """No confident answer yet and a provider still to answer: the run stays open."""
        return bool(self.pending) and not self.met_threshold

    @property
    def waiting_reason(self) -> str:
        names = ", ".join(sorted({a.result.provider for a in self.pending}))
        found = (
            f"best so far {self.best.result.provider} at {self.best.result.confidence or 0.0:.2f}"
            if self.best is not None
            else "nothing found so far"
        )
        return f"waiting for the callback of {names} ({found})"

    @property
    def failure_reason(self) -> str | None:
        """Why no contact was found (None when one was)."""
        if self.best is not None:
            return None
        if self.available == 0:
            return "no enrichment provider is configured"
        skipped = "circuit open: " + ", ".join(sorted(self.skipped)) if self.skipped else None
        if not self.attempts and skipped:
            return f"no provider could be asked ({skipped})"
        filtered = sum(1 for a in self.attempts if a.status is EnrichmentAttemptStatus.FILTERED)
        parts = [f"no provider found a contact ({len(self.attempts)} tried)"]
        if filtered:
            parts.append(
                f"professional email required for {self.country_iso}: "
                f"{filtered} personal-only answer(s) filtered"
            )
        elif requires_professional_email(self.country_iso):
            parts.append(f"professional email required for {self.country_iso}")
        failures = sorted(
            {
                a.status.value
                for a in self.attempts
                if a.status
                in (
                    EnrichmentAttemptStatus.ERROR,
                    EnrichmentAttemptStatus.TIMEOUT,
                    EnrichmentAttemptStatus.RATE_LIMITED,
                )
            }
        )
        if failures:
            parts.append("provider failures: " + ", ".join(failures))
        if self.budget_exhausted:
            parts.append("time budget exhausted")
        if skipped:
            parts.append(skipped)
        return "; ".join(parts)

    @property
    def summary(self) -> str:
        """The lead's status reason when a contact was found."""
        if self.best is None:
            return self.failure_reason or ""
        confidence = self.best.result.confidence or 0.0
        head = f"{self.best.result.provider} found contacts at confidence {confidence:.2f}"
        if not self.met_threshold:
            skipped = f"; circuit open: {', '.join(sorted(self.skipped))}" if self.skipped else ""
            head += (
                f" (below the {self.threshold:.2f} target; best of {len(self.attempts)}{skipped})"
            )
        return head


def _rank_key(attempt: Attempt) -> float:
    return attempt.result.confidence if attempt.usable and attempt.result.confidence else -1.0


async def _ask(
    provider: EnrichmentProvider,
    person: PersonQuery,
    *,
    budget: float,
    country: str | None,
    guard: ProviderGuard | None,
) -> ProviderResult:
    """One lookup bounded by ``budget`` (the adapter bounds itself; this is the backstop for an
    adapter that would not), through the provider's limiter and breaker, region rule applied.
    A circuit that opened since the run was planned answers UNAVAILABLE without a request."""
    if guard is not None and not guard.admit(provider.key):
        return ProviderResult(
            provider=provider.key,
            status=ResultStatus.UNAVAILABLE,
            error=f"{provider.display_name}: circuit open",
        )
    started = time.perf_counter()
    sent = False
    try:
        async with asyncio.timeout(budget + 0.5):
            async with guard.limit(provider.key) if guard is not None else nullcontext():
                remaining = budget - (time.perf_counter() - started)
                if remaining < MIN_LOOKUP_SECONDS:
                    raise TimeoutError
                sent = True
                result = await provider.lookup(person, budget_seconds=remaining)
    except TimeoutError:
        waited = f"waited for {provider.display_name}'s rate limit" if not sent else "no answer"
        result = ProviderResult(
            provider=provider.key,
            status=ResultStatus.TIMEOUT,
            latency_ms=round((time.perf_counter() - started) * 1000),
            error=f"{waited} within the waterfall budget ({budget:.2f} s)",
            transient=True,
        )
    if guard is not None and sent:
        guard.record(result)
    elif guard is not None:
        guard.release(provider.key)  # kept back by our own rate limit: says nothing of it
    return result.for_region(country)


async def run_waterfall(
    providers: Mapping[str, EnrichmentProvider],
    person: PersonQuery,
    *,
    stats: Mapping[str, ProviderStats],
    threshold: float,
    parallel: int,
    budget_seconds: float,
    per_lookup_seconds: float,
    prior: float = 0.5,
    clock: Clock = time.monotonic,
    guard: ProviderGuard | None = None,
) -> WaterfallOutcome:
    """Run §9 for ``person`` (module docstring). Never raises for provider trouble."""
    country = normalize_country(person.country_iso)
    ordered = order_providers(providers, stats, prior=prior)
    outcome = WaterfallOutcome(threshold=threshold, available=len(ordered), country_iso=country)
    if guard is not None:
        outcome.skipped = [p.key for p in ordered if not guard.available(p.key)]
        ordered = [p for p in ordered if p.key not in outcome.skipped]
    deadline = clock() + budget_seconds

    def remaining() -> float:
        return min(deadline - clock(), per_lookup_seconds)

    first, rest = ordered[:parallel], ordered[parallel:]
    if first:
        budget = remaining()
        if budget < MIN_LOOKUP_SECONDS:
            outcome.budget_exhausted = True
            return outcome
        results = await asyncio.gather(
            *(_ask(p, person, budget=budget, country=country, guard=guard) for p in first)
        )
        outcome.attempts.extend(Attempt(EnrichmentPhase.PARALLEL, r) for r in results)
    outcome.best = best_attempt(outcome.attempts)
    for provider in rest:
        if outcome.met_threshold:
            break
        budget = remaining()
        if budget < MIN_LOOKUP_SECONDS:
            outcome.budget_exhausted = True
            break
        result = await _ask(provider, person, budget=budget, country=country, guard=guard)
        outcome.attempts.append(Attempt(EnrichmentPhase.FALLBACK, result))
        outcome.best = best_attempt(outcome.attempts)
    return outcome


def best_attempt(attempts: Sequence[Attempt]) -> Attempt | None:
    """The most confident attempt with usable contacts, if any."""
    usable = [a for a in attempts if a.usable]
    if not usable:
        return None
    # max keeps the first of equals: the better-ranked provider of the parallel phase wins ties.
    return max(usable, key=_rank_key)
