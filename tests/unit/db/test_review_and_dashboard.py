"""The review signals and decisions (bot.db.review) and the dashboard's numbers (bot.db.dashboard)
on SQLite and PostgreSQL: data written through the product's own functions at known times, the
dashboard compared with counts taken directly from the tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from bot.conversation.store import as_frame
from bot.db import conversations, review, rollup
from bot.db import dashboard as q
from bot.db.conversations import Message
from bot.db.engine import session_factory
from bot.db.handoffs import Handoff
from bot.db.ratings import Rating
from bot.staff import accounts
from tests.support.staff_login import FAST_HASHER

DAY_A = dt.datetime(2026, 11, 10, 2, 0)  # 10:00 Beijing, 2026-11-10
DAY_B = dt.datetime(2026, 11, 12, 2, 0)  # 2026-11-12: outside a range that ends on the 11th
RANGE_A = q.Range(dt.datetime(2026, 11, 9, 16, 0), dt.datetime(2026, 11, 11, 16, 0))


class Clock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = DAY_A
        monkeypatch.setattr(conversations, "utcnow", lambda: self.now)
        monkeypatch.setattr(review, "utcnow", lambda: self.now)


@pytest.fixture()
def db(database_url: str) -> Iterator[Session]:
    with session_factory(database_url)() as session:
        yield session


def ask(db: Session, conversation: str, text: str, meta: dict[str, Any] | None = None,
        channel: str = "webchat", payload: str | None = None) -> int:  # fmt: skip
    stored = conversations.store_user_message(
        db, conversation, f"m{db.execute(select(func.count(Message.id))).scalar_one()}", text,
        payload, channel,
    )  # fmt: skip
    conversations.store_replies(db, conversation, stored.id, [{"text": "答复"}])
    if meta:
        review.record_outcome(db, stored.id, meta)
    return stored.id


def bot_reply_of(db: Session, question_id: int) -> Message:
    return (
        db.execute(
            select(Message)
            .where(Message.id > question_id, Message.role == "bot")
            .order_by(Message.id)
        )
        .scalars()
        .first()
    )


def test_outcomes_flag_the_questions_the_bot_did_not_answer(db: Session) -> None:
    answered = ask(db, "c1", "商标注册多少钱", {"outcome": "answered", "key": "fee", "topic": "t"})
    suggested = ask(db, "c1", "那个东西怎么弄", {"outcome": "suggested", "score": 0.31})
    fallback = ask(db, "c2", "啊啊啊", {"outcome": "fallback"})
    ask(db, "c2", "随便", {"outcome": "made-up", "key": "x" * 200})  # ignored values
    found = {o.message_id: o.reasons for o in review.open_questions(db, DAY_A.min, DAY_A.max)}
    assert found == {suggested: ("low_score",), fallback: ("fallback",)}
    first = db.get(Message, answered)
    assert (first.outcome, first.knowledge_key, first.topic) == ("answered", "fee", "t")
    assert db.get(Message, suggested).score == pytest.approx(0.31)


def test_handoff_and_none_of_these_flag_the_typed_question_before(db: Session) -> None:
    question = ask(db, "c1", "我的专利被人抄了")
    click = ask(db, "c1", "都不是", payload="/out_of_scope")
    assert review.flag_question(db, "c1", click, "none_of_these", inclusive=True) == question
    typed = ask(db, "c1", "转人工")
    assert review.flag_question(db, "c1", typed, "handoff", inclusive=True) == question
    assert review.flag_question(db, "c1", typed, "handoff", inclusive=True) == question  # once
    [open_question] = review.open_questions(db, DAY_A.min, DAY_A.max)
    assert set(open_question.reasons) == {"none_of_these", "handoff"}


def test_a_question_about_artificial_intelligence_is_a_question_not_a_request_for_a_person(
    db: Session,
) -> None:
    ask(db, "c2", "商标注册要多久")
    question = ask(db, "c2", "人工智能生成的图片能申请专利吗")
    for typed in ("我要人工服务", "有人工吗"):
        request = ask(db, "c2", typed)
        assert review.flag_question(db, "c2", request, "handoff", inclusive=True) == question


def test_feedback_is_stored_with_the_bot_message_and_a_thumbs_down_flags_its_question(
    db: Session,
) -> None:
    question = ask(db, "c1", "质押融资利率多少", {"outcome": "answered", "key": "pledge"})
    answer = bot_reply_of(db, question)
    review.set_feedback(db, "c1", answer.id, "down", "wrong")
    db.refresh(answer)
    assert (answer.feedback, answer.feedback_reason) == ("down", "wrong")
    assert as_frame(answer)["feedback"] == "down"  # the chat shows it again after a reload
    [flagged] = review.open_questions(db, DAY_A.min, DAY_A.max)
    assert (flagged.message_id, flagged.reasons) == (question, ("thumbs_down",))
    review.set_feedback(db, "c1", answer.id, "up", None)
    db.refresh(answer)
    assert (answer.feedback, answer.feedback_reason) == ("up", None)
    for conversation, message_id, value, reason in (
        ("other", answer.id, "down", None),  # not this conversation's message
        ("c1", question, "down", None),  # a citizen's own message
        ("c1", answer.id, "meh", None),
        ("c1", answer.id, "down", "<script>"),
    ):
        with pytest.raises(review.FeedbackRefused):
            review.set_feedback(db, conversation, message_id, value, reason)


def test_a_decision_takes_its_questions_out_of_the_inbox_and_is_recorded(db: Session) -> None:
    staff = accounts.create_account(
        db, "zhaoli", "赵丽", "pw-long-enough", "editor", hasher=FAST_HASHER
    )
    first = ask(db, "c1", "社保怎么交", {"outcome": "out_of_scope"})
    second = ask(db, "c2", "社保在哪交", {"outcome": "out_of_scope"})
    review.flag_question(db, "c2", second, "handoff", inclusive=True)
    decided = review.decide(db, [first, second], "dismiss", "与知识产权无关", staff.id)
    assert decided.messages == 2
    assert review.open_questions(db, DAY_A.min, DAY_A.max) == []
    [record] = review.recent_decisions(db)
    assert (record.action, record.detail, record.staff, record.message_count) == (
        "dismiss", "与知识产权无关", "赵丽", 2,
    )  # fmt: skip
    assert set(record.examples) == {"社保怎么交", "社保在哪交"}
    assert db.execute(select(func.count(review.ReviewSignal.id))).scalar_one() == 3  # kept


def seed_two_days(db: Session, clock: Clock) -> None:
    staff = accounts.create_account(
        db, "wangxm", "王小明", "pw-long-enough", "agent", hasher=FAST_HASHER
    )
    for day in (DAY_A, DAY_B):
        clock.now = day
        ask(
            db,
            f"w{day.day}",
            "商标多少钱",
            {"outcome": "answered", "key": "k1", "topic": "ask_trademark_window"},
        )
        ask(
            db,
            f"w{day.day}",
            "窗口在哪",
            {"outcome": "answered", "key": "k2", "topic": "ask_trademark_window"},
        )
        ask(
            db,
            f"x{day.day}",
            "天气",
            {"outcome": "out_of_scope", "topic": "out_of_scope"},
            channel="wechat",
        )
        ask(
            db,
            f"y{day.day}",
            "专利多久",
            {"outcome": "suggested", "topic": "ask_patent_fast_track"},
        )
        db.add(Handoff(conversation_id=f"y{day.day}", status="closed", reason="user",
                       requested_at=day, accepted_at=day + dt.timedelta(seconds=40),
                       agent_id=staff.id, rating=4, rated_at=day + dt.timedelta(minutes=5),
                       rasa_resumed=True))  # fmt: skip
        db.flush()
        db.add(Rating(conversation_id=f"y{day.day}", subject="handoff", channel="webchat",
                      trigger="handoff", offered_at=day, score=4,
                      rated_at=day + dt.timedelta(minutes=5)))  # fmt: skip
        db.add(
            Rating(
                conversation_id=f"x{day.day}",
                subject="bot",
                channel="wechat",
                trigger="thank",
                offered_at=day,
            )
        )  # offered, never answered: not counted
        db.commit()


def test_dashboard_numbers_equal_the_tables_and_the_range_excludes_other_days(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_two_days(db, Clock(monkeypatch))
    day = "2026-11-10"
    conversations_a = db.execute(
        text("SELECT count(*) FROM conversations WHERE created_at >= :a AND created_at < :b"),
        {"a": RANGE_A.since, "b": RANGE_A.until},
    ).scalar_one()
    questions_a = db.execute(
        text(
            "SELECT count(*) FROM messages WHERE role = 'user'"
            " AND created_at >= :a AND created_at < :b"
        ),
        {"a": RANGE_A.since, "b": RANGE_A.until},
    ).scalar_one()
    assert (conversations_a, questions_a) == (3, 4)
    assert q.conversations_per_day(db, RANGE_A) == [(day, 3, 1)]
    assert q.questions_per_day(db, RANGE_A) == [(day, 4, 2)]
    assert q.top_topics(db, RANGE_A) == [
        ("ask_trademark_window", 2), ("ask_patent_fast_track", 1), ("out_of_scope", 1),
    ]  # fmt: skip
    assert q.top_items(db, RANGE_A) == [("k1", "k1", 1), ("k2", "k2", 1)]
    assert q.handoffs_per_day(db, RANGE_A) == [(day, 1, 1)]
    assert q.wait_seconds(db, RANGE_A) == [40.0]
    assert q.per_agent(db, RANGE_A) == [("王小明", 1)]
    assert q.rating_distribution(db, RANGE_A) == {5: 0, 4: 1, 3: 0, 2: 0, 1: 0}
    wechat = q.Range(RANGE_A.since, RANGE_A.until, "wechat")
    assert q.conversations_per_day(db, wechat) == [(day, 1, 0)]
    assert q.questions_per_day(db, wechat) == [(day, 1, 1)]
    assert q.handoffs_per_day(db, wechat) == []
    both = q.Range(RANGE_A.since, RANGE_A.until + dt.timedelta(days=2))
    assert [d for d, *_ in q.conversations_per_day(db, both)] == [day, "2026-11-12"]


def test_the_rollup_rebuilt_from_the_tables_equals_the_one_kept_live(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_two_days(db, Clock(monkeypatch))
    live = sorted(db.execute(select(rollup.DailyCount.__table__)).all())
    rollup.rebuild(db)
    assert sorted(db.execute(select(rollup.DailyCount.__table__)).all()) == live
    assert len(live) > 8


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (q.percentile(values, 0.5), q.percentile(values, 0.95)) == (50.0, 95.0)
    assert q.percentile([7.0], 0.95) == 7.0 and q.percentile([], 0.5) is None
