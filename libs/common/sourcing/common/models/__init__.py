"""Every table of the platform (manual §7 plus what the design needs), one declarative ``Base``.

Attribute names are snake_case (the API maps them to camelCase); a JSON ``metadata`` column is
the attribute ``metadata_`` because ``metadata`` is reserved by SQLAlchemy. Relationships are
``lazy="raise"``: load what you need with ``selectinload``/``joinedload``, explicitly.
Status columns are CHECK-constrained to the state lists of :mod:`sourcing.common.statemachines`.
"""

from sourcing.common.models.base import NAMING_CONVENTION, Base
from sourcing.common.models.calls import (
    Caller,
    CallerPerformanceMetric,
    CallerStatusHistory,
    CallLog,
    CallLogRaw,
    CallTask,
    SignupChase,
)
from sourcing.common.models.experts import (
    ContactSuppression,
    EnrichmentAttempt,
    Expert,
    ExpertContact,
    ExpertSuppression,
    Lead,
    ProviderCircuit,
    RankingSnapshot,
)
from sourcing.common.models.outreach import (
    CooldownLog,
    GoogleSheetExport,
    GoogleSheetRowMap,
    OutreachMessage,
    OutreachThread,
    ScreeningReminder,
    ScreeningResponse,
)
from sourcing.common.models.projects import (
    Company,
    JobTitle,
    JobTitleDiscoveryRun,
    Project,
    SalesNavSearch,
    ScreeningQuestion,
)
from sourcing.common.models.system import (
    DeadLetterJob,
    DeadLetterReplay,
    DocumentationJob,
    IdempotencyKey,
    OutboxMessage,
    ProcessedEvent,
    ProcessedWebhookEvent,
    SchedulerCycle,
    SystemEvent,
)

metadata = Base.metadata

__all__ = [
    "NAMING_CONVENTION",
    "Base",
    "CallLog",
    "CallLogRaw",
    "CallTask",
    "Caller",
    "CallerPerformanceMetric",
    "CallerStatusHistory",
    "Company",
    "ContactSuppression",
    "CooldownLog",
    "DeadLetterJob",
    "DeadLetterReplay",
    "DocumentationJob",
    "EnrichmentAttempt",
    "Expert",
    "ExpertContact",
    "ExpertSuppression",
    "GoogleSheetExport",
    "GoogleSheetRowMap",
    "IdempotencyKey",
    "JobTitle",
    "JobTitleDiscoveryRun",
    "Lead",
    "OutboxMessage",
    "OutreachMessage",
    "OutreachThread",
    "ProcessedEvent",
    "ProcessedWebhookEvent",
    "Project",
    "ProviderCircuit",
    "RankingSnapshot",
    "SalesNavSearch",
    "SchedulerCycle",
    "ScreeningQuestion",
    "ScreeningReminder",
    "ScreeningResponse",
    "SignupChase",
    "SystemEvent",
    "metadata",
]
