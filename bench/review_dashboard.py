"""Dashboard queries and review-inbox grouping on a year of traffic: one million messages.

    .venv/bin/python bench/review_dashboard.py [--url postgresql://…] [--keep]

Seeds a fresh PostgreSQL schema (`bench_review`, dropped afterwards unless --keep) through the
migrations, then fills it with generate_series (a synthetic-data generator, PostgreSQL only;
the product's queries all live in bot/db): 125,000 conversations over 365 days, 8 messages each,
8% of questions flagged for review, 5% of conversations handed to a person (80% taken, half of
those rated), tickets, leads and 👍/👎. Then it times every dashboard query (bot.db.dashboard)
for the last 30 days and for the whole year, all channels and one, and the inbox: reading the
open questions (bot.db.review) and grouping them (bot.knowledge.grouping) for 7 and 30 days.
Each query runs WITHOUT migration 0008's indexes first, then with them; the best of 3 is shown.
Targets: every dashboard query under 300 ms, the inbox under 1 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from bot.db import dashboard as q
from bot.db import review, rollup
from bot.db.engine import make_engine, session_factory
from bot.db.migrate import upgrade
from bot.knowledge.grouping import group_questions
from bot.knowledge.search import tokens

SCHEMA = "bench_review"
CONVERSATIONS = 125_000
PER_CONVERSATION = 8  # 4 questions, 4 answers
END = dt.datetime(2026, 11, 30, 16, 0)  # 2026-12-01 00:00 Beijing
START = END - dt.timedelta(days=365)
INDEXES = {  # migration 0008's indexes, dropped for the "without" pass
    "ix_messages_created_at": "messages (created_at, role)",
    "ix_conversations_created_at": "conversations (created_at, channel)",
    "ix_handoffs_requested_at": "handoffs (requested_at)",
    "ix_tickets_created_at": "tickets (created_at)",
    "ix_consultation_requests_created_at": "consultation_requests (created_at)",
    "ix_review_signals_open": "review_signals (decision_id, created_at)",
    "ix_review_signals_created_at": "review_signals (created_at)",
    "ix_messages_feedback_at": "messages (feedback_at) WHERE feedback IS NOT NULL",
}
CORES = [
    "商标注册要多少钱",
    "商标受理窗口几点下班",
    "鄞州有品牌指导站吗",
    "专利预审要多久",
    "质押融资怎么申请",
    "地理标志怎么申请",
    "有人仿冒我的商标怎么办",
    "海外侵权险保什么",
    "社保怎么交",
    "公积金怎么提取",
    "今天天气怎么样",
    "营业执照怎么办",
    "发票怎么开",
    "专利年费怎么交",
    "商标续展要什么材料",
    "版权登记在哪里办",
    "软件著作权怎么申请",
    "集成电路布图设计怎么登记",
    "商标被驳回了怎么办",
    "专利转让怎么办理",
    "知识产权贷款利率多少",
    "品牌指导站提供什么服务",
    "综合体在哪里",
    "快速预审需要什么条件",
    "商标异议怎么提",
    "马德里商标国际注册怎么办",
    "专利侵权怎么取证",
    "商标许可备案怎么办",
    "地理标志保险赔多少",
    "专利申请被驳回能复审吗",
    "个人能申请专利吗",
    "商标图样有什么要求",
    "外观设计专利保护多久",
]
PREFIXES = ["", "请问", "我想问一下", "你好，", "麻烦问下"]
SUFFIXES = ["", "？", "啊", "呢", "，急"]

SEED_SQL = [
    f"""INSERT INTO conversations (id, channel, created_at, last_message_at)
    SELECT 'c' || g, CASE WHEN g % 10 < 7 THEN 'webchat' ELSE 'wechat' END, t,
           t + interval '5 minutes'
    FROM (SELECT g, timestamp '{START}' + (random() * 365) * interval '1 day' AS t
          FROM generate_series(1, {CONVERSATIONS}) g) x""",
    f"""INSERT INTO messages (conversation_id, role, text, status, created_at, outcome, topic,
        knowledge_key, score, feedback, feedback_at)
    SELECT c.id,
           CASE WHEN k % 2 = 0 THEN 'user' ELSE 'bot' END,
           CASE WHEN k % 2 = 0 THEN '问题' || (k / 2) ELSE '回答' END,
           CASE WHEN k % 2 = 0 THEN 'answered' END,
           c.created_at + k * interval '30 seconds',
           CASE WHEN k % 2 = 0 THEN
             (ARRAY['answered','answered','answered','answered','answered','answered',
                    'suggested','not_found','fallback','out_of_scope'])[1 + (h % 10)] END,
           CASE WHEN k % 2 = 0 THEN
             (ARRAY['ask_trademark_window','ask_ip_insurance','find_brand_station',
                    'ask_one_stop_service','ask_patent_fast_track','ask_pledge_financing',
                    'ask_geographical_indication','report_infringement'])[1 + (h / 10 % 8)] END,
           CASE WHEN k % 2 = 0 AND h % 10 < 6 THEN 'item-' || (h / 7 % 200) END,
           CASE WHEN k % 2 = 0 THEN (h % 100) / 100.0 END,
           CASE WHEN k % 2 = 1 AND h % 20 = 0 THEN
             (CASE WHEN h % 3 = 0 THEN 'down' ELSE 'up' END) END,
           CASE WHEN k % 2 = 1 AND h % 20 = 0 THEN c.created_at + interval '10 minutes' END
    FROM conversations c, generate_series(0, {PER_CONVERSATION - 1}) k,
         LATERAL (SELECT abs(hashtext(c.id || k)) AS h) x""",
    """INSERT INTO staff_users (username, display_name, password_hash, role, active,
        failed_logins, created_at)
    SELECT 'agent' || g, '客服' || g, 'x', 'agent', true, 0, timestamp '2025-01-01'
    FROM generate_series(1, 10) g""",
    """INSERT INTO review_signals (message_id, conversation_id, channel, reason, created_at)
    SELECT m.id, m.conversation_id, c.channel,
           CASE m.outcome WHEN 'fallback' THEN 'fallback' WHEN 'out_of_scope' THEN 'out_of_scope'
                ELSE 'low_score' END,
           m.created_at
    FROM messages m JOIN conversations c ON c.id = m.conversation_id
    WHERE m.role = 'user' AND m.outcome IN ('suggested', 'not_found', 'fallback', 'out_of_scope')
      AND abs(hashtext(m.id::text)) % 5 = 0""",
    """INSERT INTO handoffs (conversation_id, status, reason, requested_at, accepted_at, ended_at,
        agent_id, rating, rated_at, rasa_resumed)
    SELECT c.id, 'closed', 'user', c.created_at + interval '3 minutes',
           CASE WHEN h % 10 < 8 THEN
             c.created_at + interval '3 minutes' + (5 + h % 600) * interval '1 second' END,
           c.created_at + interval '20 minutes',
           CASE WHEN h % 10 < 8 THEN (SELECT min(id) FROM staff_users) + h % 10 END,
           CASE WHEN h % 10 < 4 THEN 1 + (h / 10) % 5 END,
           CASE WHEN h % 10 < 4 THEN c.created_at + interval '21 minutes' END,
           true
    FROM conversations c, LATERAL (SELECT abs(hashtext(c.id)) AS h) x
    WHERE abs(hashtext(c.id || 'h')) % 20 = 0""",
    """INSERT INTO tickets (conversation_id, phone, message, status, created_at, updated_at)
    SELECT c.id, '13800000000', '请回电',
           (ARRAY['open','called_back','closed'])[1 + abs(hashtext(c.id)) % 3],
           c.created_at, c.created_at
    FROM conversations c WHERE abs(hashtext(c.id || 't')) % 125 = 0""",
    """INSERT INTO consultation_requests (reference, company, contact_name, phone, conversation_id,
        status, created_at)
    SELECT 'ZX-' || c.id, '某公司', '张先生', '13800000000', c.id,
           (ARRAY['new','contacted','closed'])[1 + abs(hashtext(c.id)) % 3], c.created_at
    FROM conversations c WHERE abs(hashtext(c.id || 'l')) % 60 = 0""",
]


def seed(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as connection:
        for statement in SEED_SQL:
            connection.execute(text(statement))
        # Flagged questions get realistic texts: variants of a few dozen questions.
        texts = [p + c + s for c in CORES for p in PREFIXES for s in SUFFIXES]
        connection.execute(
            text(
                "UPDATE messages m SET text = (:texts)[1 + abs(hashtext(m.id::text)) % :n] "
                "FROM review_signals r WHERE r.message_id = m.id"
            ),
            {"texts": texts, "n": len(texts)},
        )
        connection.execute(text("ANALYZE"))
    started = time.perf_counter()
    with session_factory(url)() as session:
        rollup.rebuild(session)  # what migration 0008 does for existing data
    print(f"daily rollup rebuilt in {time.perf_counter() - started:.1f} s")
    with engine.begin() as connection:
        counts = {
            name: connection.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()
            for name in ("conversations", "messages", "review_signals", "handoffs", "daily_counts")
        }
    engine.dispose()
    print("seeded:", ", ".join(f"{k} {v:,}" for k, v in counts.items()))


def best_of(work: Callable[[], Any], runs: int = 3) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    return best * 1000, result


DASHBOARD: dict[str, Callable[[Session, q.Range], Any]] = {
    "conversations_per_day": q.conversations_per_day,
    "questions_per_day": q.questions_per_day,
    "top_topics": q.top_topics,
    "top_items": q.top_items,
    "handoffs_per_day": q.handoffs_per_day,
    "wait_seconds": q.wait_seconds,
    "per_agent": q.per_agent,
    "rating_distribution": q.rating_distribution,
    "leads_by_status": lambda s, r: q.by_status(s, r, "leads"),
    "tickets_by_status": lambda s, r: q.by_status(s, r, "tickets"),
    "feedback_counts": q.feedback_counts,
}


def measure(url: str) -> dict[str, float]:
    spans = {
        "30d": q.Range(END - dt.timedelta(days=30), END),
        "30d wechat": q.Range(END - dt.timedelta(days=30), END, "wechat"),
        "365d": q.Range(START, END),
        "365d wechat": q.Range(START, END, "wechat"),
    }
    times: dict[str, float] = {}
    with session_factory(url)() as session:
        for name, query in DASHBOARD.items():
            for label, span in spans.items():
                times[f"{name} [{label}]"], _ = best_of(partial(query, session, span))
        for days in (7, 30):
            since = END - dt.timedelta(days=days)
            read_ms, found = best_of(partial(review.open_questions, session, since, END))
            group_ms, groups = best_of(partial(group_questions, found))
            times[f"inbox read [{days}d, {len(found)} questions]"] = read_ms
            times[f"inbox group [{days}d, {len(groups)} groups]"] = group_ms
            times[f"inbox total [{days}d]"] = read_ms + group_ms
    return times


def set_indexes(url: str, present: bool) -> None:
    engine = make_engine(url)
    with engine.begin() as connection:
        for name, target in INDEXES.items():
            if present:
                connection.execute(text(f"CREATE INDEX IF NOT EXISTS {name} ON {target}"))
            else:
                connection.execute(text(f"DROP INDEX IF EXISTS {name}"))
        connection.execute(text("ANALYZE"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--keep", action="store_true", help="keep the bench schema afterwards")
    args = parser.parse_args()
    admin = make_engine(args.url)
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    url = f"{args.url}?options=-csearch_path%3D{SCHEMA}"
    try:
        upgrade(url)
        started = time.perf_counter()
        seed(url)
        print(f"seeding took {time.perf_counter() - started:.0f} s")
        tokens("预热")  # load jieba's dictionary once (about 1 s), outside the timings
        set_indexes(url, present=False)
        without = measure(url)
        set_indexes(url, present=True)
        with_indexes = measure(url)
        print(f"\n{'query [range]':58} {'no index':>10} {'indexed':>10}  target")
        for name, ms in with_indexes.items():
            target = 1000 if name.startswith("inbox total") else 300
            if name.startswith(("inbox read", "inbox group")):
                mark = ""
            else:
                mark = "ok" if ms < target else f"OVER {target} ms"
            print(f"{name:58} {without[name]:8.1f}ms {ms:8.1f}ms  {mark}")
    finally:
        if not args.keep:
            with admin.begin() as connection:
                connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        admin.dispose()


if __name__ == "__main__":
    main()
