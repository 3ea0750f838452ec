"""The handoff state machine on a real database (SQLite and PostgreSQL), through the real pipeline.

Rasa is not running here on purpose: a message that reached the bot would come back as the
"系统繁忙" error, so these tests also prove that handoff messages never go to the bot.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.conversation.handoff import (
    ConversationFrame,
    HandoffError,
    NewHandoff,
    StaffEvent,
    UserTyping,
)
from bot.conversation.hours import WorkingHours
from bot.conversation.pipeline import Pipeline
from bot.conversation.store import ChatStore
from bot.db import handoffs
from bot.db.conversations import Conversation, Message
from bot.db.engine import session_factory
from bot.db.handoffs import CLOSED, Handoff, Ticket
from bot.db.staff import StaffUser
from bot.rasa.pool import RasaPool
from tests.support.running_stack import free_port


@dataclass(frozen=True)
class Staff:
    id: int
    display_name: str
    role: str = "agent"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass
class RecordingChannel:
    name: str = "webchat"
    frames: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    async def deliver(self, conversation_id: str, frame: dict[str, Any]) -> None:
        self.frames.setdefault(conversation_id, []).append(frame)

    def of(self, conversation_id: str, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.frames.get(conversation_id, []) if f.get("type") == kind]


@dataclass
class Console:
    """The staff console as the desk sees it: who is online, and what it was told."""

    online: set[int] = field(default_factory=set)
    events: list[StaffEvent] = field(default_factory=list)

    def online_agents(self) -> set[int]:
        return self.online

    async def publish(self, event: StaffEvent) -> None:
        self.events.append(event)


def add_staff(database_url: str, username: str, name: str, role: str = "agent") -> Staff:
    with session_factory(database_url)() as session:
        user = StaffUser(username=username, display_name=name, password_hash="x", role=role)
        session.add(user)
        session.commit()
        return Staff(user.id, name, role)


@pytest.fixture()
async def desk_parts(database_url: str):
    async with aiohttp.ClientSession() as http:
        dead_rasa = RasaPool(http, [f"http://127.0.0.1:{free_port()}"], timeout=2, token="t")
        pipeline = Pipeline(
            ChatStore(database_url, timeout=5.0), dead_rasa, WorkingHours.parse("always")
        )
        channel, console = RecordingChannel(), Console()
        pipeline.register_channel(channel)
        pipeline.set_staff_events(console)
        yield pipeline, channel, console


async def user_says(pipeline: Pipeline, conversation: str, text: str) -> list[dict[str, Any]]:
    received = await pipeline.receive(conversation, "webchat", f"m{id(text)}{text}", text)
    return await asyncio.wait_for(received.done, 10)


async def request(pipeline: Pipeline, conversation: str, intents=("ask_ip_insurance",)) -> None:
    await pipeline.store.store_user_message(conversation, f"r-{conversation}", "转人工", None)
    sent: list[dict[str, Any]] = []

    async def reply(frame: dict[str, Any]) -> None:
        sent.append(frame)
        await pipeline.deliver(conversation, frame)

    await pipeline.desk.request(conversation, "user", list(intents), reply)


async def test_nobody_online_offers_a_ticket_and_stores_it(desk_parts, database_url):
    pipeline, channel, _ = desk_parts
    await request(pipeline, "c1")
    [offline] = channel.of("c1", "handoff")
    assert offline["state"] == "offline" and offline["reason"] == "nobody"
    assert "人工客服暂时都不在线" in channel.of("c1", "system")[0]["text"]

    with pytest.raises(ValueError, match="手机号应为11位"):
        await pipeline.leave_ticket("c1", "1380013", "想咨询专利质押")
    assert (await pipeline.desk.state_frame("c1"))["state"] == "offline"  # the form stays
    ticket_id = await pipeline.leave_ticket("c1", "138 0013 8000", "想咨询专利质押")
    with session_factory(database_url)() as session:
        ticket = session.get(Ticket, ticket_id)
        assert (ticket.phone, ticket.message, ticket.status) == (
            "13800138000",
            "想咨询专利质押",
            "open",
        )
        assert session.get(Handoff, ticket.handoff_id).conversation_id == "c1"
    assert (await pipeline.desk.state_frame("c1"))["state"] == "none"


async def test_out_of_hours_says_when_staff_are_there(database_url):
    hours = WorkingHours.parse("1-5 09:00-17:00")
    saturday_noon = datetime(2026, 11, 28, 4, 0, tzinfo=timezone.utc)  # 12:00 in Ningbo
    monday_ten = datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc)
    assert not hours.is_open(saturday_noon) and hours.is_open(monday_ten)
    assert hours.describe() == "周一至周五 9:00-17:00"
    with pytest.raises(ValueError):
        WorkingHours.parse("9-17")


async def test_queue_positions_and_one_winner_when_two_accept(desk_parts, database_url):
    pipeline, channel, console = desk_parts
    wang = add_staff(database_url, "wang", "王小明")
    li = add_staff(database_url, "li", "李华")
    console.online = {wang.id, li.id}
    await request(pipeline, "c1")
    await request(pipeline, "c2")
    assert channel.of("c2", "handoff")[-1] == {
        "type": "handoff", "state": "waiting", "handoff_id": 2, "position": 2,
    }  # fmt: skip
    assert NewHandoff(1) in console.events

    results = await asyncio.gather(
        pipeline.desk.accept(1, wang), pipeline.desk.accept(1, li), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, Handoff)]
    losers = [r for r in results if isinstance(r, HandoffError)]
    assert len(winners) == 1 and len(losers) == 1
    winner = wang if winners[0].agent_id == wang.id else li
    assert losers[0].code == "taken"
    assert losers[0].text == f"该会话已由 {winner.display_name} 接入。"
    assert channel.of("c1", "handoff")[-1]["agent"] == winner.display_name
    assert channel.of("c1", "system")[-1]["text"] == f"人工客服 {winner.display_name} 已接入"
    # c2 moved up the queue and was told so.
    assert channel.of("c2", "handoff")[-1]["position"] == 1


async def test_messages_during_a_handoff_go_to_staff_and_back(desk_parts, database_url):
    pipeline, channel, console = desk_parts
    wang = add_staff(database_url, "wang", "王小明")
    li = add_staff(database_url, "li", "李华")
    admin = add_staff(database_url, "boss", "张主任", role="admin")
    console.online = {wang.id}
    await request(pipeline, "c1")
    await pipeline.desk.accept(1, wang)

    answer = await user_says(pipeline, "c1", "我的专利被人仿冒了")
    assert answer == []  # no bot reply and no "系统繁忙": the bot was not asked
    frames = [e for e in console.events if isinstance(e, ConversationFrame)]
    assert (frames[-1].conversation_id, frames[-1].agent_id) == ("c1", wang.id)
    assert frames[-1].frame["text"] == "我的专利被人仿冒了"
    with session_factory(database_url)() as session:
        statuses = session.execute(
            select(Message.status).where(Message.text == "我的专利被人仿冒了")
        ).scalars()
        assert list(statuses) == ["staff"]

    staff_frame = await pipeline.desk.staff_reply("c1", wang, "s1", "您好，请提供专利号")
    assert channel.of("c1", "staff")[-1] == staff_frame
    assert staff_frame["agent"] == "王小明" and "agent_id" not in staff_frame
    with pytest.raises(HandoffError) as refused:
        await pipeline.desk.staff_reply("c1", li, "s2", "我来回答")
    assert refused.value.code == "forbidden"
    with pytest.raises(HandoffError):
        await pipeline.desk.check_can_view("c1", li)
    assert (await pipeline.desk.check_can_view("c1", admin)).agent_id == wang.id

    await pipeline.user_typing("c1", True)
    assert console.events[-1] == UserTyping("c1", wang.id, True)


async def test_close_then_rating_is_stored_once(desk_parts, database_url):
    pipeline, channel, console = desk_parts
    wang = add_staff(database_url, "wang", "王小明")
    console.online = {wang.id}
    await request(pipeline, "c1")
    with pytest.raises(ValueError, match="结束后才能评价"):
        await pipeline.rate("c1", 1, 5, "")
    await pipeline.desk.accept(1, wang)
    await pipeline.desk.close("c1", wang)
    assert channel.of("c1", "handoff")[-1] == {
        "type": "handoff",
        "state": "closed",
        "handoff_id": 1,
    }
    assert (await pipeline.desk.state_frame("c1"))["state"] == "closed"  # reload: rating card

    with pytest.raises(ValueError, match="评价等级"):
        await pipeline.rate("c1", 1, 6, "")
    with pytest.raises(ValueError, match="没有找到"):
        await pipeline.rate("other-conversation", 1, 4, "")
    await pipeline.rate("c1", 1, 4, "回答很及时")
    with pytest.raises(ValueError, match="已经评价过"):
        await pipeline.rate("c1", 1, 1, "")
    with session_factory(database_url)() as session:
        handoff = session.get(Handoff, 1)
        assert (handoff.rating, handoff.rating_comment) == (4, "回答很及时")
    assert (await pipeline.desk.state_frame("c1"))["state"] == "none"


async def test_hand_back_with_rasa_down_resumes_later(desk_parts, database_url):
    pipeline, channel, console = desk_parts
    wang = add_staff(database_url, "wang", "王小明")
    console.online = {wang.id}
    await request(pipeline, "c1")
    await pipeline.desk.accept(1, wang)
    await pipeline.desk.hand_back("c1", wang)
    assert channel.of("c1", "handoff")[-1] == {"type": "handoff", "state": "returned"}
    with session_factory(database_url)() as session:
        handoff = session.get(Handoff, 1)
        assert (handoff.status, handoff.rasa_resumed) == ("returned", False)
    # The next message goes to the bot again (down here: the user is told and offered a person).
    answer = await user_says(pipeline, "c1", "商标受理窗口在哪")
    assert [f["code"] for f in answer if f["type"] == "error"] == ["busy"]
    with pytest.raises(HandoffError):
        await pipeline.desk.staff_reply("c1", wang, "s9", "还在吗")


async def test_transfer_moves_the_conversation(desk_parts, database_url):
    pipeline, channel, console = desk_parts
    wang = add_staff(database_url, "wang", "王小明")
    li = add_staff(database_url, "li", "李华")
    console.online = {wang.id, li.id}
    await request(pipeline, "c1")
    await pipeline.desk.accept(1, wang)
    await pipeline.desk.transfer("c1", wang, li.id)
    assert channel.of("c1", "system")[-1]["text"] == "已为您转接至人工客服 李华"
    assert channel.of("c1", "handoff")[-1]["agent"] == "李华"
    with pytest.raises(HandoffError):
        await pipeline.desk.staff_reply("c1", wang, "s1", "我还在")
    await pipeline.desk.staff_reply("c1", li, "s2", "您好，我是李华")


async def test_waiting_citizens_are_released_when_nobody_is_online(desk_parts, database_url):
    pipeline, channel, console = desk_parts
    wang = add_staff(database_url, "wang", "王小明")
    console.online = {wang.id}
    await request(pipeline, "c1")
    assert await pipeline.desk.release_waiting() == 0  # someone is online: keep waiting
    console.online = set()
    assert await pipeline.desk.release_waiting() == 1
    assert channel.of("c1", "handoff")[-1]["state"] == "offline"
    assert channel.of("c1", "system")[-1]["text"].startswith("抱歉，人工客服暂时都不在线")
    with session_factory(database_url)() as session:
        assert session.get(Handoff, 1).status == "offline"
    with pytest.raises(HandoffError):  # too late to accept
        await pipeline.desk.accept(1, wang)


# ---- issue 14, #9-#11 ---------------------------------------------------------------------------


async def test_a_failed_handoff_read_during_a_handoff_answers_not_stored(
    desk_parts, database_url, monkeypatch
):
    """The message may belong to staff: it must not go to the paused bot (which would answer
    nothing useful and staff would never see it); the page sends it again."""
    pipeline, _, console = desk_parts
    wang = add_staff(database_url, "wang", "王小明")
    console.online = {wang.id}
    await request(pipeline, "c1")
    await pipeline.desk.accept(1, wang)
    real_read = pipeline.desk.routing_state

    async def database_down(conversation_id: str):
        raise TimeoutError("database call timed out")

    monkeypatch.setattr(pipeline.desk, "routing_state", database_down)
    received = await pipeline.receive("c1", "webchat", "m-lost", "我的专利被人仿冒了")
    [error] = await asyncio.wait_for(received.done, 10)
    assert error["type"] == "error" and error["code"] == "not_stored"
    assert error["client_id"] == "m-lost" and error["retry_after"] > 0
    assert not any(isinstance(e, ConversationFrame) for e in console.events[-1:])

    monkeypatch.setattr(pipeline.desk, "routing_state", real_read)
    again = await pipeline.receive("c1", "webchat", "m-lost", "我的专利被人仿冒了")  # resent
    assert again.duplicate and await asyncio.wait_for(again.done, 10) == []
    frames = [e for e in console.events if isinstance(e, ConversationFrame)]
    assert frames[-1].frame["text"] == "我的专利被人仿冒了"
    with session_factory(database_url)() as session:
        status = session.execute(
            select(Message.status).where(Message.client_message_id == "m-lost")
        )
        assert list(status.scalars()) == ["staff"]


async def test_a_ticket_as_the_first_message_of_a_new_follower_is_stored(desk_parts, database_url):
    """WeChat: a new follower's first message is "留言 …": no conversation row exists yet."""
    pipeline, _, _ = desk_parts
    ticket_id = await pipeline.leave_ticket(
        "wx-new-follower", "13800138000", "想咨询商标续展", channel="wechat", client_id="wx-1"
    )
    again = await pipeline.leave_ticket(
        "wx-new-follower", "13800138000", "想咨询商标续展", channel="wechat", client_id="wx-1"
    )
    with session_factory(database_url)() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket.message == "想咨询商标续展"
        conversation = session.get(Conversation, "wx-new-follower")
        assert conversation is not None and conversation.channel == "wechat"
    assert again == ticket_id


async def test_close_and_transfer_racing_have_one_winner(desk_parts, database_url):
    """Close and transfer are compare-and-set: a closed handoff is never reassigned, and of a
    close and a transfer at the same moment exactly one happens."""
    pipeline, _, console = desk_parts
    wang = add_staff(database_url, "wang", "王小明")
    li = add_staff(database_url, "li", "李华")
    console.online = {wang.id, li.id}
    for round_ in range(8):
        conversation = f"race{round_}"
        await request(pipeline, conversation)
        with session_factory(database_url)() as session:
            handoff_id = handoffs.open_handoff(session, conversation).id

        def close(session, handoff_id=handoff_id):
            return handoffs.end(session, handoff_id, CLOSED, wang.id)

        def transfer(session, handoff_id=handoff_id):
            return handoffs.assign(session, handoff_id, li.id, wang.id) is not None

        await pipeline.desk.accept(handoff_id, wang)
        closed, moved = await asyncio.gather(
            pipeline.store.run(close), pipeline.store.run(transfer)
        )
        assert closed != moved, (closed, moved)  # exactly one wins
        with session_factory(database_url)() as session:
            final = session.get(Handoff, handoff_id)
            assert (final.status, final.agent_id) == (
                (CLOSED, wang.id) if closed else ("active", li.id)
            )

    # Through the desk: once closed, the transfer is refused, and a second close too.
    await request(pipeline, "late")
    with session_factory(database_url)() as session:
        late_id = handoffs.open_handoff(session, "late").id
    await pipeline.desk.accept(late_id, wang)
    with session_factory(database_url)() as session:  # closed behind the desk's back
        assert handoffs.end(session, late_id, CLOSED, wang.id)
        assert not handoffs.end(session, late_id, CLOSED, wang.id)
        assert handoffs.assign(session, late_id, li.id, wang.id) is None
        assert session.get(Handoff, late_id).agent_id == wang.id
