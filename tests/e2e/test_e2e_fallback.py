"""The two-stage fallback on the live stack: suggestions, then a rephrase, then a person.

"/nlu_fallback" is the payload Rasa gives a message its FallbackClassifier did not understand;
sending it directly makes the test independent of which gibberish the model happens to reject.
The hand-over itself is checked at Rasa's REST channel (what the gateway receives): the custom
payload, the paused tracker, and answers again after the gateway's `resume` event.
"""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import pytest
import yaml

from bot.settings import PROJECT_ROOT
from tests.support.chat_client import ChatClient, buttons, texts
from tests.support.running_stack import RunningStack

pytestmark = pytest.mark.e2e
SEED_ITEMS = yaml.safe_load((PROJECT_ROOT / "data/kb/knowledge.yml").read_text("utf-8"))
NOT_UNDERSTOOD = "/nlu_fallback"


class RasaConversation:
    """One conversation spoken to Rasa directly, as the gateway does."""

    def __init__(self, stack: RunningStack, http: aiohttp.ClientSession) -> None:
        self.rasa_url = stack.settings.rasa_url
        self.token = {"token": stack.settings.rasa_auth_token}
        self.http = http
        self.sender = f"e2e-{uuid.uuid4().hex}"

    async def say(self, message: str) -> list[dict[str, Any]]:
        body = {"sender": self.sender, "message": message}
        async with self.http.post(f"{self.rasa_url}/webhooks/rest/webhook", json=body) as r:
            assert r.status == 200
            return await r.json()

    async def tracker(self) -> dict[str, Any]:
        url = f"{self.rasa_url}/conversations/{self.sender}/tracker"
        async with self.http.get(url, params=self.token) as r:
            assert r.status == 200
            return await r.json()

    async def resume(self) -> None:
        """What the gateway does when staff hand the conversation back."""
        url = f"{self.rasa_url}/conversations/{self.sender}/tracker/events"
        async with self.http.post(url, params=self.token, json={"event": "resume"}) as r:
            assert r.status == 200


def handoff(answer: list[dict[str, Any]]) -> dict[str, Any]:
    """The one hand-over message: a custom payload, nothing to show."""
    [message] = answer
    assert set(message) == {"recipient_id", "custom"}
    return message["custom"]["handoff"]


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


async def test_none_of_these_asks_to_rephrase(stack: RunningStack) -> None:
    async with ChatClient(stack.gateway_url) as chat:
        await chat.ask("那个东西怎么弄", payload=NOT_UNDERSTOOD)
        rephrase = await chat.ask("都不是", payload="/out_of_scope")
    assert "换个说法" in texts(rephrase)


async def test_not_understood_again_hands_over_to_a_person(stack: RunningStack) -> None:
    async with aiohttp.ClientSession() as http:
        rasa = RasaConversation(stack, http)
        assert "来源" in "\n".join(m.get("text") or "" for m in await rasa.say("/ask_ip_insurance"))
        assert "您想咨询的是下面哪一项" in (await rasa.say(NOT_UNDERSTOOD))[0]["text"]
        assert "换个说法" in (await rasa.say("/out_of_scope"))[0]["text"]
        await rasa.say(NOT_UNDERSTOOD)  # the suggestions again
        given_up = await rasa.say("/out_of_scope")
        assert handoff(given_up) == {
            "reason": "fallback",
            "intents": ["ask_ip_insurance"],
        }
        tracker = await rasa.tracker()
        assert tracker["paused"] is True and not tracker["active_loop"].get("name")
        # Paused, Rasa answers nothing (the gateway sends messages to the staff member instead).
        assert await rasa.say("/ask_trademark_window") == []
        await rasa.resume()
        answer = await rasa.say("/ask_trademark_window")
    # Handed back, the bot answers again: the trademark window's overview, its details with the
    # online fee, then the window's card from the database.
    assert "全国先进窗口" in answer[0]["text"]
    assert "270元" in "\n".join(m.get("text") or "" for m in answer)
    cards = [m["custom"]["kind"] for m in answer if "kind" in m.get("custom", {})]
    assert cards == ["service_points"]  # (the other custom message is the gateway's `meta` note)


async def test_request_human_hands_over_and_the_bot_answers_after_the_hand_back(
    stack: RunningStack,
) -> None:
    async with aiohttp.ClientSession() as http:
        rasa = RasaConversation(stack, http)
        await rasa.say("/greet")
        await rasa.say("/find_brand_station")
        await rasa.say("/ask_pledge_financing")
        requested = await rasa.say("/request_human")
        assert handoff(requested) == {
            "reason": "user",
            "intents": ["find_brand_station", "ask_pledge_financing"],
        }
        assert (await rasa.tracker())["paused"] is True
        await rasa.resume()
        assert (await rasa.tracker())["paused"] is False
        answer = await rasa.say("/ask_geographical_indication")
    # Answered again: the topic's overview item from the knowledge base, then its details.
    overview = next(i for i in SEED_ITEMS if i["key"] == "overview-geographical-indication")
    assert answer[0]["text"] == overview["answer"]
    assert "来源：" in answer[1]["text"]


async def test_a_specific_question_gets_its_figure_in_the_first_reply(
    stack: RunningStack,
) -> None:
    async with ChatClient(stack.gateway_url) as chat:
        answer = await chat.ask("网上申请商标每个类别交多少钱")
    assert "270元" in texts(answer).split("\n")[0] and "2019" in texts(answer)


async def test_out_of_scope_names_what_the_bot_can_do(stack: RunningStack) -> None:
    async with ChatClient(stack.gateway_url) as chat:
        answer = await chat.ask("社保断缴了怎么补")
    assert "不在我的服务范围内" in texts(answer)
    assert "商标" in texts(answer) and "知识产权保险" in texts(answer)
