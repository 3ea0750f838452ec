"""service points

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_points",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("service_type", sa.String(50), nullable=False),
        sa.Column("district", sa.String(20)),
        sa.Column("address", sa.String(300)),
        sa.Column("latitude", sa.Float()),
        sa.Column("longitude", sa.Float()),
        sa.Column("opening_hours", sa.String(200)),
        sa.Column("phone", sa.String(50)),
        sa.Column("services", sa.Text()),
        sa.Column("note", sa.Text()),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("last_verified", sa.Date()),
        sa.UniqueConstraint("service_type", "name", name="uq_service_point_key"),
    )
    op.create_index("ix_service_points_service_type", "service_points", ["service_type"])
    op.create_index("ix_service_points_district", "service_points", ["district"])


def downgrade() -> None:
    op.drop_table("service_points")
