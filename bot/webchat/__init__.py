"""The citizens' web chat: the page and its websocket."""
