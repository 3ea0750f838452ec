"""The database layer shared by the gateway (`bot`) and the action server (`actions`).

Only SQLAlchemy and the standard library are imported here, so the action server can use it
without loading the web stack.
"""
