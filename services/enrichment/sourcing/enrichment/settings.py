"""Settings of the enrichment service: the waterfall's budgets, parallelism and ranking history,
and each provider's cost per lookup, rate limit and circuit breaker.

Its own fields on the kernel's :class:`~sourcing.common.config.Settings` (provider base URLs,
credentials and the sandbox switch come from there); document every field in .env.example.
"""

from __future__ import annotations

from pydantic import Field

from sourcing.common.config import Settings


class EnrichmentSettings(Settings):
    """What the enrichment process reads (and validates at start-up)."""

    # --- Enrichment waterfall (§9) ---
    # A result at or above this confidence wins the parallel phase; below it the fallback runs.
    ENRICHMENT_CONFIDENCE_THRESHOLD: float = Field(default=0.7, ge=0.0, le=1.0)
    # How many available providers are queried at once in the parallel phase.
    ENRICHMENT_PARALLEL_PROVIDERS: int = Field(default=5, ge=1, le=10)
    # Upper bound for one provider lookup, retries and polling included (the waterfall may
    # pass a smaller remaining budget per call).
    ENRICHMENT_TIME_BUDGET_SECONDS: float = Field(default=20.0, gt=0)
    # Pause between two status polls of an asynchronous provider (RocketReach, Wiza).
    ENRICHMENT_POLL_INTERVAL_SECONDS: float = Field(default=1.0, ge=0)
    # Most status polls of one asynchronous lookup before it is reported as a timeout.
    ENRICHMENT_POLL_MAX_ATTEMPTS: int = Field(default=15, ge=1)
    # Upper bound for one whole waterfall (parallel phase + fallback); the agent further caps it
    # below AGENT_ATTEMPT_TIMEOUT_SECONDS so the database writes still fit in the attempt.
    ENRICHMENT_WATERFALL_BUDGET_SECONDS: float = Field(default=40.0, gt=0)
    # Success rate assumed for a provider with no attempt history (neutral prior, 0..1).
    ENRICHMENT_SUCCESS_PRIOR: float = Field(default=0.5, ge=0.0, le=1.0)
    # How far back attempt history counts towards a provider's success rate.
    ENRICHMENT_HISTORY_DAYS: int = Field(default=30, ge=1)
    # Enrichment messages handled together: their waterfalls run concurrently.
    ENRICHMENT_BATCH_SIZE: int = Field(default=32, ge=1, le=200)
    # A batch's shards (split by key), each in its own transaction, side by side: while some
    # wait on the database, the others' waterfalls use the CPU. Each may hold a connection.
    ENRICHMENT_BATCH_CONCURRENCY: int = Field(default=8, ge=1, le=64)
    # How long a Zeliq attempt waits for its callbacks before the scheduler's sweep times it
    # out (the expert's waterfall then completes with what the other providers found).
    ZELIQ_CALLBACK_TIMEOUT_SECONDS: float = Field(default=900.0, gt=0)

    # How many attempts an expert's region needs (in ENRICHMENT_HISTORY_DAYS) before the
    # waterfall ranks a provider by that region's history instead of the global one.
    ENRICHMENT_REGION_MIN_ATTEMPTS: int = Field(default=20, ge=1)

    # --- Cost per lookup, in credits (what one lookup that finds something costs) ---
    # Public pricing in spec/providers.md where known; an answer that reports the credits it
    # consumed (LeadMagic `credits_consumed`, Wiza `credits`) is recorded as reported instead.
    # LeadMagic: no-result lookups are free (a miss records 0).
    LEADMAGIC_CREDITS_PER_LOOKUP: float = Field(default=1.0, ge=0)
    PROSPEO_CREDITS_PER_LOOKUP: float = Field(default=1.0, ge=0)
    EXA_CREDITS_PER_LOOKUP: float = Field(default=1.0, ge=0)
    ROCKETREACH_CREDITS_PER_LOOKUP: float = Field(default=1.0, ge=0)
    WIZA_CREDITS_PER_LOOKUP: float = Field(default=1.0, ge=0)
    FORAGER_CREDITS_PER_LOOKUP: float = Field(default=1.0, ge=0)
    ZELIQ_CREDITS_PER_LOOKUP: float = Field(default=1.0, ge=0)
    CONTACTOUT_CREDITS_PER_LOOKUP: float = Field(default=1.0, ge=0)
    DATAGM_CREDITS_PER_LOOKUP: float = Field(default=1.0, ge=0)
    PEOPLEDATALABS_CREDITS_PER_LOOKUP: float = Field(default=1.0, ge=0)

    # --- Rate limit per provider, lookups per minute (this process's limiter) ---
    LEADMAGIC_RATE_LIMIT_PER_MINUTE: float = Field(default=3000.0, gt=0)
    PROSPEO_RATE_LIMIT_PER_MINUTE: float = Field(default=600.0, gt=0)
    EXA_RATE_LIMIT_PER_MINUTE: float = Field(default=600.0, gt=0)
    ROCKETREACH_RATE_LIMIT_PER_MINUTE: float = Field(default=600.0, gt=0)
    WIZA_RATE_LIMIT_PER_MINUTE: float = Field(default=600.0, gt=0)
    FORAGER_RATE_LIMIT_PER_MINUTE: float = Field(default=600.0, gt=0)
    ZELIQ_RATE_LIMIT_PER_MINUTE: float = Field(default=600.0, gt=0)
    CONTACTOUT_RATE_LIMIT_PER_MINUTE: float = Field(default=1200.0, gt=0)
    DATAGM_RATE_LIMIT_PER_MINUTE: float = Field(default=600.0, gt=0)
    PEOPLEDATALABS_RATE_LIMIT_PER_MINUTE: float = Field(default=100.0, gt=0)

    # --- Circuit breaker per provider (per process) ---
    # This many failures (error, timeout, rate limited) within the window open the circuit.
    ENRICHMENT_BREAKER_FAILURES: int = Field(default=5, ge=1)
    ENRICHMENT_BREAKER_WINDOW_SECONDS: float = Field(default=60.0, gt=0)
    # An open circuit lets one probe lookup through after this long (half-open).
    ENRICHMENT_BREAKER_COOLDOWN_SECONDS: float = Field(default=30.0, gt=0)
