"""Sandbox stand-in for Apollo.io people search (spec/providers.md, "Apollo.io").

``POST /apollo/api/v1/mixed_people/api_search`` with header ``x-api-key`` (401 without). The
company is the first of ``q_organization_domains_list``, else ``organization_ids``, else
``q_keywords``; it gets 8-15 people (a digest of the company decides how many and which titles
from :data:`TITLE_POOL`), paged with ``page`` / ``per_page``. ``person_titles`` replaces the
pool. A company containing ``sandbox-empty`` has nobody.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Request

from sourcing.sandbox.enrichment import json_body
from sourcing.sandbox.personas import digest
from sourcing.sandbox.state import VendorError, require_header

router = APIRouter(prefix="/apollo/api/v1", tags=["sandbox: Apollo"])

EMPTY_MARKER: Final = "sandbox-empty"
TITLE_POOL: Final = (
    "VP Payments",
    "Head of Product",
    "Director of Engineering",
    "Chief Technology Officer",
    "Senior Software Engineer",
    "Product Manager",
    "Head of Risk",
    "Chief Financial Officer",
    "Director, Business Development",
    "Engineering Manager",
    "Data Scientist",
    "VP Sales",
    "Head of Partnerships",
    "General Counsel",
    "Chief Operating Officer",
    "Senior Product Manager",
)
FIRST_NAMES: Final = ("Ana", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hugo", "Ines")


def _strings(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    if isinstance(value, str) and value.strip():
        return [value.strip()]
    return []


@router.post("/mixed_people/api_search")
async def apollo_people_search(request: Request) -> dict[str, Any]:
    require_header(request, "x-api-key", {"error": "Invalid access credentials."})
    body = await json_body(request)
    domains = _strings(body.get("q_organization_domains_list"))
    org_ids = _strings(body.get("organization_ids"))
    keywords = str(body.get("q_keywords") or "").strip()
    company = (domains or org_ids or [keywords])[0]
    try:
        page = max(1, int(body.get("page") or 1))
        per_page = max(1, min(int(body.get("per_page") or 25), 100))
    except (TypeError, ValueError) as exc:
        raise VendorError(422, {"error": "page and per_page must be integers"}) from exc
    titles = _strings(body.get("person_titles")) or list(TITLE_POOL)
    seed = digest("apollo", company.lower())
    total = 0 if not company or EMPTY_MARKER in company.lower() else 8 + seed % 8
    people = []
    for index in range((page - 1) * per_page, min(total, page * per_page)):
        person_seed = digest("apollo", company.lower(), index)
        name = domains[0].split(".")[0] if domains else company
        people.append(
            {
                "id": f"{person_seed:015x}",
                "first_name": FIRST_NAMES[person_seed % len(FIRST_NAMES)],
                "last_name_obfuscated": "Sm***h",
                "title": titles[(seed + index * 7) % len(titles)],
                "has_email": True,
                "organization": {
                    "id": org_ids[0] if org_ids else f"{seed:015x}",
                    "name": name.title(),
                    "primary_domain": domains[0] if domains else None,
                },
            }
        )
    return {"total_entries": total, "people": people}
