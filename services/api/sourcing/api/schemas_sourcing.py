"""Request and response bodies of the sourcing area owned by ingestion: job-title discovery."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from sourcing.common.web import CountryCode, RequestModel, ResponseModel

CompanyName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class DiscoveryCompany(RequestModel):
    """A company to discover titles for: by name (created in the project when new), or an
    existing company of the project by id."""

    company_name: CompanyName | None = None
    company_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _named(self) -> DiscoveryCompany:
        if self.company_name is None and self.company_id is None:
            raise ValueError("a company needs a companyName or a companyId")
        return self


class JobTitleDiscoveryTrigger(RequestModel):
    """``POST /api/v1/job-title-discovery/trigger`` (§4.6).

    ``geographyIsoCodes`` defaults to the project's geographies when left out.
    """

    project_id: uuid.UUID
    companies: Annotated[list[DiscoveryCompany], Field(min_length=1, max_length=1000)]
    geography_iso_codes: (
        Annotated[list[CountryCode], Field(min_length=1, max_length=250)] | None
    ) = None


class JobTitleDiscoveryAccepted(ResponseModel):
    accepted: bool
    job_id: uuid.UUID
