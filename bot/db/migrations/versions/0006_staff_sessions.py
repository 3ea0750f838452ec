"""staff sessions: sign-ins every gateway checks, so a logout holds everywhere and after restarts

Revision ID: 0006_staff_sessions
Revises: 0005_knowledge
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_staff_sessions"
down_revision = "0005_knowledge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("staff_id", sa.Integer(), sa.ForeignKey("staff_users.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime()),
    )
    op.create_index("ix_staff_sessions_staff_id", "staff_sessions", ["staff_id"])


def downgrade() -> None:
    op.drop_index("ix_staff_sessions_staff_id", table_name="staff_sessions")
    op.drop_table("staff_sessions")
