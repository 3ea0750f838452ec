"""The two-stage fallback on the live stack: suggestions, then a rephrase, then a person.

"/nlu_fallback" is the payload Rasa gives a message its FallbackClassifier did not understand;
sending it directly makes the test independent of which gibberish the model happens to reject.
"""

from __future__ import annotations

import pytest

from tests.chat_client import ChatClient, buttons, texts
from tests.running_stack import RunningStack

pytestmark = pytest.mark.e2e
NOT_UNDERSTOOD = "/nlu_fallback"


async def test_suggested_topic_is_answered(stack: RunningStack) -> None:
    async with ChatClient(stack.gateway_url) as chat:
        suggestion = await chat.ask("那个东西怎么弄", payload=NOT_UNDERSTOOD)
        assert "您想咨询的是下面哪一项" in texts(suggestion)
        offered = {b["title"]: b["payload"] for b in buttons(suggestion)}
        assert {"都不是", "转人工"} <= set(offered)
        # A payload carries no intent ranking, so the most asked-about topics are offered.
        answer = await chat.ask("商标注册与受理窗口", payload=offered["商标注册与受理窗口"])
    # The chosen topic's own answer follows, with its facts (the online fee) and source.
    assert "270元" in texts(answer) and "来源" in texts(answer)


async def test_none_of_these_then_not_understood_again_offers_a_person(
    stack: RunningStack,
) -> None:
    async with ChatClient(stack.gateway_url) as chat:
        await chat.ask("那个东西怎么弄", payload=NOT_UNDERSTOOD)
        rephrase = await chat.ask("都不是", payload="/out_of_scope")
        assert "换个说法" in texts(rephrase)
        await chat.ask("还是那个东西", payload=NOT_UNDERSTOOD)
        given_up = await chat.ask("都不是", payload="/out_of_scope")
    assert "暂时回答不了" in texts(given_up)
    assert {"title": "转人工", "payload": "/request_human"} in buttons(given_up)


async def test_out_of_scope_names_what_the_bot_can_do(stack: RunningStack) -> None:
    async with ChatClient(stack.gateway_url) as chat:
        answer = await chat.ask("社保断缴了怎么补")
    assert "不在我的服务范围内" in texts(answer)
    assert "商标" in texts(answer) and "知识产权保险" in texts(answer)
