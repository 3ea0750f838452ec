"""security round two: per-address limits and ticket de-duplication (issue 14)

Revision ID: 0009_security
Revises: 0008_review
Create Date: 2026-12-01

A placeholder in the chain so that work on separate issues can add its tables side by side;
an empty revision changes nothing.
"""

revision = "0009_security"
down_revision = "0008_review"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
