"""``sourcing``: the operator's commands over the REST API.

Tables by default, ``--json`` for scripts; list commands follow ``nextCursor`` with ``--all``.
An error answer prints its envelope's code and message on stderr and exits 1; an unreachable
API exits 3; a bad config file exits 2.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated, Any

import typer

from sourcing.cli.client import Api, ApiError, Unreachable
from sourcing.cli.config import Config, ConfigError, load_config, save_config
from sourcing.cli.output import emit_json, err, page, record, table

EXIT_API_ERROR = 1
EXIT_CONFIG_ERROR = 2
EXIT_UNREACHABLE = 3

app = typer.Typer(
    name="sourcing",
    help="Operate the Expert Sourcing Platform through its REST API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
token_app = typer.Typer(help="Access tokens.", no_args_is_help=True)
projects_app = typer.Typer(help="Sourcing projects.", no_args_is_help=True)
callers_app = typer.Typer(help="Phone callers.", no_args_is_help=True)
call_tasks_app = typer.Typer(help="Call tasks (the operator's view).", no_args_is_help=True)
dead_letters_app = typer.Typer(help="Messages that failed every retry.", no_args_is_help=True)
suppressions_app = typer.Typer(help="Suppressed contacts.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(projects_app, name="projects")
app.add_typer(callers_app, name="callers")
app.add_typer(call_tasks_app, name="call-tasks")
app.add_typer(dead_letters_app, name="dead-letters")
app.add_typer(suppressions_app, name="suppressions")

Json = Annotated[bool, typer.Option("--json", help="Print the API's raw JSON on stdout.")]
All = Annotated[bool, typer.Option("--all", help="Follow nextCursor through every page.")]
Limit = Annotated[int, typer.Option(min=1, max=100, help="Items per page.")]
Cursor = Annotated[str | None, typer.Option(help="The nextCursor of a previous page.")]
Reason = Annotated[str, typer.Option(help="Why (recorded in the audit trail).")]


class Role(StrEnum):
    admin = "admin"
    ops = "ops"
    caller = "caller"


class SuppressionKind(StrEnum):
    EMAIL = "EMAIL"
    PHONE = "PHONE"
    LINKEDIN_URL = "LINKEDIN_URL"
    DOMAIN = "DOMAIN"


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _report(error: ApiError) -> typer.Exit:
    lines = [f"error: {error.code} (HTTP {error.status}): {error.message}"]
    if error.details:
        lines.append(f"details: {json.dumps(error.details, ensure_ascii=False)}")
    return _fail("\n".join(lines), EXIT_API_ERROR)


def _config() -> Config:
    try:
        return load_config()
    except ConfigError as exc:
        raise _fail(f"error: {exc}", EXIT_CONFIG_ERROR) from None


@contextmanager
def connected(config: Config | None = None) -> Iterator[Api]:
    """The API client; an error answer or no answer ends the command with its exit code."""
    try:
        with Api(config or _config()) as api:
            yield api
    except ApiError as exc:
        raise _report(exc) from None
    except Unreachable as exc:
        raise _fail(f"error: {exc}", EXIT_UNREACHABLE) from None


def _show(data: Any, *, title: str, as_json: bool) -> None:
    if as_json:
        emit_json(data)
    else:
        record(data, title=title)


# --- tokens ---------------------------------------------------------------------------------


def _mint(api: Api, user: str, role: Role, bootstrap_secret: str | None) -> str:
    """POST /api/v1/auth/token: open in development; elsewhere the stored admin token (sent
    as usual) or the deployment's bootstrap secret may mint."""
    headers = {"x-auth-bootstrap-secret": bootstrap_secret} if bootstrap_secret else None
    answer = api.request(
        "POST", "/api/v1/auth/token", body={"userId": user, "role": role.value}, headers=headers
    )
    return str(answer["accessToken"])


User = Annotated[str, typer.Option("--user", help="The token's user id.")]
RoleOption = Annotated[Role, typer.Option("--role", help="The token's role.")]
BootstrapSecret = Annotated[
    str | None,
    typer.Option(
        envvar="SOURCING_BOOTSTRAP_SECRET",
        help="AUTH_BOOTSTRAP_SECRET of a deployment (minting outside development).",
    ),
]


@app.command()
def login(
    user: User,
    role: RoleOption = Role.admin,
    api_url: Annotated[
        str | None, typer.Option("--api-url", help="Store this API URL with the token.")
    ] = None,
    bootstrap_secret: BootstrapSecret = None,
) -> None:
    """Mint a token and store it (with the API URL) in the config file."""
    current = _config()
    config = Config(api_url=(api_url or current.api_url).rstrip("/"), token=current.token)
    with connected(config) as api:
        token = _mint(api, user, role, bootstrap_secret)
    path = save_config(Config(api_url=config.api_url, token=token))
    err.print(f"logged in to {config.api_url} as {user} ({role.value}); token saved in {path}")


@token_app.command("mint")
def token_mint(
    user: User,
    role: RoleOption = Role.admin,
    save: Annotated[bool, typer.Option("--save", help="Store it in the config file.")] = False,
    bootstrap_secret: BootstrapSecret = None,
) -> None:
    """Mint a token and print it (for another user or role, e.g. a caller's)."""
    config = _config()
    with connected(config) as api:
        token = _mint(api, user, role, bootstrap_secret)
    if save:
        path = save_config(Config(api_url=config.api_url, token=token))
        err.print(f"token saved in {path}")
    print(token)


@app.command()
def whoami(as_json: Json = False) -> None:
    """The user and role of the current token."""
    with connected() as api:
        _show(api.get("/api/v1/auth/me"), title="token", as_json=as_json)


# --- projects -------------------------------------------------------------------------------

PROJECT_COLUMNS = ("id", "name", "status", "priority", "targetThreshold", "geographyIsoCodes")


class ProjectStatus(StrEnum):
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    ARCHIVED = "ARCHIVED"


@projects_app.command("list")
def projects_list(
    status: Annotated[ProjectStatus | None, typer.Option(help="Only this status.")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    every: All = False,
    as_json: Json = False,
) -> None:
    """List projects."""
    params = {"status": status, "limit": limit, "cursor": cursor}
    with connected() as api:
        data = api.pages("/api/v1/projects", params, every=every)
    page(data, PROJECT_COLUMNS, title="projects", as_json=as_json)


@projects_app.command("show")
def projects_show(project_id: str, as_json: Json = False) -> None:
    """One project."""
    with connected() as api:
        _show(api.get(f"/api/v1/projects/{project_id}"), title="project", as_json=as_json)


@projects_app.command("create")
def projects_create(
    name: Annotated[str, typer.Option(help="The project's name.")],
    target: Annotated[int, typer.Option(help="Converted experts the project needs.")],
    geography: Annotated[
        list[str], typer.Option("--geo", help="ISO country code (repeat for several).")
    ],
    priority: Annotated[int, typer.Option(help="Call-task priority.")] = 0,
    description: Annotated[str | None, typer.Option()] = None,
    as_json: Json = False,
) -> None:
    """Create a project (ACTIVE)."""
    body: dict[str, Any] = {
        "name": name,
        "targetThreshold": target,
        "geographyIsoCodes": geography,
        "priority": priority,
    }
    if description is not None:
        body["description"] = description
    with connected() as api:
        created = api.request("POST", "/api/v1/projects", body=body)
    _show(created, title="project created", as_json=as_json)


def _move_project(project_id: str, status: ProjectStatus, as_json: bool) -> None:
    with connected() as api:
        moved = api.request("PATCH", f"/api/v1/projects/{project_id}", body={"status": status})
    _show(moved, title=f"project {status.value}", as_json=as_json)


@projects_app.command("pause")
def projects_pause(project_id: str, as_json: Json = False) -> None:
    """ACTIVE → PAUSED: new leads are held, no outreach, no call tasks handed out."""
    _move_project(project_id, ProjectStatus.PAUSED, as_json)


@projects_app.command("resume")
def projects_resume(project_id: str, as_json: Json = False) -> None:
    """PAUSED → ACTIVE: held leads are released."""
    _move_project(project_id, ProjectStatus.ACTIVE, as_json)


@projects_app.command("complete")
def projects_complete(project_id: str, as_json: Json = False) -> None:
    """ACTIVE → COMPLETED: leads refused, open call tasks and queued messages cancelled."""
    _move_project(project_id, ProjectStatus.COMPLETED, as_json)


@projects_app.command("archive")
def projects_archive(project_id: str, as_json: Json = False) -> None:
    """ACTIVE or PAUSED → ARCHIVED: as COMPLETED, for good."""
    _move_project(project_id, ProjectStatus.ARCHIVED, as_json)


# --- callers --------------------------------------------------------------------------------

CALLER_COLUMNS = ("id", "name", "email", "allocationStatus", "isActive", "regionIsoCodes")


class CallerAction(StrEnum):
    pause = "pause"
    resume = "resume"
    clear_fraud = "clear_fraud"
    suspend = "suspend"
    reactivate = "reactivate"
    deactivate = "deactivate"


@callers_app.command("list")
def callers_list(
    active: Annotated[
        bool | None, typer.Option("--active/--inactive", help="Only active (or inactive).")
    ] = None,
    allocation_status: Annotated[
        str | None, typer.Option("--allocation-status", help="e.g. AT_RISK.")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    every: All = False,
    as_json: Json = False,
) -> None:
    """List callers."""
    params = {
        "isActive": active,
        "allocationStatus": allocation_status,
        "limit": limit,
        "cursor": cursor,
    }
    with connected() as api:
        data = api.pages("/api/v1/callers", params, every=every)
    page(data, CALLER_COLUMNS, title="callers", as_json=as_json)


@callers_app.command("show")
def callers_show(caller_id: str, as_json: Json = False) -> None:
    """One caller."""
    with connected() as api:
        _show(api.get(f"/api/v1/callers/{caller_id}"), title="caller", as_json=as_json)


@callers_app.command("status")
def callers_status(
    caller_id: str,
    action: Annotated[CallerAction, typer.Option(help="The move to make.")],
    reason: Reason,
    as_json: Json = False,
) -> None:
    """Change a caller's allocation status (pause, resume: ops; the rest: admin)."""
    with connected() as api:
        answer = api.request(
            "POST",
            f"/api/v1/callers/{caller_id}/status",
            body={"action": action.value, "reason": reason},
        )
    if as_json:
        emit_json(answer)
        return
    caller = answer["caller"]
    record(
        {
            "caller": caller["id"],
            "action": answer["action"],
            "from": answer["fromStatus"],
            "to": caller["allocationStatus"],
            "isActive": caller["isActive"],
            "releasedTaskIds": answer["releasedTaskIds"],
        },
        title="caller status changed",
    )


# --- call tasks -----------------------------------------------------------------------------

TASK_COLUMNS = ("id", "status", "kind", "projectName", "expert.name", "callerId", "priority")


@call_tasks_app.command("list")
def call_tasks_list(
    status: Annotated[str | None, typer.Option(help="e.g. PENDING, ASSIGNED, DIALING.")] = None,
    project: Annotated[str | None, typer.Option(help="Only this project's tasks.")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    every: All = False,
    as_json: Json = False,
) -> None:
    """List call tasks, oldest first."""
    params = {"status": status, "projectId": project, "limit": limit, "cursor": cursor}
    with connected() as api:
        data = api.pages("/api/v1/call-tasks/operator/tasks", params, every=every)
    page(data, TASK_COLUMNS, title="call tasks", as_json=as_json)


@call_tasks_app.command("requeue")
def call_tasks_requeue(task_id: str, reason: Reason, as_json: Json = False) -> None:
    """Put a stalled task (ASSIGNED, DIALING, EXPIRED) back in the pool."""
    with connected() as api:
        task = api.request(
            "POST",
            f"/api/v1/call-tasks/operator/tasks/{task_id}/requeue",
            body={"reason": reason},
        )
    _show(task, title="call task requeued", as_json=as_json)


# --- dead letters ---------------------------------------------------------------------------

DEAD_LETTER_COLUMNS = ("id", "failedAt", "originTopic", "messageType", "consumer", "error")


@dead_letters_app.command("list")
def dead_letters_list(
    topic: Annotated[str | None, typer.Option(help="Origin lane or topic.")] = None,
    include_archived: Annotated[bool, typer.Option("--include-archived")] = False,
    limit: Limit = 50,
    cursor: Cursor = None,
    every: All = False,
    as_json: Json = False,
) -> None:
    """List dead letters, newest first."""
    params = {
        "topic": topic,
        "includeArchived": include_archived,
        "limit": limit,
        "cursor": cursor,
    }
    with connected() as api:
        data = api.pages("/api/v1/dead-letters", params, every=every)
    page(data, DEAD_LETTER_COLUMNS, title="dead letters", as_json=as_json)


@dead_letters_app.command("show")
def dead_letters_show(dead_letter_id: str, as_json: Json = False) -> None:
    """One dead letter with its original envelope and error."""
    with connected() as api:
        found = api.get(f"/api/v1/dead-letters/{dead_letter_id}")
    _show(found, title="dead letter", as_json=as_json)


@dead_letters_app.command("replay")
def dead_letters_replay(
    dead_letter_id: str,
    reason: Annotated[str | None, typer.Option(help="Why (recorded with the replay).")] = None,
    as_json: Json = False,
) -> None:
    """Republish a dead letter's envelope to its original lane (admin)."""
    with connected() as api:
        accepted = api.request(
            "POST",
            f"/api/v1/dead-letters/{dead_letter_id}/replay",
            body={"reason": reason} if reason else None,
        )
    _show(accepted, title="replay accepted", as_json=as_json)


# --- suppressions ---------------------------------------------------------------------------

SUPPRESSION_COLUMNS = ("id", "kind", "value", "reason", "note", "actor", "createdAt")


@suppressions_app.command("list")
def suppressions_list(
    kind: Annotated[SuppressionKind | None, typer.Option(help="Only this kind.")] = None,
    value: Annotated[str | None, typer.Option(help="Find a value (needs --kind).")] = None,
    reason: Annotated[str | None, typer.Option(help="e.g. MANUAL.")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    every: All = False,
    as_json: Json = False,
) -> None:
    """List suppressions, oldest first."""
    params = {"kind": kind, "value": value, "reason": reason, "limit": limit, "cursor": cursor}
    with connected() as api:
        data = api.pages("/api/v1/suppressions", params, every=every)
    page(data, SUPPRESSION_COLUMNS, title="suppressions", as_json=as_json)


@suppressions_app.command("add")
def suppressions_add(
    kind: Annotated[SuppressionKind, typer.Option(help="What the value is.")],
    value: Annotated[str, typer.Option(help="The email, phone, LinkedIn URL or domain.")],
    note: Annotated[str | None, typer.Option(help="Why, for the next operator.")] = None,
    as_json: Json = False,
) -> None:
    """Suppress a contact (idempotent: an existing suppression is shown as it is)."""
    body = {"kind": kind.value, "value": value, "note": note}
    with connected() as api:
        row = api.request("POST", "/api/v1/suppressions", body=body)
    _show(row, title="suppressed", as_json=as_json)


@suppressions_app.command("remove")
def suppressions_remove(suppression_id: str) -> None:
    """Lift a suppression (admin; audited)."""
    with connected() as api:
        api.request("DELETE", f"/api/v1/suppressions/{suppression_id}")
    err.print(f"suppression {suppression_id} lifted")


# --- costs and lag --------------------------------------------------------------------------

COSTS_ROUTE = re.compile(r"^/api/v1/projects/\{[^}]+\}/costs$")


def _serves_costs(api: Api) -> bool:
    """Whether the server's OpenAPI document has the costs route (a 404 of a server that has
    it means the project is unknown)."""
    document = api.get("/api/v1/openapi.json")
    return any(COSTS_ROUTE.match(path) for path in document.get("paths", {}))


COST_COLUMNS = ("provider", "attempts", "successes", "credits")


@app.command()
def costs(project_id: str, as_json: Json = False) -> None:
    """A project's enrichment costs: credits by provider, per verified contact, its budget."""
    with connected() as api:
        try:
            report = api.get(f"/api/v1/projects/{project_id}/costs")
        except ApiError as exc:
            if exc.status != 404 or _serves_costs(api):
                raise
            raise _fail(
                f"this server does not report costs yet ({api.base_url} has no "
                "GET /api/v1/projects/{projectId}/costs)",
                EXIT_API_ERROR,
            ) from None
    if as_json:
        emit_json(report)
        return
    table(report["providers"], COST_COLUMNS, title=f"costs of project {project_id}")
    totals = {key: value for key, value in report.items() if key != "providers"}
    record(totals, title="totals")


PROVIDER_COLUMNS = (
    "key",
    "configured",
    "creditsPerLookup",
    "rateLimitPerMinute",
    "breakerState",
    "attempts",
    "successRate",
)


@app.command()
def providers(as_json: Json = False) -> None:
    """The enrichment providers: configured, cost per lookup, rate limit, circuit breaker."""
    with connected() as api:
        report = api.get("/api/v1/providers")
    if as_json:
        emit_json(report)
        return
    table(report["items"], PROVIDER_COLUMNS, title="enrichment providers")


LAG_COLUMNS = ("group", "topic", "partition", "committedOffset", "endOffset", "lag")


@app.command()
def lag(
    group: Annotated[str | None, typer.Option(help="Only this consumer group.")] = None,
    as_json: Json = False,
) -> None:
    """Messages each consumer group has yet to process, per lane partition (admin)."""
    with connected() as api:
        report = api.get("/api/v1/system/consumer-lag")
    if group is not None:
        partitions = [row for row in report["partitions"] if row["group"] == group]
        report = {"partitions": partitions, "totalLag": sum(row["lag"] for row in partitions)}
    if as_json:
        emit_json(report)
        return
    table(report["partitions"], LAG_COLUMNS, title="consumer lag")
    err.print(f"total lag: {report['totalLag']}")
