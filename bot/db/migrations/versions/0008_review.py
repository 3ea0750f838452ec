"""review inbox, answer feedback, dashboard indexes (issue 17)

Revision ID: 0008_review
Revises: 0007_back_office
Create Date: 2026-12-01

Messages get the citizen's 👍/👎 (bot messages) and what the bot did with a question (user
messages: outcome, topic, knowledge item, score). `review_signals` are the questions the bot
did not answer well, one row per reason; `review_decisions` what staff did with them.
The indexes serve the dashboard's date-range queries (measured by bench/review_dashboard.py).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

revision = "0008_review"
down_revision = "0007_back_office"
branch_labels = None
depends_on = None

MESSAGE_COLUMNS = (
    ("feedback", sa.String(4)),
    ("feedback_reason", sa.String(20)),
    ("feedback_at", sa.DateTime()),
    ("outcome", sa.String(16)),
    ("topic", sa.String(64)),
    ("knowledge_key", sa.String(80)),
    ("score", sa.Float()),
)


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        for name, kind in MESSAGE_COLUMNS:
            batch.add_column(sa.Column(name, kind))
    op.create_index("ix_messages_created_at", "messages", ["created_at", "role"])
    op.create_index("ix_conversations_created_at", "conversations", ["created_at", "channel"])
    op.create_index("ix_handoffs_requested_at", "handoffs", ["requested_at"])
    op.create_index("ix_tickets_created_at", "tickets", ["created_at"])
    op.create_index(
        "ix_consultation_requests_created_at", "consultation_requests", ["created_at"]
    )
    op.create_table(
        "review_decisions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("action", sa.String(12), nullable=False),  # knowledge | training | dismiss
        sa.Column("detail", sa.Text(), nullable=False),  # the item key, the intent, the reason
        sa.Column("staff_id", sa.Integer(), sa.ForeignKey("staff_users.id"), nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_review_decisions_created_at", "review_decisions", ["created_at"])
    op.create_table(
        "review_signals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("message_id", sa.Integer(), sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("conversation_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("decision_id", sa.Integer(), sa.ForeignKey("review_decisions.id")),
        sa.UniqueConstraint("message_id", "reason", name="uq_review_signal"),
    )
    op.create_index("ix_review_signals_open", "review_signals", ["decision_id", "created_at"])
    op.create_index("ix_review_signals_created_at", "review_signals", ["created_at"])
    op.create_index("ix_review_signals_message_id", "review_signals", ["message_id"])
    # 👍/👎 counted by when they were given: few rows, so a partial index.
    op.create_index(
        "ix_messages_feedback_at",
        "messages",
        ["feedback_at"],
        postgresql_where=sa.text("feedback IS NOT NULL"),
        sqlite_where=sa.text("feedback IS NOT NULL"),
    )
    op.create_table(
        "daily_counts",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("channel", sa.String(20), primary_key=True),
        sa.Column("metric", sa.String(16), primary_key=True),
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("n", sa.Integer(), nullable=False),
    )
    # Existing conversations and messages are counted once here (bot/db/rollup.py).
    from bot.db.rollup import rebuild

    rebuild(Session(bind=op.get_bind()))


def downgrade() -> None:
    op.drop_table("daily_counts")
    op.drop_index("ix_messages_feedback_at", table_name="messages")
    op.drop_table("review_signals")
    op.drop_table("review_decisions")
    for name in (
        "ix_consultation_requests_created_at",
        "ix_tickets_created_at",
        "ix_handoffs_requested_at",
        "ix_conversations_created_at",
        "ix_messages_created_at",
    ):
        op.drop_index(name)
    with op.batch_alter_table("messages") as batch:
        for name, _ in MESSAGE_COLUMNS:
            batch.drop_column(name)
