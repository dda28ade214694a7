"""Dead letters endpoints."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/dead-letters", tags=["dead letters"])
