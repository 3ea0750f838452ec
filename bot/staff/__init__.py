"""The staff console: accounts and login (accounts.py, auth.py), the server-rendered pages
(pages.py: login, tickets, admin transcripts and canned replies) and the live console."""
