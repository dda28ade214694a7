"""The event contract as an AsyncAPI 3.0 document, generated from the code.

Channels are the lanes (:data:`sourcing.common.topics.LANES`: topic, partitions, the configs
topic-init sets); messages are the registered contracts (:func:`register_message`: type, lane,
key, payload model) inside the envelope (:class:`sourcing.common.events.Envelope`); operations
are one ``send`` and one ``receive`` per lane, tagged with the services the lane declares as its
producers and consumers. Nothing here is written by hand, so the document cannot drift from the
code; the gateway serves it at ``/api/v1/asyncapi.json``.
"""

from __future__ import annotations

import inspect
import uuid
from functools import cache
from typing import Any

from pydantic.json_schema import models_json_schema

import sourcing.common.messages  # noqa: F401  (registers every message type)
from sourcing.common.events import MESSAGE_TYPES, Envelope, MessagePayload, message_types_on
from sourcing.common.kafka.producer import (
    HEADER_CORRELATION_ID,
    HEADER_MESSAGE_ID,
    HEADER_MESSAGE_TYPE,
)
from sourcing.common.topics import APP_ID_PREFIX, LANES, Lane
from sourcing.common.topics_init import topic_configs

ASYNCAPI_VERSION = "3.0.0"
CONTRACT_VERSION = "1.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
SCHEMA_REF = "#/components/schemas/{model}"

DESCRIPTION = (
    "Every Kafka message of the Expert Sourcing Platform: one channel per lane (topic), one "
    "message per contract. Each message is a JSON envelope `{id, type, correlation_id, "
    "occurred_at, attempt, payload}` whose `payload` follows the message type's schema "
    "(camelCase keys); consumers ignore unknown keys. A type ends in its version (`.v1`): a "
    "payload may gain optional fields under the same type; removing a field, adding a required "
    "one or changing a field's type needs a new version (`.v2`)."
)

# The sample values examples are built from, so every generated document is the same.
EXAMPLE_UUID = "3f2c7a58-5d2e-4b8e-9c1a-6b0d2e4f8a10"
EXAMPLE_TIME = "2025-01-01T12:00:00Z"
EXAMPLE_CORRELATION_ID = "example-correlation-id"


@cache
def asyncapi_document(topic_prefix: str = "", replication_factor: int = 1) -> dict[str, Any]:
    """The AsyncAPI document for topics named ``topic_prefix + lane`` with that replication.

    Cached per arguments: treat the result as read-only.
    """
    types = sorted(MESSAGE_TYPES)
    models = {MESSAGE_TYPES[t] for t in types}
    _, definitions = models_json_schema(
        [(model, "validation") for model in sorted(models, key=lambda m: m.__name__)]
        + [(Envelope, "validation")],
        by_alias=True,
        ref_template=SCHEMA_REF,
    )
    schemas: dict[str, Any] = definitions["$defs"]
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Expert Sourcing Platform events",
            "version": CONTRACT_VERSION,
            "description": DESCRIPTION,
        },
        "defaultContentType": "application/json",
        "channels": {lane.name: _channel(lane, topic_prefix, replication_factor) for lane in LANES},
        "operations": {
            name: operation
            for lane in LANES
            for name, operation in _operations(lane, topic_prefix).items()
        },
        "components": {
            "schemas": schemas,
            "messages": {t: _message(t, MESSAGE_TYPES[t], schemas) for t in types},
        },
    }


def _channel(lane: Lane, topic_prefix: str, replication_factor: int) -> dict[str, Any]:
    topic = f"{topic_prefix}{lane.name}"
    configs = {name: int(value) for name, value in topic_configs(lane, replication_factor).items()}
    return {
        "address": topic,
        "title": lane.name,
        "description": f"{lane.purpose}. Key: {lane.key}; kept {lane.retention_days} days.",
        "messages": {
            t: {"$ref": f"#/components/messages/{t}"} for t in message_types_on(lane.name)
        },
        "bindings": {
            "kafka": {
                "topic": topic,
                "partitions": lane.partitions,
                "replicas": replication_factor,
                "topicConfiguration": configs,
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _operations(lane: Lane, topic_prefix: str) -> dict[str, Any]:
    channel = {"$ref": f"#/channels/{lane.name}"}
    messages = [
        {"$ref": f"#/channels/{lane.name}/messages/{t}"} for t in message_types_on(lane.name)
    ]
    groups = [f"{topic_prefix}{APP_ID_PREFIX}{service}" for service in lane.consumers]
    return {
        f"{lane.name}.send": {
            "action": "send",
            "channel": channel,
            "title": f"Publish to {lane.name}",
            "summary": f"Published by {', '.join(lane.producers)} (through the outbox).",
            "tags": [{"name": service} for service in lane.producers],
            "messages": messages,
        },
        f"{lane.name}.receive": {
            "action": "receive",
            "channel": channel,
            "title": f"Consume {lane.name}",
            "summary": f"Consumed by {', '.join(lane.consumers)}.",
            "tags": [{"name": service} for service in lane.consumers],
            "messages": messages,
            "bindings": {
                "kafka": {
                    "groupId": {"type": "string", "enum": groups},
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
        },
    }


def _message(
    message_type: str, model: type[MessagePayload], schemas: dict[str, Any]
) -> dict[str, Any]:
    doc = inspect.cleandoc(model.__doc__ or "")
    payload_ref = SCHEMA_REF.format(model=model.__name__)
    headers = {
        HEADER_MESSAGE_ID: EXAMPLE_UUID,
        HEADER_MESSAGE_TYPE: message_type,
        HEADER_CORRELATION_ID: EXAMPLE_CORRELATION_ID,
    }
    return {
        "name": message_type,
        "title": model.__name__,
        "summary": doc.split("\n\n", 1)[0].replace("\n", " "),
        "description": doc,
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "properties": {
                HEADER_MESSAGE_ID: {"type": "string", "description": "The envelope's id."},
                HEADER_MESSAGE_TYPE: {"const": message_type},
                HEADER_CORRELATION_ID: {
                    "type": "string",
                    "description": "The envelope's correlation id.",
                },
            },
            "required": list(headers),
        },
        "payload": {
            "allOf": [
                {"$ref": SCHEMA_REF.format(model=Envelope.__name__)},
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": message_type},
                        "payload": {"$ref": payload_ref},
                    },
                    "required": ["type", "payload"],
                },
            ]
        },
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "description": f"`{model.key_attribute}` as text: one key's messages "
                    "are handled in order.",
                },
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
        "examples": [
            {
                "name": model.__name__,
                "headers": headers,
                "payload": {
                    "id": EXAMPLE_UUID,
                    "type": message_type,
                    "correlation_id": EXAMPLE_CORRELATION_ID,
                    "occurred_at": EXAMPLE_TIME,
                    "attempt": 1,
                    "payload": _example(schemas[model.__name__], schemas),
                },
            }
        ],
    }


def _example(schema: dict[str, Any], schemas: dict[str, Any], name: str = "") -> Any:
    """A value valid against ``schema`` (``$ref`` into ``schemas``), built from its types:
    a declared example first, else every property with a sample of its type."""
    if "$ref" in schema:
        return _example(schemas[schema["$ref"].rsplit("/", 1)[1]], schemas, name)
    if schema.get("examples"):
        return schema["examples"][0]
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for combined in ("anyOf", "oneOf"):
        if combined in schema:
            options = [s for s in schema[combined] if s.get("type") != "null"]
            return _example(options[0], schemas, name)
    kind = schema.get("type")
    if kind == "object":
        properties: dict[str, Any] = schema.get("properties", {})
        return {key: _example(value, schemas, key) for key, value in properties.items()}
    if kind == "array":
        items = schema.get("items")
        return [_example(items, schemas, name)] if items else []
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return True
    if kind == "string":
        return _string_example(schema, name)
    return None


def _string_example(schema: dict[str, Any], name: str) -> str:
    match schema.get("format"):
        case "uuid":
            return str(uuid.uuid5(uuid.UUID(EXAMPLE_UUID), name))
        case "date-time":
            return EXAMPLE_TIME
    text = name or "example"
    text = text.ljust(int(schema.get("minLength", 0)), "x")
    return text[: int(schema.get("maxLength", len(text)))]
