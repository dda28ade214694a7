"""The score cursor of lists ordered best first: exact round trip, unscored rows, refusals."""

from __future__ import annotations

import base64
import uuid

import pytest

from sourcing.common.errors import InvalidPayload
from sourcing.common.web import decode_score_cursor, encode_score_cursor


@pytest.mark.parametrize("score", [87.5, 0.1 + 0.2, -3.0, 0.0, None])
def test_round_trip_is_exact(score: float | None) -> None:
    row_id = uuid.uuid4()
    assert decode_score_cursor(encode_score_cursor(score, row_id)) == (score, row_id)


def test_no_cursor_is_the_first_page() -> None:
    assert decode_score_cursor(None) is None


@pytest.mark.parametrize("raw", ["nan|", "inf|", "abc|", "1.0|not-a-uuid", "1.0"])
def test_foreign_cursors_are_400(raw: str) -> None:
    if raw.endswith("|"):
        raw += str(uuid.uuid4())
    cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    with pytest.raises(InvalidPayload) as refused:
        decode_score_cursor(cursor)
    assert refused.value.details == {"field": "cursor"}
