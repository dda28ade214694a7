"""The operators' read side in OpenAPI: every list pages the same way and shows an example."""

from __future__ import annotations

from typing import Any

import pytest

from sourcing.api.app import create_app
from tests.fixtures.settings import load_settings

# (path, the page's response component)
READ_SIDE = [
    ("/api/v1/projects", "ProjectPage"),
    ("/api/v1/callers", "CallerPage"),
    ("/api/v1/call-tasks/operator/tasks", "OperatorTaskList"),
    ("/api/v1/system-events", "SystemEventPage"),
    ("/api/v1/outreach/threads", "OutreachThreadPage"),
    ("/api/v1/call-tasks/{task_id}/call-logs", "CallLogPage"),
    ("/api/v1/callers/{caller_id}/call-logs", "CallLogPage"),
    ("/api/v1/projects/{project_id}/experts", "ProjectExpertPage"),
]


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return create_app(load_settings(APP_ENV="test")).openapi()


@pytest.mark.parametrize(("path", "component"), READ_SIDE)
def test_each_list_pages_by_cursor_and_shows_an_example(
    openapi: dict[str, Any], path: str, component: str
) -> None:
    operation = openapi["paths"][path]["get"]
    parameters = {parameter["name"] for parameter in operation["parameters"]}
    assert {"limit", "cursor"} <= parameters
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": f"#/components/schemas/{component}"}
    page = openapi["components"]["schemas"][component]
    assert {"items", "nextCursor"} <= set(page["properties"])
    example = page["examples"][0]
    assert set(example) == {"items", "nextCursor"} and example["items"]
    assert example["nextCursor"], "the example shows a page with a next one"
