"""merge the knowledge-base and web-chat branches

Revision ID: 0003_merge
Revises: 0002_kb, 0002_webchat
Create Date: 2026-11-24
"""

revision = "0003_merge"
down_revision = ("0002_kb", "0002_webchat")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
