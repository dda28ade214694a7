"""Job-title discovery endpoints."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/job-title-discovery", tags=["job-title discovery"])
