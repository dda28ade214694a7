"""Worker processes started by integration tests (``python -m tests.integration.workers.X``)."""
