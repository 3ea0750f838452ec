"""security round two: ticket de-duplication by the client's id (issue 14)

Revision ID: 0009_security
Revises: 0008_review
Create Date: 2026-12-01

A web chat ticket carries the page's client id: a resent ticket frame finds the stored ticket
instead of adding another (one ticket per client id and conversation).
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_security"
down_revision = "0008_review"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tickets", sa.Column("client_id", sa.String(64)))
    op.create_index(
        "ix_tickets_conversation_client", "tickets", ["conversation_id", "client_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_tickets_conversation_client", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("client_id")
