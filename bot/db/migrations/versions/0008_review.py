"""review inbox, answer feedback, dashboard rollups (issue 17)

Revision ID: 0008_review
Revises: 0007_back_office
Create Date: 2026-12-01

A placeholder in the chain so that work on separate issues can add its tables side by side;
an empty revision changes nothing.
"""

revision = "0008_review"
down_revision = "0007_back_office"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
