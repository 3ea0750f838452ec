"""knowledge items, their revisions and the content version

Revision ID: 0005_knowledge
Revises: 0004_handoff
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_knowledge"
down_revision = "0004_handoff"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "knowledge_items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(80), nullable=False, unique=True),
        sa.Column("topic", sa.String(50), nullable=False, index=True),
        sa.Column("question", sa.String(200), nullable=False),
        sa.Column("phrasings", sa.JSON(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("details", sa.Text()),
        sa.Column("holds_for", sa.String(40)),
        sa.Column("source_title", sa.String(200)),
        sa.Column("source_url", sa.String(500)),
        sa.Column("source_kind", sa.String(10)),
        sa.Column("last_verified", sa.Date()),
        sa.Column("unknown", sa.Boolean(), nullable=False),
        sa.Column("related", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False, index=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
    )
    op.create_table(
        "knowledge_revisions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "item_id",
            sa.Integer(),
            sa.ForeignKey("knowledge_items.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.Column("changed_by", sa.String(64), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
    )
    op.create_table(
        "knowledge_version",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("knowledge_version")
    op.drop_table("knowledge_revisions")
    op.drop_table("knowledge_items")
