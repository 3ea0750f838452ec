"""Talking to Rasa: the replica pool (HTTP client), the in-process server patch, training."""
