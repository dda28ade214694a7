"""Pure domain rules shared by the API and the agents (no I/O)."""
