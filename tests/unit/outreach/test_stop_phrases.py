"""A reply is an opt-out when it contains a stop phrase: whole words, any case."""

from __future__ import annotations

import pytest

from sourcing.outreach.service import is_stop_request, stop_phrase_pattern

PATTERN = stop_phrase_pattern()


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "Please stop.",
        "unsubscribe me",
        "Remove   me from this list",
        "Do not contact me again",
        "opt-out",
        "Opt out please",
        "Merci de ne plus me contacter",
        "Bitte abmelden",
        "Quiero darme de baja",
    ],
)
def test_stop_phrases_are_recognised(text: str) -> None:
    assert is_stop_request(text, PATTERN)


@pytest.mark.parametrize(
    "text",
    [
        "Yes, happy to talk.",
        "Unstoppable team",
        "nonstop meetings this week",
        "I'll remove meetings from Friday",
        "",
        None,
    ],
)
def test_other_replies_are_not_opt_outs(text: str | None) -> None:
    assert not is_stop_request(text, PATTERN)


def test_a_setting_extends_the_list() -> None:
    assert not is_stop_request("leave me alone", PATTERN)
    assert is_stop_request("Leave  me ALONE!", stop_phrase_pattern(["leave me alone"]))
