"""The event contract: the AsyncAPI document of every Kafka message, public like OpenAPI."""

from __future__ import annotations

import json
from functools import cache

from fastapi import APIRouter, Request, Response

from sourcing.common.asyncapi import asyncapi_document

router = APIRouter(tags=["system"])


@cache
def _rendered(topic_prefix: str, replication_factor: int) -> bytes:
    return json.dumps(asyncapi_document(topic_prefix, replication_factor)).encode()


@router.get("/asyncapi.json", include_in_schema=False)
@router.get("/api/v1/asyncapi.json", include_in_schema=False)
async def asyncapi(request: Request) -> Response:
    """Generated on the first request for this deployment's topic names, then cached. Served
    at the root (where AsyncAPI tools look first) and beside the OpenAPI document."""
    settings = request.app.state.settings
    body = _rendered(settings.KAFKA_TOPIC_PREFIX, settings.KAFKA_REPLICATION_FACTOR)
    return Response(body, media_type="application/json")
