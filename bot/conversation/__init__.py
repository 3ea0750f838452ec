"""Channel-independent conversations: storage, the answer pipeline and the human handoff."""
