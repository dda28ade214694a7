"""The operator CLI: the REST API from a terminal. It speaks HTTP only and imports nothing of
the platform, so it runs anywhere the API is reachable."""
