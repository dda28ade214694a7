"""Call tasks endpoints."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/call-tasks", tags=["call tasks"])
