"""The staff console's queue frame with many citizens waiting (issue 14, #6): how long reading it
takes and how big the frame is that every console receives on every change.

    .venv/bin/python bench/queue_snapshot.py [--waiting 2000] [--database-url URL]

Default database: a fresh SQLite file; with a PostgreSQL URL it uses a throw-away schema.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from bot.db import conversations, handoffs
from bot.db.engine import make_engine, session_factory
from bot.db.migrate import upgrade
from bot.staff.auth import StaffIdentity
from bot.staff.live import queue_frame, queue_snapshot


def fill(database_url: str, waiting: int) -> None:
    with session_factory(database_url)() as session:
        for n in range(waiting):
            conversations.store_user_message(
                session, f"bench-{n}", "c", f"我想咨询商标注册的问题，第{n}位", None
            )
            session.add(handoffs.Handoff(conversation_id=f"bench-{n}", status=handoffs.WAITING))
        session.commit()


def measure(database_url: str, waiting: int, rounds: int = 20) -> None:
    upgrade(database_url)
    fill(database_url, waiting)
    staff = StaffIdentity(id=1, username="bench", display_name="测试", role="admin")
    times, size = [], 0
    for _ in range(rounds):
        with session_factory(database_url)() as session:
            started = time.perf_counter()
            snapshot = queue_snapshot(session)
            times.append(time.perf_counter() - started)
        size = len(json.dumps(queue_frame(snapshot, staff, set()), ensure_ascii=False).encode())
    print(
        f"{waiting} waiting: snapshot median {statistics.median(times) * 1000:.1f} ms, "
        f"max {max(times) * 1000:.1f} ms; queue frame {size / 1024:.1f} KiB "
        f"({len(snapshot['waiting'])} listed, waiting_total {snapshot['waiting_total']})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--waiting", type=int, default=2000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    if not args.database_url:
        with tempfile.TemporaryDirectory() as directory:
            measure(f"sqlite:///{Path(directory) / 'bench.db'}", args.waiting)
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(args.database_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        measure(f"{args.database_url}?options=-csearch_path%3D{schema}", args.waiting)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
