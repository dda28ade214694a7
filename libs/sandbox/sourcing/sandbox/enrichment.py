"""Sandbox stand-ins for the ten enrichment vendors (spec/providers.md), one router each.

Each vendor lives under ``/<vendor>`` followed by its real path, so an adapter whose base URL
is ``{SANDBOX_URL}/<vendor><real base path>`` sends its normal requests:

- leadmagic: ``POST /leadmagic/v1/people/email-finder`` (and the older ``/leadmagic/email-finder``),
  ``POST /leadmagic/mobile-finder``; header ``X-API-Key``; errors as problem+json;
- prospeo: ``POST /prospeo/enrich-person``; ``X-KEY``; no match is 400 ``NO_MATCH``;
- exa: ``POST /exa/search``; ``x-api-key`` or Bearer; contacts only inside ``text``;
- rocketreach: ``GET /rocketreach/api/v2/person/lookup`` answers ``searching``, then
  ``GET /rocketreach/api/v2/person/checkStatus?ids=`` answers the profile; ``Api-Key``;
- wiza: ``POST /wiza/api/individual_reveals`` answers ``queued``; ``GET
  /wiza/api/individual_reveals/{id}`` answers ``scraping`` once, then ``finished``; Bearer;
- forager: ``POST /forager/api/{account}/datastorage/person_contacts_lookup/{work_emails|
  personal_emails|phone_numbers}/``; ``X-API-KEY``;
- zeliq: ``POST /zeliq/api/contact/enrich/{email|phone}`` answers 202 ``{jobId}``, then posts
  the job's result to its ``callbackUrl`` (``{jobId, contact:{most_probable_email,
  most_probable_email_status}}`` or ``{jobId, contact:{most_probable_phone}}``) after
  ``ZELIQ_CALLBACK_DELAY_SECONDS``; ``x-api-key``; ``callbackUrl`` required;
- contactout: ``GET /contactout/v1/people/linkedin``, ``POST /contactout/v1/people/enrich``;
  header ``token``;
- datagm: ``GET /datagm/api/ingress/v6/findEmail``, ``GET /datagm/api/ingress/v1/search``;
  ``apiId`` query parameter;
- peopledatalabs: ``GET /peopledatalabs/v5/person/enrich``; ``X-Api-Key``; no match is 404.

Who gets what is decided by :mod:`sourcing.sandbox.personas` (deterministic per person).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sourcing.sandbox.personas import (
    Outcome,
    company_domain,
    digest,
    key_from_email,
    key_from_name,
    key_from_slug,
    name_parts,
    outcome_for,
    personal_email,
    phone_display,
    phone_e164,
    work_email,
)
from sourcing.sandbox.state import (
    SandboxState,
    VendorError,
    apply_outcome,
    get_state,
    require_bearer,
    require_header,
)

logger = logging.getLogger(__name__)

JSONDict = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Subject:
    """The sandbox person a request is about, and the contacts the sandbox knows for them."""

    key: str
    full_name: str
    first: str
    last: str
    domain: str
    company: str
    linkedin: str

    @property
    def work_email(self) -> str:
        return work_email(self.first, self.last, self.domain)

    @property
    def personal_email(self) -> str:
        return personal_email(self.key, self.first, self.last)

    @property
    def e164(self) -> str:
        return phone_e164(self.key)

    @property
    def phone(self) -> str:
        return phone_display(self.e164)


def subject(
    *,
    name: Any = None,
    first: Any = None,
    last: Any = None,
    linkedin: Any = None,
    email: Any = None,
    domain: Any = None,
    company: Any = None,
) -> Subject:
    def text(value: Any) -> str:
        return value.strip() if isinstance(value, str) else ""

    first_s, last_s, linkedin_s, email_s = text(first), text(last), text(linkedin), text(email)
    full = text(name) or " ".join(part for part in (first_s, last_s) if part)
    key = key_from_name(full) or key_from_slug(linkedin_s) or key_from_email(email_s) or "unknown"
    given, family = name_parts(key, first_s, last_s, full, linkedin_s)
    domain_s = text(domain)
    if not domain_s and not text(company) and "@" in email_s:
        domain_s = email_s.rsplit("@", 1)[1]
    resolved_domain = company_domain(domain_s or None, text(company) or None)
    slug = f"{given}-{family}" if given != family else given
    return Subject(
        key=key,
        full_name=full or f"{given.title()} {family.title()}",
        first=given,
        last=family,
        domain=resolved_domain,
        company=text(company) or resolved_domain.split(".", 1)[0].title(),
        linkedin=linkedin_s or f"https://www.linkedin.com/in/{slug}",
    )


async def json_body(request: Request) -> JSONDict:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise VendorError(400, {"error": "Bad Request", "message": "body is not JSON"}) from exc
    if not isinstance(body, dict):
        raise VendorError(400, {"error": "Bad Request", "message": "body must be an object"})
    return body


def _job_id(*parts: object) -> str:
    return str(digest(*parts) % 10**9)


# --- LeadMagic ----------------------------------------------------------------------------------

leadmagic = APIRouter(prefix="/leadmagic", tags=["sandbox: LeadMagic"])


def _problem(status: int, title: str, detail: str) -> JSONDict:
    return {"type": "about:blank", "title": title, "status": status, "detail": detail}


def _leadmagic_auth(request: Request) -> None:
    require_header(
        request, "X-API-Key", _problem(401, "Unauthorized", "Invalid or missing API key")
    )


async def _leadmagic_outcome(state: SandboxState, who: Subject) -> Outcome:
    return await apply_outcome(
        state,
        outcome_for("leadmagic", who.key),
        rate_limited=_problem(429, "Too Many Requests", "Rate limit exceeded"),
        server_error=_problem(500, "Internal Server Error", "Unexpected error"),
    )


@leadmagic.post("/v1/people/email-finder")
@leadmagic.post("/email-finder")
async def leadmagic_email_finder(request: Request) -> JSONDict:
    _leadmagic_auth(request)
    body = await json_body(request)
    has_name = (body.get("first_name") and body.get("last_name")) or body.get("full_name")
    if not has_name or not (body.get("domain") or body.get("company_name")):
        detail = "first_name and last_name (or full_name) and domain or company_name are required"
        raise VendorError(400, _problem(400, "Bad Request", detail))
    who = subject(
        name=body.get("full_name"),
        first=body.get("first_name"),
        last=body.get("last_name"),
        domain=body.get("domain"),
        company=body.get("company_name"),
    )
    outcome = await _leadmagic_outcome(get_state(request), who)
    answer: JSONDict = {
        "email": None,
        "status": "not_found",
        "credits_consumed": 0,
        "message": "No email found.",
        "first_name": who.first.title(),
        "last_name": who.last.title(),
        "domain": who.domain,
        "is_domain_catch_all": False,
        "mx_provider": "google",
        "employment_verified": False,
    }
    if outcome is Outcome.HIT:
        answer |= {"email": who.work_email, "status": "valid", "employment_verified": True}
    elif outcome is Outcome.LOW:
        answer |= {"email": who.work_email, "status": "catch_all", "is_domain_catch_all": True}
    elif outcome is Outcome.PERSONAL:
        answer |= {"email": who.personal_email, "status": "valid"}
    if answer["email"]:
        answer |= {"credits_consumed": 1, "message": "Email found."}
    return answer


@leadmagic.post("/mobile-finder")
async def leadmagic_mobile_finder(request: Request) -> JSONDict:
    _leadmagic_auth(request)
    body = await json_body(request)
    email = body.get("work_email") or body.get("personal_email")
    if not (body.get("profile_url") or email):
        detail = "one of profile_url, work_email or personal_email is required"
        raise VendorError(400, _problem(400, "Bad Request", detail))
    who = subject(linkedin=body.get("profile_url"), email=email)
    outcome = await _leadmagic_outcome(get_state(request), who)
    if outcome is Outcome.HIT:
        return {
            "message": "Mobile number found.",
            "credits_consumed": 5,
            "mobile_number": who.phone,
        }
    return {"message": "No mobile number found.", "credits_consumed": 0, "mobile_number": None}


# --- Prospeo ------------------------------------------------------------------------------------

prospeo = APIRouter(prefix="/prospeo", tags=["sandbox: Prospeo"])


@prospeo.post("/enrich-person")
async def prospeo_enrich_person(request: Request) -> JSONResponse:
    require_header(request, "X-KEY", {"error": True, "error_code": "INVALID_API_KEY"})
    body = await json_body(request)
    data = body.get("data")
    if not isinstance(data, dict):
        data = {}
    if not any(data.get(k) for k in ("linkedin_url", "email", "company_name", "company_website")):
        raise VendorError(400, {"error": True, "error_code": "INSUFFICIENT_DATAPOINTS"})
    who = subject(
        name=data.get("full_name"),
        first=data.get("first_name"),
        last=data.get("last_name"),
        linkedin=data.get("linkedin_url"),
        email=data.get("email"),
        domain=data.get("company_website"),
        company=data.get("company_name"),
    )
    outcome = await apply_outcome(
        get_state(request),
        outcome_for("prospeo", who.key),
        rate_limited={"error": True, "error_code": "RATE_LIMITED"},
        server_error={"error": True, "error_code": "INTERNAL_ERROR"},
    )
    if outcome is Outcome.MISS:
        return JSONResponse(status_code=400, content={"error": True, "error_code": "NO_MATCH"})
    hidden_mobile: JSONDict = {"status": None, "revealed": False, "mobile": None}
    email: JSONDict = {"email": who.work_email, "status": "VERIFIED", "revealed": True}
    mobile: JSONDict = hidden_mobile
    if outcome is Outcome.HIT and body.get("enrich_mobile"):
        mobile = {
            "status": "VERIFIED",
            "revealed": True,
            "mobile": who.phone,
            "mobile_international": who.phone,
        }
    elif outcome is Outcome.LOW:
        email = {"email": who.work_email, "status": "UNVERIFIED", "revealed": True}
    elif outcome is Outcome.PERSONAL:
        email = {"email": who.personal_email, "status": "VERIFIED", "revealed": True}
    return JSONResponse(
        content={
            "error": False,
            "free_enrichment": False,
            "person": {
                "person_id": f"sandbox-{_job_id(who.key)}",
                "full_name": who.full_name,
                "linkedin_url": who.linkedin,
                "current_job_title": "Vice President",
                "email": email,
                "mobile": mobile,
            },
            "company": {"name": who.company, "domain": who.domain},
        }
    )


# --- Exa ----------------------------------------------------------------------------------------

exa = APIRouter(prefix="/exa", tags=["sandbox: Exa"])


def _exa_name(query: str) -> str:
    """The person's name: the quoted part of the query, else its first two words."""
    if query.count('"') >= 2:
        return query.split('"')[1]
    return " ".join(query.split()[:2])


@exa.post("/search")
async def exa_search(request: Request) -> JSONDict:
    if not request.headers.get("x-api-key"):
        require_bearer(request, {"error": "Missing or invalid API key"})
    body = await json_body(request)
    query = str(body.get("query") or "")
    if not query.strip():
        raise VendorError(400, {"error": "query is required"})
    who = subject(name=_exa_name(query))
    outcome = await apply_outcome(
        get_state(request),
        outcome_for("exa", who.key),
        rate_limited={"error": "Rate limit exceeded"},
        server_error={"error": "Internal server error"},
    )
    results: list[JSONDict] = []
    contact = {
        Outcome.HIT: who.work_email,
        Outcome.LOW: who.work_email,
        Outcome.PERSONAL: who.personal_email,
    }.get(outcome)
    if contact:
        text = (
            f"{who.full_name}\nVice President at {who.company}.\n"
            f"Reach {who.first.title()} at {contact} or through the company website."
        )
        results.append(
            {
                "id": who.linkedin,
                "url": who.linkedin,
                "title": f"{who.full_name} - Vice President at {who.company}",
                "score": 0.87,
                "publishedDate": None,
                "author": who.full_name,
                "text": text,
            }
        )
    return {
        "requestId": f"sandbox{_job_id(who.key, query)}",
        "resolvedSearchType": "neural",
        "results": results,
    }


# --- RocketReach --------------------------------------------------------------------------------

rocketreach = APIRouter(prefix="/rocketreach/api/v2", tags=["sandbox: RocketReach"])


def _rocketreach_profile(who: Subject, profile_id: str, outcome: Outcome) -> JSONDict:
    profile: JSONDict = {
        "id": int(profile_id),
        "status": "complete",
        "name": who.full_name,
        "current_employer": who.company,
        "current_title": "Vice President",
        "linkedin_url": who.linkedin,
        "recommended_email": None,
        "recommended_professional_email": None,
        "recommended_personal_email": None,
        "current_work_email": None,
        "emails": [],
        "phones": [],
    }
    if outcome is Outcome.HIT:
        profile |= {
            "recommended_email": who.work_email,
            "recommended_professional_email": who.work_email,
            "current_work_email": who.work_email,
            "emails": [
                {
                    "email": who.work_email,
                    "smtp_valid": "valid",
                    "type": "professional",
                    "grade": "A",
                }
            ],
            "phones": [
                {
                    "number": who.phone,
                    "e164": who.e164,
                    "type": "mobile",
                    "validity": "valid",
                    "recommended": True,
                }
            ],
        }
    elif outcome is Outcome.LOW:
        profile |= {
            "recommended_email": who.work_email,
            "emails": [
                {
                    "email": who.work_email,
                    "smtp_valid": "accept-all",
                    "type": "professional",
                    "grade": "B",
                }
            ],
        }
    elif outcome is Outcome.PERSONAL:
        profile |= {
            "recommended_email": who.personal_email,
            "recommended_personal_email": who.personal_email,
            "emails": [
                {
                    "email": who.personal_email,
                    "smtp_valid": "valid",
                    "type": "personal",
                    "grade": "A",
                }
            ],
        }
    else:
        profile["status"] = "failed"
    return profile


def _rocketreach_auth(request: Request) -> None:
    require_header(request, "Api-Key", {"detail": "Invalid API key."})


@rocketreach.get("/person/lookup")
async def rocketreach_lookup(request: Request) -> JSONDict:
    _rocketreach_auth(request)
    query = request.query_params
    if not (query.get("linkedin_url") or query.get("name") or query.get("email")):
        raise VendorError(
            400, {"detail": "name and current_employer, linkedin_url or email is required"}
        )
    who = subject(
        name=query.get("name"),
        linkedin=query.get("linkedin_url"),
        email=query.get("email"),
        company=query.get("current_employer"),
    )
    state = get_state(request)
    outcome = await apply_outcome(
        state,
        outcome_for("rocketreach", who.key),
        rate_limited={"detail": "Request was throttled. Expected available in 1 second."},
        server_error={"detail": "Internal server error"},
    )
    profile_id = _job_id("rocketreach", who.key)
    state.remember(f"rocketreach:{profile_id}", {"who": who, "outcome": outcome})
    return {
        "id": int(profile_id),
        "status": "searching",
        "name": who.full_name,
        "current_employer": who.company,
        "linkedin_url": who.linkedin,
    }


@rocketreach.get("/person/checkStatus")
async def rocketreach_check_status(request: Request) -> list[JSONDict]:
    _rocketreach_auth(request)
    ids = [i.strip() for i in (request.query_params.get("ids") or "").split(",") if i.strip()]
    if not ids:
        raise VendorError(400, {"detail": "ids is required"})
    state = get_state(request)
    profiles = []
    for profile_id in ids:
        job = state.jobs.get(f"rocketreach:{profile_id}")
        if job is None:
            raise VendorError(404, {"detail": f"profile {profile_id} not found"})
        profiles.append(_rocketreach_profile(job["who"], profile_id, job["outcome"]))
    return profiles


# --- Wiza ---------------------------------------------------------------------------------------

wiza = APIRouter(prefix="/wiza/api", tags=["sandbox: Wiza"])
# A reveal answers `scraping` this many times before it is finished (exercises polling).
WIZA_PENDING_POLLS = 1


def _wiza_auth(request: Request) -> None:
    require_bearer(request, {"status": {"code": 401, "message": "Unauthorized"}})


@wiza.post("/individual_reveals")
async def wiza_start_reveal(request: Request) -> JSONDict:
    _wiza_auth(request)
    body = await json_body(request)
    reveal = body.get("individual_reveal")
    if not isinstance(reveal, dict) or not reveal:
        raise VendorError(
            400, {"status": {"code": 400, "message": "individual_reveal is required"}}
        )
    who = subject(
        name=reveal.get("full_name"),
        linkedin=reveal.get("profile_url"),
        email=reveal.get("email"),
        domain=reveal.get("domain"),
        company=reveal.get("company"),
    )
    state = get_state(request)
    outcome = await apply_outcome(
        state,
        outcome_for("wiza", who.key),
        rate_limited={"status": {"code": 429, "message": "Too many requests"}},
        server_error={"status": {"code": 500, "message": "Something went wrong"}},
    )
    options = body.get("email_options")
    if not isinstance(options, dict):
        options = {}
    reveal_id = _job_id("wiza", who.key, json.dumps(body, sort_keys=True))
    state.remember(
        f"wiza:{reveal_id}",
        {
            "who": who,
            "outcome": outcome,
            "polls": 0,
            "phones": body.get("enrichment_level") in ("phone", "full"),
            "accept_personal": bool(options.get("accept_personal", True)),
            "accept_work": bool(options.get("accept_work", True)),
        },
    )
    return {
        "status": {"code": 200, "message": "Wiza is working on it, try again in a few seconds"},
        "data": {"id": int(reveal_id), "status": "queued", "is_complete": False},
    }


@wiza.get("/individual_reveals/{reveal_id}")
async def wiza_get_reveal(reveal_id: str, request: Request) -> JSONDict:
    _wiza_auth(request)
    job = get_state(request).jobs.get(f"wiza:{reveal_id}")
    if job is None:
        raise VendorError(404, {"status": {"code": 404, "message": "Not found"}})
    job["polls"] += 1
    status = {"code": 200, "message": "OK"}
    if job["polls"] <= WIZA_PENDING_POLLS:
        return {
            "status": status,
            "data": {"id": int(reveal_id), "status": "scraping", "is_complete": False},
        }
    who: Subject = job["who"]
    outcome: Outcome = job["outcome"]
    emails: list[JSONDict] = []
    if outcome is Outcome.HIT and job["accept_work"]:
        emails = [{"email": who.work_email, "email_type": "work", "email_status": "valid"}]
    elif outcome is Outcome.LOW and job["accept_work"]:
        emails = [{"email": who.work_email, "email_type": "work", "email_status": "catch_all"}]
    elif outcome is Outcome.PERSONAL and job["accept_personal"]:
        emails = [{"email": who.personal_email, "email_type": "personal", "email_status": "valid"}]
    phones = outcome is Outcome.HIT and job["phones"]
    first = emails[0] if emails else {}
    return {
        "status": status,
        "data": {
            "id": int(reveal_id),
            "status": "finished",
            "is_complete": True,
            "name": who.full_name,
            "company": who.company,
            "profile_url": who.linkedin,
            "email": first.get("email"),
            "email_type": first.get("email_type"),
            "email_status": first.get("email_status"),
            "emails": emails,
            "mobile_phone": who.phone if phones else None,
            "phone_number": who.phone if phones else None,
            "phones": [{"number": who.e164, "pretty_number": who.phone, "type": "mobile"}]
            if phones
            else [],
            "credits": {"email_credits": 1 if emails else 0, "phone_credits": 1 if phones else 0},
        },
    }


# --- Forager ------------------------------------------------------------------------------------

forager = APIRouter(prefix="/forager/api/{account_id}/datastorage", tags=["sandbox: Forager"])
FORAGER_LOOKUPS = ("work_emails", "personal_emails", "phone_numbers")


@forager.post("/person_contacts_lookup/{lookup}/")
async def forager_lookup(account_id: str, lookup: str, request: Request) -> list[JSONDict]:
    require_header(request, "X-API-KEY", {"detail": "Invalid API key."})
    if lookup not in FORAGER_LOOKUPS:
        raise VendorError(404, {"detail": "Not found."})
    body = await json_body(request)
    identifier = body.get("linkedin_public_identifier")
    if not identifier and not body.get("person_id"):
        raise VendorError(400, {"detail": "linkedin_public_identifier or person_id is required"})
    who = subject(linkedin=f"https://www.linkedin.com/in/{identifier or body.get('person_id')}")
    outcome = await apply_outcome(
        get_state(request),
        outcome_for("forager", who.key),
        rate_limited={"detail": "Request was throttled."},
        server_error={"detail": "A server error occurred."},
    )
    if lookup == "work_emails" and outcome in (Outcome.HIT, Outcome.LOW):
        status = "valid" if outcome is Outcome.HIT else "catch_all"
        return [{"email": who.work_email, "email_type": "work", "validation_status": status}]
    if lookup == "personal_emails" and outcome is Outcome.PERSONAL:
        return [
            {"email": who.personal_email, "email_type": "personal", "validation_status": "valid"}
        ]
    if lookup == "phone_numbers" and outcome is Outcome.HIT:
        return [{"phone_number": who.e164}]
    return []


# --- Zeliq --------------------------------------------------------------------------------------

zeliq = APIRouter(prefix="/zeliq/api", tags=["sandbox: Zeliq"])


# How long after accepting a job the sandbox calls its callback URL back.
ZELIQ_CALLBACK_DELAY_SECONDS = 0.3
ZELIQ_CALLBACK_TIMEOUT_SECONDS = 5.0
ZELIQ_EMAIL_STATUS = {Outcome.HIT: "valid", Outcome.PERSONAL: "valid", Outcome.LOW: "unknown"}


def zeliq_callback_body(job_id: str, kind: str, who: Subject, outcome: Outcome) -> JSONDict:
    """What Zeliq posts back for a job: the most probable email or phone, or an empty contact."""
    contact: JSONDict = {}
    if kind == "email" and outcome in ZELIQ_EMAIL_STATUS:
        address = who.personal_email if outcome is Outcome.PERSONAL else who.work_email
        contact = {
            "most_probable_email": address,
            "most_probable_email_status": ZELIQ_EMAIL_STATUS[outcome],
        }
    elif kind == "phone" and outcome is Outcome.HIT:
        contact = {"most_probable_phone": who.e164}
    return {"jobId": job_id, "contact": contact}


async def _call_back(url: str, body: JSONDict) -> None:
    await asyncio.sleep(ZELIQ_CALLBACK_DELAY_SECONDS)
    try:
        async with httpx.AsyncClient(timeout=ZELIQ_CALLBACK_TIMEOUT_SECONDS) as client:
            response = await client.post(url, json=body)
        logger.info("Zeliq callback to %s answered %s", url.split("?", 1)[0], response.status_code)
    except httpx.HTTPError as exc:
        logger.warning("Zeliq callback to %s failed: %r", url.split("?", 1)[0], exc)


@zeliq.post("/contact/enrich/{kind}", status_code=202)
async def zeliq_enrich(kind: str, request: Request) -> JSONDict:
    require_header(request, "x-api-key", {"message": "Unauthorized"})
    if kind not in ("email", "phone"):
        raise VendorError(404, {"message": "Not found"})
    body = await json_body(request)
    callback_url = body.get("callbackUrl")
    if not isinstance(callback_url, str) or not callback_url:
        raise VendorError(400, {"message": "callbackUrl is required"})
    if not (body.get("linkedin_url") or (body.get("first_name") and body.get("last_name"))):
        raise VendorError(400, {"message": "linkedin_url or first_name and last_name are required"})
    who = subject(
        first=body.get("first_name"),
        last=body.get("last_name"),
        linkedin=body.get("linkedin_url"),
        domain=body.get("domain"),
        company=body.get("company"),
    )
    state = get_state(request)
    outcome = await apply_outcome(
        state,
        outcome_for("zeliq", who.key),
        rate_limited={"message": "Too many requests"},
        server_error={"message": "Internal server error"},
    )
    job_id = str(uuid.UUID(int=digest("zeliq", kind, who.key)))
    state.start(_call_back(callback_url, zeliq_callback_body(job_id, kind, who, outcome)))
    return {"jobId": job_id}


# --- ContactOut ---------------------------------------------------------------------------------

contactout = APIRouter(prefix="/contactout/v1/people", tags=["sandbox: ContactOut"])


def _contactout_answer(who: Subject, outcome: Outcome, *, include: set[str]) -> JSONResponse:
    if outcome is Outcome.MISS:
        return JSONResponse(
            status_code=404, content={"status_code": 404, "message": "Profile not found"}
        )
    profile: JSONDict = {
        "url": who.linkedin,
        "fullName": who.full_name,
        "company": {"name": who.company, "domain": who.domain},
        "email": [],
        "work_email": [],
        "personal_email": [],
        "phone": [],
        "work_email_status": {},
    }
    if outcome in (Outcome.HIT, Outcome.LOW) and "work_email" in include:
        profile["work_email"] = [who.work_email]
        profile["email"] = [who.work_email]
        if outcome is Outcome.HIT:
            profile["work_email_status"] = {who.work_email: "Verified"}
    if outcome is Outcome.PERSONAL and "personal_email" in include:
        profile["personal_email"] = [who.personal_email]
        profile["email"] = [who.personal_email]
    if outcome is Outcome.HIT and "phone" in include:
        profile["phone"] = [who.phone]
    return JSONResponse(content={"status_code": 200, "profile": profile})


async def _contactout_outcome(request: Request, who: Subject) -> Outcome:
    return await apply_outcome(
        get_state(request),
        outcome_for("contactout", who.key),
        rate_limited={"status_code": 429, "message": "Too many requests"},
        server_error={"status_code": 500, "message": "Server error"},
    )


def _contactout_auth(request: Request) -> None:
    require_header(request, "token", {"status_code": 401, "message": "Unauthorized"})


@contactout.get("/linkedin")
async def contactout_linkedin(request: Request) -> JSONResponse:
    _contactout_auth(request)
    profile_url = request.query_params.get("profile")
    if not profile_url:
        raise VendorError(400, {"status_code": 400, "message": "profile is required"})
    who = subject(linkedin=profile_url)
    outcome = await _contactout_outcome(request, who)
    include = {"work_email", "personal_email"}
    if request.query_params.get("include_phone", "").lower() == "true":
        include.add("phone")
    return _contactout_answer(who, outcome, include=include)


@contactout.post("/enrich")
async def contactout_enrich(request: Request) -> JSONResponse:
    _contactout_auth(request)
    body = await json_body(request)
    domains = body.get("company_domain")
    if not isinstance(domains, list):
        domains = []
    if not (body.get("linkedin_url") or (body.get("full_name") and domains)):
        raise VendorError(
            400,
            {
                "status_code": 400,
                "message": "linkedin_url or full_name and company_domain required",
            },
        )
    who = subject(
        name=body.get("full_name"),
        linkedin=body.get("linkedin_url"),
        domain=domains[0] if domains else None,
    )
    outcome = await _contactout_outcome(request, who)
    include_list = body.get("include") if isinstance(body.get("include"), list) else None
    include = (
        set(include_list) if include_list is not None else {"work_email", "personal_email", "phone"}
    )
    return _contactout_answer(who, outcome, include={str(i) for i in include})


# --- DataGM (Datagma) ---------------------------------------------------------------------------

datagm = APIRouter(prefix="/datagm/api/ingress", tags=["sandbox: DataGM"])


async def _datagm_outcome(request: Request, who: Subject) -> Outcome:
    if not request.query_params.get("apiId"):
        raise VendorError(401, {"code": 1, "message": "Invalid apiId"})
    return await apply_outcome(
        get_state(request),
        outcome_for("datagm", who.key),
        rate_limited={"message": "Too many requests"},
        server_error={"message": "Internal error"},
    )


@datagm.get("/v6/findEmail")
async def datagm_find_email(request: Request) -> JSONDict:
    query = request.query_params
    who = subject(
        name=query.get("fullName"),
        linkedin=f"https://www.linkedin.com/in/{query['linkedInSlug']}"
        if query.get("linkedInSlug")
        else None,
        domain=query.get("company") if "." in (query.get("company") or "") else None,
        company=query.get("company"),
    )
    outcome = await _datagm_outcome(request, who)
    if outcome is Outcome.HIT:
        return {"email": who.work_email, "status": "Valid", "mostProbableEmail": [who.work_email]}
    if outcome is Outcome.LOW:
        alternative = f"{who.first[:1]}{who.last}@{who.domain}"
        return {
            "email": who.work_email,
            "status": "MostProbable",
            "mostProbableEmail": [who.work_email, alternative],
        }
    if outcome is Outcome.PERSONAL:
        return {
            "email": who.personal_email,
            "status": "Valid",
            "mostProbableEmail": [who.personal_email],
        }
    return {"email": None, "status": "NotFound", "mostProbableEmail": []}


@datagm.get("/v1/search")
async def datagm_search(request: Request) -> JSONDict:
    who = subject(linkedin=request.query_params.get("username"))
    outcome = await _datagm_outcome(request, who)
    if outcome is Outcome.MISS:
        return {"code": 5, "message": "Not found"}
    person: JSONDict = {"fullName": who.full_name, "phones": [], "emails": []}
    if outcome is Outcome.HIT:
        person["phones"] = [{"displayInternational": who.phone, "type": "mobile"}]
        person["emails"] = [{"address": who.work_email}]
    return {"person": person}


# --- People Data Labs ---------------------------------------------------------------------------

peopledatalabs = APIRouter(prefix="/peopledatalabs/v5", tags=["sandbox: People Data Labs"])
PDL_LIKELIHOOD = {Outcome.HIT: 9, Outcome.PERSONAL: 9, Outcome.LOW: 5}


def _pdl_not_found() -> JSONResponse:
    return JSONResponse(
        status_code=404,
        content={
            "status": 404,
            "error": {
                "type": "not_found",
                "message": "No records were found matching your request",
            },
        },
    )


@peopledatalabs.get("/person/enrich")
async def peopledatalabs_enrich(request: Request) -> JSONResponse:
    query = request.query_params
    if not (request.headers.get("X-Api-Key") or query.get("api_key")):
        raise VendorError(
            401,
            {
                "status": 401,
                "error": {"type": "authentication_error", "message": "API key missing"},
            },
        )
    who = subject(
        first=query.get("first_name"),
        last=query.get("last_name"),
        linkedin=query.get("profile"),
        email=query.get("email"),
        domain=query.get("company") if "." in (query.get("company") or "") else None,
        company=query.get("company"),
    )
    outcome = await apply_outcome(
        get_state(request),
        outcome_for("peopledatalabs", who.key),
        rate_limited={
            "status": 429,
            "error": {"type": "rate_limit_error", "message": "Rate limit reached"},
        },
        server_error={
            "status": 500,
            "error": {"type": "server_error", "message": "Internal error"},
        },
    )
    likelihood = PDL_LIKELIHOOD.get(outcome)
    min_likelihood = int(query.get("min_likelihood") or 0)
    if likelihood is None or likelihood < min_likelihood:
        return _pdl_not_found()
    data: JSONDict = {
        "full_name": who.full_name.lower(),
        "first_name": who.first,
        "last_name": who.last,
        "linkedin_url": who.linkedin.removeprefix("https://www."),
        "job_title": "vice president",
        "job_company_name": who.company.lower(),
        "work_email": None,
        "personal_emails": [],
        "emails": [],
        "mobile_phone": None,
        "phone_numbers": [],
    }
    if outcome in (Outcome.HIT, Outcome.LOW):
        data |= {
            "work_email": who.work_email,
            "emails": [{"address": who.work_email, "type": "current_professional"}],
        }
    if outcome is Outcome.HIT:
        data |= {"mobile_phone": who.e164, "phone_numbers": [who.e164]}
    if outcome is Outcome.PERSONAL:
        data |= {
            "personal_emails": [who.personal_email],
            "emails": [{"address": who.personal_email, "type": "personal"}],
        }
    return JSONResponse(content={"status": 200, "likelihood": likelihood, "data": data})


ROUTERS: tuple[APIRouter, ...] = (
    leadmagic,
    prospeo,
    exa,
    rocketreach,
    wiza,
    forager,
    zeliq,
    contactout,
    datagm,
    peopledatalabs,
)
