"""The AsyncAPI document: valid against the official 3.0 schema, complete, with valid examples;
and the payload schemas only change compatibly under a type (snapshots)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from sourcing.common.asyncapi import asyncapi_document
from sourcing.common.events import MESSAGE_TYPES, Envelope
from sourcing.common.topics import APP_ID_PREFIX, LANES
from sourcing.common.topics_init import topic_configs
from tests.message_schemas import (
    REGENERATE,
    SNAPSHOTS,
    incompatibilities,
    payload_schema,
    read_snapshot,
)

OFFICIAL_SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "asyncapi-3.0.0.json"
PREFIX = "prod."


@pytest.fixture(scope="module")
def official() -> Draft7Validator:
    schema = json.loads(OFFICIAL_SCHEMA.read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi_document(PREFIX, 3)


def test_the_document_is_valid_asyncapi_3(
    official: Draft7Validator, document: dict[str, Any]
) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in official.iter_errors(document)]
    assert errors == []


def test_the_official_schema_catches_a_broken_document(
    official: Draft7Validator, document: dict[str, Any]
) -> None:
    broken = copy.deepcopy(document)
    broken["channels"]["outreach"]["bindings"]["kafka"]["partitions"] = 0
    broken["operations"]["outreach.send"]["action"] = "publish"  # AsyncAPI 2 wording
    assert len(list(official.iter_errors(broken))) == 2


def test_every_lane_is_a_channel_with_its_topic_partitions_and_configs(
    document: dict[str, Any],
) -> None:
    assert list(document["channels"]) == [lane.name for lane in LANES]
    for lane in LANES:
        channel = document["channels"][lane.name]
        kafka = channel["bindings"]["kafka"]
        assert channel["address"] == kafka["topic"] == f"{PREFIX}{lane.name}"
        assert (kafka["partitions"], kafka["replicas"]) == (lane.partitions, 3)
        configs = {name: int(value) for name, value in topic_configs(lane, 3).items()}
        assert kafka["topicConfiguration"] == configs
        assert configs["min.insync.replicas"] == 2


def test_every_message_type_is_on_its_lane_with_its_key(document: dict[str, Any]) -> None:
    messages = document["components"]["messages"]
    assert set(messages) == set(MESSAGE_TYPES)
    on_channels = {
        (t, name) for name, channel in document["channels"].items() for t in channel["messages"]
    }
    assert on_channels == {(t, model.lane) for t, model in MESSAGE_TYPES.items()}
    for message_type, model in MESSAGE_TYPES.items():
        message = messages[message_type]
        assert message["name"] == message_type and message_type.split(".")[-1].startswith("v")
        assert f"`{model.key_attribute}`" in message["bindings"]["kafka"]["key"]["description"]
        schemas = document["components"]["schemas"]
        expected = model.model_json_schema(
            by_alias=True, ref_template="#/components/schemas/{model}"
        )
        for name, definition in expected.pop("$defs", {}).items():
            assert schemas[name] == definition
        assert schemas[model.__name__] == expected


def test_every_lane_has_a_send_and_a_receive_operation_naming_its_services(
    document: dict[str, Any],
) -> None:
    operations = document["operations"]
    assert len(operations) == 2 * len(LANES)
    for lane in LANES:
        send, receive = operations[f"{lane.name}.send"], operations[f"{lane.name}.receive"]
        assert (send["action"], receive["action"]) == ("send", "receive")
        assert [tag["name"] for tag in send["tags"]] == list(lane.producers)
        assert [tag["name"] for tag in receive["tags"]] == list(lane.consumers)
        assert (
            send["messages"]
            == receive["messages"]
            == [
                {"$ref": f"#/channels/{lane.name}/messages/{t}"}
                for t in document["channels"][lane.name]["messages"]
            ]
        )
        groups = receive["bindings"]["kafka"]["groupId"]["enum"]
        assert groups == [f"{PREFIX}{APP_ID_PREFIX}{service}" for service in lane.consumers]


def _message_validator(document: dict[str, Any], message_type: str, part: str) -> Draft7Validator:
    """A validator of one message's ``payload`` or ``headers``, its refs resolved in the
    document's components."""
    schema = {**document["components"]["messages"][message_type][part]}
    return Draft7Validator({**schema, "components": document["components"]})


@pytest.mark.parametrize("message_type", sorted(MESSAGE_TYPES))
def test_each_example_is_valid_against_its_message_and_its_model(
    document: dict[str, Any], message_type: str
) -> None:
    [example] = document["components"]["messages"][message_type]["examples"]
    for part in ("payload", "headers"):
        errors = _message_validator(document, message_type, part).iter_errors(example[part])
        assert [error.message for error in errors] == [], part
    envelope = Envelope.model_validate(example["payload"])
    assert envelope.type == message_type
    assert envelope.payload_model() == MESSAGE_TYPES[message_type].model_validate(
        example["payload"]["payload"]
    )


def test_a_payload_of_the_wrong_shape_fails_its_message_schema(document: dict[str, Any]) -> None:
    validator = _message_validator(document, "call-task.requested.v1", "payload")
    [example] = document["components"]["messages"]["call-task.requested.v1"]["examples"]
    wrong = copy.deepcopy(example["payload"])
    del wrong["payload"]["expertId"]
    wrong["payload"]["trigger"] = "a whim"
    assert len(list(validator.iter_errors(wrong))) == 2
    assert not validator.is_valid({**example["payload"], "type": "ranking.requested.v1"})


@pytest.mark.parametrize("message_type", sorted(MESSAGE_TYPES))
def test_payload_schema_changes_compatibly_or_gets_a_new_version(message_type: str) -> None:
    snapshot = read_snapshot(message_type)
    assert snapshot is not None, (
        f"{message_type} has no payload-schema snapshot: run `{REGENERATE}` and commit "
        f"tests/fixtures/message_schemas/{message_type}.json"
    )
    problems = incompatibilities(snapshot, payload_schema(message_type))
    base, version = message_type.rsplit(".v", 1)
    assert not problems, (
        f"{message_type}: the payload schema changed incompatibly ({'; '.join(problems)}). "
        f"Consumers and messages in flight still speak the old one: register the new shape as "
        f"{base}.v{int(version) + 1} (keep the old type until it is drained), or, if the change "
        f"is intended and safe, regenerate the snapshot with `{REGENERATE}` and commit it."
    )


def test_every_snapshot_is_of_a_registered_type() -> None:
    orphans = sorted(
        path.stem for path in SNAPSHOTS.glob("*.json") if path.stem not in MESSAGE_TYPES
    )
    assert orphans == [], f"snapshots of unregistered types (delete them): {orphans}"


BASE: dict[str, Any] = {
    "type": "object",
    "title": "Sample",
    "properties": {
        "expertId": {"type": "string", "format": "uuid", "title": "Expertid"},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
    },
    "required": ["expertId"],
}


def _changed(**properties: Any) -> dict[str, Any]:
    schema = copy.deepcopy(BASE)
    schema["properties"].update(properties)
    return schema


def test_identical_new_optional_fields_and_new_docs_are_compatible() -> None:
    assert incompatibilities(BASE, copy.deepcopy(BASE)) == []
    assert incompatibilities(BASE, _changed(extra={"type": "integer", "default": 0})) == []
    documented = _changed(expertId={"type": "string", "format": "uuid", "description": "who"})
    assert incompatibilities(BASE, documented) == []
    relaxed = {**copy.deepcopy(BASE), "required": []}
    assert incompatibilities(BASE, relaxed) == []


def test_a_removed_field_a_new_required_field_or_a_changed_type_is_incompatible() -> None:
    removed = copy.deepcopy(BASE)
    del removed["properties"]["note"]
    assert incompatibilities(BASE, removed) == ["field 'note' removed"]
    required = {**_changed(score={"type": "integer"}), "required": ["expertId", "score"]}
    assert incompatibilities(BASE, required) == ["field 'score' is now required"]
    retyped = _changed(expertId={"type": "integer"})
    assert incompatibilities(BASE, retyped) == [
        'field \'expertId\' changed: {"type": "string", "format": "uuid"} -> {"type": "integer"}'
    ]


def test_the_check_bites_on_a_checked_in_snapshot() -> None:
    snapshot = read_snapshot("call-task.requested.v1")
    assert snapshot is not None
    current = payload_schema("call-task.requested.v1")
    del current["properties"]["trigger"]
    current["required"].remove("trigger")
    assert incompatibilities(snapshot, current) == ["field 'trigger' removed"]
