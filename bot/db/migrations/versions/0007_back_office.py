"""back office: leads, ratings follow-up, holidays, look-ups (issue 16)

Revision ID: 0007_back_office
Revises: 0006_staff_sessions
Create Date: 2026-12-01

A placeholder in the chain so that work on separate issues can add its tables side by side;
an empty revision changes nothing.
"""

revision = "0007_back_office"
down_revision = "0006_staff_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
