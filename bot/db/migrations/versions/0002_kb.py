"""insurance products and consultation requests

Revision ID: 0002_kb
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_kb"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "insurance_products",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("insurance_type", sa.String(50), nullable=False),
        sa.Column("coverage", sa.Text()),
        sa.Column("audience", sa.Text()),
        sa.Column("limits", sa.Text()),
        sa.Column("premium", sa.Text()),
        sa.Column("insurer", sa.String(200)),
        sa.Column("note", sa.Text()),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("last_verified", sa.Date()),
        sa.UniqueConstraint("insurance_type", "name", name="uq_insurance_product_key"),
    )
    op.create_index(
        "ix_insurance_products_insurance_type", "insurance_products", ["insurance_type"]
    )
    op.create_table(
        "consultation_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("reference", sa.String(20), nullable=False, unique=True),
        sa.Column("company", sa.Text(), nullable=False),
        sa.Column("contact_name", sa.Text(), nullable=False),
        sa.Column("phone", sa.String(50), nullable=False),
        sa.Column("products", sa.Text()),
        sa.Column("message", sa.Text()),
        sa.Column("conversation_id", sa.String(200)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_consultation_requests_status", "consultation_requests", ["status"])


def downgrade() -> None:
    op.drop_table("consultation_requests")
    op.drop_table("insurance_products")
