"""Local stand-in for the third-party providers (development and tests only)."""
