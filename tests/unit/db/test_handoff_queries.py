"""The staff console's reads (bot/db/handoffs.py) on SQLite and PostgreSQL: what they return and
that their query count does not grow with the queue (no query per handoff)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.orm import Session

from bot.db import conversations, handoffs
from bot.db.engine import session_factory
from bot.db.handoffs import ACTIVE, WAITING
from bot.db.staff import StaffUser


@contextmanager
def counted_queries(session: Session) -> Iterator[list[str]]:
    """The SQL statements run on the session's engine inside the block."""
    statements: list[str] = []
    engine = session.get_bind()

    def record(_conn, _cursor, statement, _params, _context, _many) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def add_staff(session: Session, username: str, display_name: str, active: bool = True) -> int:
    account = StaffUser(
        username=username, display_name=display_name, password_hash="x", active=active
    )
    session.add(account)
    session.commit()
    return account.id


def add_waiting(session: Session, conversation_id: str, *texts: str) -> handoffs.Handoff:
    """A waiting handoff of a conversation where the user typed `texts` (else the bot spoke)."""
    for number, text in enumerate(texts):
        conversations.store_user_message(session, conversation_id, f"c{number}", text, None)
    if not texts:
        conversations.add_message(session, conversation_id, "bot", "您好")
    return handoffs.create_handoff(session, conversation_id, "user", [], WAITING)


def test_queue_snapshot_reads_everything_in_two_queries(database_url: str) -> None:
    with session_factory(database_url)() as session:
        agent = add_staff(session, "wang", "王小明")
        add_staff(session, "li", "李四", active=False)
        first = add_waiting(session, "conv-a", "你好", "我想申请商标")
        add_waiting(session, "conv-b")  # the user typed nothing (a button)
        busy = add_waiting(session, "conv-c", "转人工")
        assert handoffs.claim(session, busy.id, agent)
        for number in range(5):
            add_waiting(session, f"conv-more-{number}", f"问题 {number}")

    with session_factory(database_url)() as session, counted_queries(session) as statements:
        snapshot = handoffs.queue_snapshot(session)

    assert len(statements) == 2
    assert [s.handoff.conversation_id for s in snapshot.waiting][:2] == ["conv-a", "conv-b"]
    assert len(snapshot.waiting) == 7
    head, empty = snapshot.waiting[0], snapshot.waiting[1]
    assert (head.handoff.id, head.channel, head.agent_name) == (first.id, "webchat", None)
    assert head.last_user_text == "我想申请商标"
    assert empty.last_user_text is None
    [active] = snapshot.active
    assert (active.handoff.status, active.agent_name, active.last_user_text) == (
        ACTIVE,
        "王小明",
        "转人工",
    )
    assert snapshot.agents == [(agent, "王小明")]  # inactive accounts are not offered


def test_conversation_detail_names_the_agent_and_note_authors(database_url: str) -> None:
    with session_factory(database_url)() as session:
        agent = add_staff(session, "wang", "王小明")
        handoff = add_waiting(session, "conv-a", "你好")
        assert handoffs.claim(session, handoff.id, agent)
        handoffs.add_note(session, "conv-a", agent, "回电过")

    with session_factory(database_url)() as session:
        detail = handoffs.conversation_detail(session, "conv-a")
        empty = handoffs.conversation_detail(session, "conv-none")

    assert detail.summary is not None and detail.summary.agent_name == "王小明"
    assert [m.text for m in detail.messages] == ["你好"]
    assert [(note.text, author) for note, author in detail.notes] == [("回电过", "王小明")]
    assert (empty.summary, empty.messages, empty.notes) == (None, [], [])


def test_the_queue_snapshot_is_one_capped_page_with_totals(database_url: str) -> None:
    """2,000 waiting citizens must not make every console frame list all of them (issue 14)."""
    with session_factory(database_url)() as session:
        agent = add_staff(session, "zhao", "赵六")
        for number in range(handoffs.QUEUE_PAGE + 70):
            conversations.store_user_message(session, f"q{number}", "c", f"问题{number}", None)
            session.add(handoffs.Handoff(conversation_id=f"q{number}", status=WAITING))
        session.commit()
        taken = add_waiting(session, "taken", "转人工")
        assert handoffs.claim(session, taken.id, agent)
        session.expire_all()
        with counted_queries(session) as statements:
            snapshot = handoffs.queue_snapshot(session)
            second = handoffs.queue_snapshot(session, waiting_offset=handoffs.QUEUE_PAGE)
    assert len(statements) == 4  # each snapshot: the handoffs in one query, the agents in one
    assert len(snapshot.waiting) == handoffs.QUEUE_PAGE
    assert snapshot.waiting_total == handoffs.QUEUE_PAGE + 70 and snapshot.active_total == 1
    assert [s.last_user_text for s in snapshot.waiting[:2]] == ["问题0", "问题1"]
    assert [s.handoff.conversation_id for s in snapshot.active] == ["taken"]
    assert len(second.waiting) == 50 and second.waiting[0].last_user_text == f"问题{50}"
