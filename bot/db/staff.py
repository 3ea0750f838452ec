"""Staff accounts (agents and admins) and the canned replies admins keep for them."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Integer, String, Text

from bot.db.conversations import utcnow
from bot.db.models import Base

AGENT, ADMIN = "agent", "admin"
ROLES = (AGENT, ADMIN)


class StaffUser(Base):
    __tablename__ = "staff_users"

    id = Column(Integer, primary_key=True)
    username = Column(String(64), nullable=False, unique=True)
    display_name = Column(String(64), nullable=False)  # shown to citizens: "人工客服 王小明"
    password_hash = Column(String(255), nullable=False)  # argon2id, never the password
    role = Column(String(10), nullable=False, default=AGENT)
    active = Column(Boolean, nullable=False, default=True)
    failed_logins = Column(Integer, nullable=False, default=0)
    locked_until = Column(DateTime)  # UTC; set after repeated wrong passwords
    created_at = Column(DateTime, nullable=False, default=utcnow)


class CannedReply(Base):
    __tablename__ = "canned_replies"

    id = Column(Integer, primary_key=True)
    title = Column(String(100), nullable=False)
    text = Column(Text, nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
