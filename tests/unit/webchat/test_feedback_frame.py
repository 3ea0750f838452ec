"""The web chat's feedback frame (👍/👎 on a bot answer) as the server parses it."""

from __future__ import annotations

import json

import pytest

from bot.webchat.protocol import FeedbackRequest, ProtocolError, parse_client_frame


def frame(**fields: object) -> str:
    return json.dumps({"type": "feedback", **fields})


def test_a_feedback_frame_is_parsed() -> None:
    assert parse_client_frame(frame(message_id=7, value="down", reason="wrong")) == FeedbackRequest(
        7, "down", "wrong"
    )
    assert parse_client_frame(frame(message_id=7, value="up")) == FeedbackRequest(7, "up", None)


@pytest.mark.parametrize(
    "fields",
    [
        {"message_id": "7", "value": "up"},
        {"message_id": True, "value": "up"},
        {"message_id": 0, "value": "up"},
        {"message_id": 2**31, "value": "up"},
        {"message_id": 7, "value": "meh"},
        {"message_id": 7, "value": "down", "reason": "x" * 21},
        {"message_id": 7, "value": "down", "reason": 3},
    ],
)
def test_a_bad_feedback_frame_gets_a_clear_error(fields: dict[str, object]) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_client_frame(frame(**fields))
    assert (refused.value.code, refused.value.text) == ("bad_feedback", "评价格式不正确。")
