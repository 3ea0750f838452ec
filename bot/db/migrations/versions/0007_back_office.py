"""back office: leads, ratings follow-up, holidays, look-ups (issue 16)

Revision ID: 0007_back_office
Revises: 0006_staff_sessions
Create Date: 2026-12-01

Leads get an owner and their history; every rating (handoff or bot-only) is a row of `ratings`,
a bad one opens a `follow_ups` row; `calendar_days` holds the administrator's closures and extra
working days; `status_lookups` counts a citizen's look-ups (wrong tries are limited).
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_back_office"
down_revision = "0006_staff_sessions"
branch_labels = None
depends_on = None


def staff_fk() -> sa.ForeignKey:
    return sa.ForeignKey("staff_users.id")


def upgrade() -> None:
    with op.batch_alter_table("consultation_requests") as batch:
        batch.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("updated_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("contacted_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("closed_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("outcome", sa.Text(), nullable=True))
        batch.create_foreign_key(
            "fk_consultation_requests_owner_id", "staff_users", ["owner_id"], ["id"]
        )
        batch.create_index("ix_consultation_requests_owner_id", ["owner_id"])
    op.create_table(
        "lead_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "lead_id",
            sa.Integer(),
            sa.ForeignKey("consultation_requests.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("staff_id", sa.Integer(), staff_fk()),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20)),
        sa.Column("owner_id", sa.Integer(), staff_fk()),
        sa.Column("note", sa.Text()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_lead_events_lead_id", "lead_events", ["lead_id"])
    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "conversation_id",
            sa.String(64),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("subject", sa.String(30), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("trigger", sa.String(10), nullable=False),
        sa.Column("handoff_id", sa.Integer(), sa.ForeignKey("handoffs.id")),
        sa.Column("agent_id", sa.Integer(), staff_fk()),
        sa.Column("topic", sa.String(50)),
        sa.Column("offered_at", sa.DateTime(), nullable=False),
        sa.Column("score", sa.Integer()),
        sa.Column("comment", sa.Text()),
        sa.Column("rated_at", sa.DateTime()),
        sa.UniqueConstraint("conversation_id", "subject", name="uq_rating_subject"),
    )
    # Handoff ratings given before this revision join the ratings page (no follow-ups for them).
    op.execute(
        "INSERT INTO ratings (conversation_id, subject, channel, trigger, handoff_id, agent_id,"
        " offered_at, score, comment, rated_at)"
        " SELECT h.conversation_id, 'handoff-' || h.id, COALESCE(c.channel, 'webchat'),"
        " 'handoff', h.id, h.agent_id, COALESCE(h.ended_at, h.rated_at, h.requested_at),"
        " h.rating, h.rating_comment, h.rated_at"
        " FROM handoffs h LEFT JOIN conversations c ON c.id = h.conversation_id"
        " WHERE h.rating IS NOT NULL"
    )
    op.create_index("ix_ratings_conversation_id", "ratings", ["conversation_id"])
    op.create_index("ix_ratings_agent_id", "ratings", ["agent_id"])
    op.create_index("ix_ratings_rated_at", "ratings", ["rated_at"])
    op.create_table(
        "follow_ups",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "rating_id",
            sa.Integer(),
            sa.ForeignKey("ratings.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("assignee_id", sa.Integer(), staff_fk()),
        sa.Column("phone", sa.String(20)),
        sa.Column("contact_outcome", sa.String(20)),
        sa.Column("contact_note", sa.Text()),
        sa.Column("fix_note", sa.Text()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("closed_at", sa.DateTime()),
        sa.Column("closed_by", sa.Integer(), staff_fk()),
    )
    op.create_index("ix_follow_ups_status", "follow_ups", ["status"])
    op.create_index("ix_follow_ups_assignee_id", "follow_ups", ["assignee_id"])
    op.create_table(
        "calendar_days",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("workday", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(100), nullable=False),
        sa.Column("created_by", sa.Integer(), staff_fk()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "status_lookups",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("conversation_id", sa.String(64), nullable=False),
        sa.Column("reference", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_status_lookups_conversation_id", "status_lookups", ["conversation_id"])
    op.create_index("ix_status_lookups_reference", "status_lookups", ["reference"])
    op.create_index("ix_status_lookups_created_at", "status_lookups", ["created_at"])


def downgrade() -> None:
    for table in ("status_lookups", "calendar_days", "follow_ups", "ratings", "lead_events"):
        op.drop_table(table)
    with op.batch_alter_table("consultation_requests") as batch:
        batch.drop_index("ix_consultation_requests_owner_id")
        batch.drop_constraint("fk_consultation_requests_owner_id", type_="foreignkey")
        for column in ("outcome", "closed_at", "contacted_at", "updated_at", "owner_id"):
            batch.drop_column(column)
