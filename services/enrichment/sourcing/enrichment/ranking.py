"""An expert's priority score within a project (the `ranking` lane; RankingSnapshot rows).

Formula ``v1`` (every component is in 0..1; the score is in 0..100)::

    score = 100 * ( 0.35 * title_relevance
                  + 0.20 * seniority
                  + 0.25 * contactability
                  + 0.15 * geography
                  + 0.05 * project_priority )

* ``title_relevance``: the best JobTitle ``relevance_score`` of the project's companies whose
  normalised title equals the expert's normalised title; a title that contains (or is
  contained in) a discovered title counts for ``PARTIAL_TITLE_FACTOR`` (0.8) of that title's
  score; no match 0; :data:`NEUTRAL` (0.5) while the project has no discovered titles yet (we
  know nothing, so neither reward nor punish).
* ``seniority``: from the expert's seniority label, else from title keywords:
  C-level/founder/owner/partner 1.0, VP/head 0.85, director 0.7, principal/lead/manager 0.5,
  senior 0.4, anything else 0.25; no title at all 0.25.
* ``contactability``: ``0.65 * best email confidence + 0.35 * best phone confidence``; a
  personal email counts for half its confidence (outreach prefers work addresses).
* ``geography``: 1 when the expert's country is one of the project's ``geographyIsoCodes``,
  0 when it is known and not, :data:`NEUTRAL` when unknown.
* ``project_priority``: ``min(priority, 10) / 10`` (priority is an unbounded non-negative
  integer; above 10 nothing changes). Same for every expert of one project, so it only
  matters when lists of several projects are merged.

The function is pure: :func:`sourcing.enrichment.service.handle_ranking_requested` gathers the
inputs and stores the components alongside the score so a snapshot can be explained later.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

FORMULA_VERSION: Final = "v1"

WEIGHTS: Final[dict[str, float]] = {
    "title_relevance": 0.35,
    "seniority": 0.20,
    "contactability": 0.25,
    "geography": 0.15,
    "project_priority": 0.05,
}
NEUTRAL: Final = 0.5
PARTIAL_TITLE_FACTOR: Final = 0.8
EMAIL_WEIGHT: Final = 0.65
PHONE_WEIGHT: Final = 0.35
PERSONAL_EMAIL_FACTOR: Final = 0.5
PRIORITY_CAP: Final = 10

# Checked in order; the first keyword found in the normalised title decides.
SENIORITY_KEYWORDS: Final[tuple[tuple[tuple[str, ...], float], ...]] = (
    (
        (
            "chief",
            "ceo",
            "cto",
            "cfo",
            "coo",
            "cmo",
            "cio",
            "ciso",
            "cpo",
            "founder",
            "cofounder",
            "owner",
            "partner",
            "president",
        ),
        1.0,
    ),
    (("vp", "svp", "evp", "vice president", "head"), 0.85),
    (("director",), 0.7),
    (("principal", "lead", "manager"), 0.5),
    (("senior", "sr"), 0.4),
)
DEFAULT_SENIORITY: Final = 0.25
# Seniority labels (Apollo/LinkedIn style) an expert row may carry.
SENIORITY_LABELS: Final[dict[str, float]] = {
    "c_suite": 1.0,
    "founder": 1.0,
    "owner": 1.0,
    "partner": 1.0,
    "vp": 0.85,
    "head": 0.85,
    "director": 0.7,
    "manager": 0.5,
    "senior": 0.4,
    "entry": 0.25,
    "intern": 0.1,
}


def normalize_title(title: str | None) -> str:
    """Lower case, punctuation to spaces, collapsed whitespace: ``"VP, Payments"`` ->
    ``"vp payments"``."""
    if not title:
        return ""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", title.lower()).split())


@dataclass(frozen=True, slots=True)
class ContactSignal:
    """One known contact of the expert, as ranking sees it."""

    kind: str  # "email" or "phone"
    confidence: float
    personal: bool = False


@dataclass(frozen=True, slots=True)
class RankingInput:
    title: str | None
    seniority_label: str | None
    country_iso: str | None
    contacts: tuple[ContactSignal, ...]
    project_geographies: tuple[str, ...]
    project_priority: int
    # (normalised title, relevance score) of the JobTitle rows of the project's companies.
    job_titles: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class RankingScore:
    score: float
    components: dict[str, float] = field(default_factory=dict)
    formula_version: str = FORMULA_VERSION


def title_relevance(title: str | None, job_titles: Iterable[tuple[str, float]]) -> float:
    known = [(normalize_title(name), score) for name, score in job_titles]
    known = [(name, score) for name, score in known if name]
    if not known:
        return NEUTRAL
    wanted = normalize_title(title)
    if not wanted:
        return 0.0
    best = 0.0
    padded = f" {wanted} "
    for name, score in known:
        if name == wanted:
            best = max(best, score)
        elif f" {name} " in padded or f" {wanted} " in f" {name} ":
            best = max(best, score * PARTIAL_TITLE_FACTOR)
    return _clamp(best)


def seniority(title: str | None, label: str | None = None) -> float:
    if label and label.strip().lower() in SENIORITY_LABELS:
        return SENIORITY_LABELS[label.strip().lower()]
    words = normalize_title(title)
    if not words:
        return DEFAULT_SENIORITY
    padded = f" {words} "
    for keywords, value in SENIORITY_KEYWORDS:
        if any(f" {keyword} " in padded for keyword in keywords):
            return value
    return DEFAULT_SENIORITY


def contactability(contacts: Iterable[ContactSignal]) -> float:
    best_email = 0.0
    best_phone = 0.0
    for contact in contacts:
        confidence = _clamp(contact.confidence)
        if contact.kind == "email":
            weight = PERSONAL_EMAIL_FACTOR if contact.personal else 1.0
            best_email = max(best_email, confidence * weight)
        elif contact.kind == "phone":
            best_phone = max(best_phone, confidence)
    return _clamp(EMAIL_WEIGHT * best_email + PHONE_WEIGHT * best_phone)


def geography(country_iso: str | None, project_geographies: Iterable[str]) -> float:
    if not country_iso:
        return NEUTRAL
    wanted = {code.strip().upper() for code in project_geographies}
    return 1.0 if country_iso.strip().upper() in wanted else 0.0


def project_priority(priority: int) -> float:
    return min(max(priority, 0), PRIORITY_CAP) / PRIORITY_CAP


def score_expert(data: RankingInput) -> RankingScore:
    """The priority score (0..100, rounded to 0.01) and its components (module docstring)."""
    components = {
        "title_relevance": title_relevance(data.title, data.job_titles),
        "seniority": seniority(data.title, data.seniority_label),
        "contactability": contactability(data.contacts),
        "geography": geography(data.country_iso, data.project_geographies),
        "project_priority": project_priority(data.project_priority),
    }
    total = sum(WEIGHTS[name] * value for name, value in components.items())
    rounded = {name: round(value, 4) for name, value in components.items()}
    return RankingScore(score=round(100 * total, 2), components=rounded)


def _clamp(value: float) -> float:
    return min(max(value, 0.0), 1.0)
