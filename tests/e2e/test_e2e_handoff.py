"""A handoff end to end over the real gateway, Rasa model and action server (websocket protocol
level; the browser version is tests/browser/test_browser_handoff.py), and nothing lost across
restarts."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.db.conversations import Message
from bot.db.engine import session_factory
from bot.db.handoffs import Handoff, Ticket
from tests.support.chat_client import ChatClient, texts
from tests.support.running_stack import RunningStack
from tests.support.staff_client import StaffClient, add_staff_account

pytestmark = pytest.mark.e2e


def is_type(kind: str, **fields: Any):
    return lambda f: f.get("type") == kind and all(f.get(k) == v for k, v in fields.items())


def waiting_for(conversation_id: str):
    return lambda f: (
        f.get("type") == "queue"
        and any(h["conversation_id"] == conversation_id for h in f["waiting"])
    )


async def start_handoff(citizen: ChatClient, staff: StaffClient) -> dict[str, Any]:
    """The citizen asks for a person; the staff member accepts. Returns the accepted frame."""
    await citizen.say("我要转人工")
    waiting = await citizen.wait_for(is_type("handoff", state="waiting"))
    assert waiting["position"] >= 1
    new = await staff.wait_for(is_type("new_handoff"))
    await staff.send({"type": "accept", "handoff_id": new["handoff"]["handoff_id"]})
    accepted = await staff.wait_for(is_type("accepted"))
    joined = await citizen.wait_for(is_type("handoff", state="active"))
    assert joined["agent"] == "王小明"
    return accepted


async def test_handoff_from_request_to_hand_back(stack: RunningStack) -> None:
    username = add_staff_account(stack.settings.database_url, "王小明")
    async with (
        StaffClient(stack.gateway_url, username) as staff,
        ChatClient(stack.gateway_url) as citizen,
    ):
        insurance = await citizen.ask("有哪些知识产权保险")
        assert "保险" in texts(insurance)
        await citizen.say("我要转人工")
        new = await staff.wait_for(is_type("new_handoff"))
        # What the user asked about before, for the staff member.
        assert "ask_ip_insurance" in new["handoff"]["intents"]
        assert new["handoff"]["reason"] == "user"
        await staff.send({"type": "accept", "handoff_id": new["handoff"]["handoff_id"]})
        view = await staff.wait_for(is_type("conversation"))
        assert "有哪些知识产权保险" in [m.get("text") for m in view["messages"]]
        assert any(m["type"] == "bot" for m in view["messages"])  # the bot part of it
        await citizen.wait_for(is_type("handoff", state="active"))
        conversation = view["conversation_id"]
        await only_admins_see_it(stack, conversation)

        await citizen.say("我想给专利投保，费用怎么算")
        got = await staff.wait_for(is_type("message", conversation_id=conversation))
        while got["message"].get("text") != "我想给专利投保，费用怎么算":
            got = await staff.wait_for(is_type("message", conversation_id=conversation))
        question = "请问贵公司有几件专利？"
        await staff.send(
            {"type": "reply", "conversation_id": conversation, "id": "r1", "text": question}
        )
        reply = await citizen.wait_for(is_type("staff"))
        assert (reply["text"], reply["agent"]) == (question, "王小明")

        await staff.send({"type": "handback", "conversation_id": conversation})
        await citizen.wait_for(is_type("handoff", state="returned"))
        answer = await citizen.ask("商标受理窗口在哪")
        assert "商标" in texts(answer) and "受理" in texts(answer)


async def only_admins_see_it(stack: RunningStack, conversation: str) -> None:
    """Another agent cannot open a conversation assigned to someone else; an admin can."""
    other = add_staff_account(stack.settings.database_url, "李华")
    admin = add_staff_account(stack.settings.database_url, "张主任", role="admin")
    async with StaffClient(stack.gateway_url, other) as agent:
        await agent.send({"type": "open", "conversation_id": conversation})
        refused = await agent.wait_for(is_type("error"))
        assert refused["code"] == "forbidden"
        reply = {"type": "reply", "conversation_id": conversation, "id": "x", "text": "在"}
        await agent.send(reply)
        assert (await agent.wait_for(is_type("error")))["code"] == "forbidden"
    async with StaffClient(stack.gateway_url, admin) as boss:
        await boss.send({"type": "open", "conversation_id": conversation})
        view = await boss.wait_for(is_type("conversation"))
        assert view["handoff"]["agent"]["display_name"] == "王小明"


async def restart(stack: RunningStack, name: str) -> None:
    stack.stop(name)
    stack.start(name)


async def test_nothing_lost_when_rasa_and_the_gateway_restart(stack: RunningStack) -> None:
    username = add_staff_account(stack.settings.database_url, "王小明")
    async with (
        StaffClient(stack.gateway_url, username) as staff,
        ChatClient(stack.gateway_url) as citizen,
    ):
        accepted = await start_handoff(citizen, staff)
        conversation = accepted["conversation_id"]

        stack.stop("rasa")
        try:
            await citizen.say("Rasa 停了我还能说话吗")
            await staff.wait_for(
                lambda f: (
                    f.get("type") == "message"
                    and f["message"].get("text") == "Rasa 停了我还能说话吗"
                )
            )
            await staff.send(
                {"type": "reply", "conversation_id": conversation, "id": "r1", "text": "可以的"}
            )
            assert (await citizen.wait_for(is_type("staff")))["text"] == "可以的"
        finally:
            stack.start("rasa")  # blocks ~40 s: the sockets may miss heartbeats, so reconnect
        await citizen.connect()
        await staff.connect()

        await restart(stack, "gateway")
        history = await citizen.connect()
        await staff.connect()
        assert history["handoff"]["state"] == "active"
        assert history["handoff"]["agent"] == "王小明"
        await citizen.say("网关重启后的消息")
        await staff.wait_for(
            lambda f: f.get("type") == "message" and f["message"].get("text") == "网关重启后的消息"
        )
        await staff.send({"type": "close", "conversation_id": conversation})
        closed = await citizen.wait_for(is_type("handoff", state="closed"))

        await citizen.ws.send_json(
            {"type": "rating", "handoff_id": closed["handoff_id"], "score": 5, "comment": "很好"}
        )
        await citizen.wait_for(is_type("rating_saved"))

    with session_factory(stack.settings.database_url)() as session:
        transcript = [
            (m.role, m.text)
            for m in session.execute(
                select(Message).where(Message.conversation_id == conversation).order_by(Message.id)
            ).scalars()
        ]
        handoff = session.get(Handoff, closed["handoff_id"])
        assert (handoff.status, handoff.rating, handoff.rating_comment) == ("closed", 5, "很好")
    assert transcript == [
        ("user", "我要转人工"),
        ("system", "正在为您转接人工客服，请稍候。"),
        ("system", "人工客服 王小明 已接入"),
        ("user", "Rasa 停了我还能说话吗"),
        ("staff", "可以的"),
        ("user", "网关重启后的消息"),
        ("system", "本次人工服务已结束，欢迎对我们的服务进行评价。"),
    ]


async def test_fallback_with_nobody_online_offers_to_leave_a_message(stack: RunningStack) -> None:
    async with ChatClient(stack.gateway_url) as citizen:
        await citizen.ask("那个东西怎么弄", payload="/nlu_fallback")
        await citizen.ask("都不是", payload="/out_of_scope")
        await citizen.ask("就是那个东西", payload="/nlu_fallback")
        given_up = await citizen.ask("都不是", payload="/out_of_scope")
        [offline] = [f for f in given_up if f["type"] == "handoff"]
        assert (offline["state"], offline["reason"]) == ("offline", "nobody")
        assert "人工客服暂时都不在线" in texts(given_up)

        bad_phone = {"type": "ticket", "id": "t1", "phone": "0574-8765", "text": "请回电"}
        await citizen.ws.send_json(bad_phone)
        refused = await citizen.wait_for(is_type("error", client_id="t1"))
        assert refused["code"] == "bad_phone" and "区号" in refused["text"]
        await citizen.ws.send_json(
            {"type": "ticket", "id": "t2", "phone": "13905740000", "text": "想咨询地理标志申请"}
        )
        saved = await citizen.wait_for(is_type("ticket_saved"))
        # Not paused any more: the bot answers the next question.
        answer = await citizen.ask("商标受理窗口在哪")
        assert "270元" in texts(answer)

    with session_factory(stack.settings.database_url)() as session:
        ticket = session.get(Ticket, saved["ticket_id"])
        assert (ticket.phone, ticket.message) == ("13905740000", "想咨询地理标志申请")
        assert session.get(Handoff, ticket.handoff_id).reason == "fallback"
