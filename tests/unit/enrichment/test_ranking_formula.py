"""The ranking formula (sourcing.enrichment.ranking): components and weights."""

from __future__ import annotations

import pytest

from sourcing.enrichment.ranking import (
    WEIGHTS,
    ContactSignal,
    RankingInput,
    contactability,
    geography,
    normalize_title,
    project_priority,
    score_expert,
    seniority,
    title_relevance,
)


def _input(**overrides: object) -> RankingInput:
    values: dict[str, object] = {
        "title": "VP Payments",
        "seniority_label": None,
        "country_iso": "US",
        "contacts": (ContactSignal("email", 0.95), ContactSignal("phone", 0.8)),
        "project_geographies": ("US", "GB"),
        "project_priority": 5,
        "job_titles": (("vp payments", 0.9), ("head of payments", 0.7)),
    }
    values.update(overrides)
    return RankingInput(**values)  # type: ignore[arg-type]


def test_weights_sum_to_one() -> None:
    assert sum(WEIGHTS.values()) == pytest.approx(1.0)


def test_normalize_title() -> None:
    assert normalize_title("  VP, Payments & Risk ") == "vp payments risk"
    assert normalize_title(None) == ""


def test_title_relevance_exact_partial_none_and_unknown() -> None:
    titles = [("vp payments", 0.9), ("payments", 0.6)]
    assert title_relevance("VP - Payments", titles) == 0.9
    # "senior vp payments" contains "vp payments": 0.8 of its score.
    assert title_relevance("Senior VP Payments", titles) == pytest.approx(0.72)
    assert title_relevance("Chief Cook", titles) == 0.0
    assert title_relevance("Anything", []) == 0.5  # nothing discovered yet: neutral
    assert title_relevance(None, titles) == 0.0


def test_seniority_from_label_then_title() -> None:
    assert seniority("Chief Revenue Officer") == 1.0
    assert seniority("VP Payments") == 0.85
    assert seniority("Head of Risk") == 0.85
    assert seniority("Director, Engineering") == 0.7
    assert seniority("Product Manager") == 0.5
    assert seniority("Senior Analyst") == 0.4
    assert seniority("Analyst") == 0.25
    assert seniority("Analyst", "director") == 0.7
    assert seniority(None) == 0.25


def test_contactability_prefers_work_emails_and_adds_phones() -> None:
    assert contactability([]) == 0.0
    assert contactability([ContactSignal("email", 1.0)]) == pytest.approx(0.65)
    assert contactability([ContactSignal("email", 1.0, personal=True)]) == pytest.approx(0.325)
    both = [ContactSignal("email", 1.0), ContactSignal("phone", 1.0)]
    assert contactability(both) == pytest.approx(1.0)


def test_geography_and_priority() -> None:
    assert geography("gb", ["US", "GB"]) == 1.0
    assert geography("DE", ["US"]) == 0.0
    assert geography(None, ["US"]) == 0.5
    assert project_priority(0) == 0.0
    assert project_priority(5) == 0.5
    assert project_priority(50) == 1.0


def test_score_is_the_weighted_sum_times_100() -> None:
    result = score_expert(_input())
    expected = 100 * (
        0.35 * 0.9 + 0.20 * 0.85 + 0.25 * (0.65 * 0.95 + 0.35 * 0.8) + 0.15 * 1.0 + 0.05 * 0.5
    )
    assert result.score == pytest.approx(round(expected, 2))
    assert result.formula_version == "v1"
    assert set(result.components) == set(WEIGHTS)


def test_better_contacts_and_geography_rank_higher() -> None:
    reachable = score_expert(_input())
    unreachable = score_expert(_input(contacts=()))
    abroad = score_expert(_input(country_iso="JP"))
    assert reachable.score > unreachable.score
    assert reachable.score > abroad.score
    assert 0.0 <= unreachable.score <= 100.0
