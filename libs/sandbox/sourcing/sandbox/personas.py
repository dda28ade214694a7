"""The sandbox's deterministic people: who each enrichment vendor finds, and how well.

**Who is who.** A request is mapped to a *person key*: the letters of the person's name, lower
case ("Jane O'Doe" -> ``janeodoe``). A request that carries no name uses the LinkedIn slug
(``/in/jane-doe-4b2a1c`` -> ``janedoe``: segments with digits are dropped) or the email's local
part (``jane.doe@x.com`` -> ``janedoe``). So "Jane Doe", her LinkedIn URL and her email are the
same sandbox person for every vendor, as long as the slug or address spells the name.

**Persona.** A marker in the key wins (checked in this order: slow, nomatch, lowconf,
personal, flaky, standard); otherwise the key's hash bucket ``sha256(key) % 20`` decides:

- ``standard`` (marker ``standard``, buckets 0-11, 60 %): LeadMagic, Prospeo, RocketReach,
  Wiza and People Data Labs hit with high confidence; Exa, ContactOut and DataGM return low
  confidence; Forager misses.
- ``personal_only`` (``personal``, buckets 12-13, 10 %): every vendor returns only a personal
  email (gmail, outlook, yahoo.co.uk, icloud, proton), so the region rule leaves nothing for
  CA, AU and European experts. Vendors asked not to return personal emails (Wiza
  ``accept_personal: false``, ContactOut without ``personal_email``, Forager's personal lookup
  skipped) return nothing.
- ``low`` (``lowconf``, buckets 14-15, 10 %): every vendor returns one low-confidence email.
- ``no_match`` (``nomatch``, bucket 16, 5 %): every vendor misses.
- ``slow`` (``slow``, bucket 17, 5 %): LeadMagic, Prospeo, RocketReach, Wiza and People Data
  Labs answer after ``slow_seconds`` (beyond the adapter timeout); the others return low
  confidence.
- ``flaky`` (``flaky``, buckets 18-19, 10 %): LeadMagic and DataGM answer 429 with
  ``Retry-After: 1``, Prospeo and Forager 500; the rest behave as for ``standard``.

Zeliq accepts the job (202 ``{jobId}``) and posts its result to the job's callback URL shortly
after (:func:`sourcing.sandbox.enrichment.zeliq_callback_body`). :func:`outcome_for` /
:func:`expected_outcome` give the table to tests.

**Outcomes** (what the adapters then report): ``hit`` is a verified work email (confidence
>= 0.9) plus a phone from vendors that return phones; ``low`` one email with confidence < 0.7
and no phone; ``personal`` one personal email and no phone; ``miss`` nothing; ``slow`` a
``hit`` after ``slow_seconds`` (a timeout for the adapter); ``rate_limited`` 429; ``error`` 500.
"""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum
from typing import Final


class Persona(StrEnum):
    STANDARD = "standard"
    PERSONAL_ONLY = "personal_only"
    LOW = "low"
    NO_MATCH = "no_match"
    SLOW = "slow"
    FLAKY = "flaky"


class Outcome(StrEnum):
    HIT = "hit"
    LOW = "low"
    PERSONAL = "personal"
    MISS = "miss"
    SLOW = "slow"
    RATE_LIMITED = "rate_limited"
    ERROR = "error"


VENDORS: Final = (
    "leadmagic",
    "prospeo",
    "exa",
    "rocketreach",
    "wiza",
    "forager",
    "zeliq",
    "contactout",
    "datagm",
    "peopledatalabs",
)

# Markers in the person key, checked in this order.
MARKERS: Final[tuple[tuple[str, Persona], ...]] = (
    ("slow", Persona.SLOW),
    ("nomatch", Persona.NO_MATCH),
    ("lowconf", Persona.LOW),
    ("personal", Persona.PERSONAL_ONLY),
    ("flaky", Persona.FLAKY),
    ("standard", Persona.STANDARD),
)

_STANDARD: Final = {
    "leadmagic": Outcome.HIT,
    "prospeo": Outcome.HIT,
    "exa": Outcome.LOW,
    "rocketreach": Outcome.HIT,
    "wiza": Outcome.HIT,
    "forager": Outcome.MISS,
    "zeliq": Outcome.HIT,
    "contactout": Outcome.LOW,
    "datagm": Outcome.LOW,
    "peopledatalabs": Outcome.HIT,
}
_SLOW_VENDORS: Final = frozenset({"leadmagic", "prospeo", "rocketreach", "wiza", "peopledatalabs"})
_FLAKY: Final = {
    "leadmagic": Outcome.RATE_LIMITED,
    "datagm": Outcome.RATE_LIMITED,
    "prospeo": Outcome.ERROR,
    "forager": Outcome.ERROR,
}

OUTCOMES: Final[dict[Persona, dict[str, Outcome]]] = {
    Persona.STANDARD: dict(_STANDARD),
    Persona.PERSONAL_ONLY: {vendor: Outcome.PERSONAL for vendor in VENDORS},
    Persona.LOW: {vendor: Outcome.LOW for vendor in VENDORS},
    Persona.NO_MATCH: {vendor: Outcome.MISS for vendor in VENDORS},
    Persona.SLOW: {
        vendor: Outcome.SLOW if vendor in _SLOW_VENDORS else Outcome.LOW for vendor in VENDORS
    },
    Persona.FLAKY: {vendor: _FLAKY.get(vendor, _STANDARD[vendor]) for vendor in VENDORS},
}


def _letters(text: str) -> str:
    return re.sub(r"[^a-z]", "", text.lower())


def key_from_name(name: str | None) -> str:
    return _letters(name or "")


def key_from_slug(value: str | None) -> str:
    """A LinkedIn URL or slug -> key: `/in/jane-doe-4b2a1c/` -> `janedoe`."""
    if not value:
        return ""
    match = re.search(r"/(?:in|pub)/([^/?#]+)", value)
    slug = match.group(1) if match else value.strip("/").rsplit("/", 1)[-1]
    parts = [part for part in re.split(r"[-_.]", slug) if part and not re.search(r"\d", part)]
    return _letters("".join(parts))


def key_from_email(address: str | None) -> str:
    if not address or "@" not in address:
        return ""
    local = address.split("@", 1)[0]
    parts = [part for part in re.split(r"[._+-]", local) if part and not re.search(r"\d", part)]
    return _letters("".join(parts))


def person_key(
    *,
    name: str | None = None,
    linkedin: str | None = None,
    email: str | None = None,
) -> str:
    """The sandbox identity of a request: name letters, else LinkedIn slug, else email."""
    return key_from_name(name) or key_from_slug(linkedin) or key_from_email(email) or "unknown"


def bucket(key: str) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % 20


def persona_of(key: str) -> Persona:
    for marker, persona in MARKERS:
        if marker in key:
            return persona
    value = bucket(key)
    if value <= 11:
        return Persona.STANDARD
    if value <= 13:
        return Persona.PERSONAL_ONLY
    if value <= 15:
        return Persona.LOW
    if value == 16:
        return Persona.NO_MATCH
    if value == 17:
        return Persona.SLOW
    return Persona.FLAKY


def outcome_for(vendor: str, key: str) -> Outcome:
    """What `vendor` does for the person `key` (tests use this to predict the branch)."""
    return OUTCOMES[persona_of(key)][vendor]


def expected_outcome(vendor: str, name: str) -> Outcome:
    """`outcome_for` from a person's name, the usual way tests ask."""
    return outcome_for(vendor, key_from_name(name))


# --- deterministic fake data ------------------------------------------------------------------

PERSONAL_DOMAINS: Final = ("gmail.com", "outlook.com", "yahoo.co.uk", "icloud.com", "proton.me")


def digest(*parts: object) -> int:
    return int(hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:15], 16)


def name_parts(
    key: str,
    first: str | None = None,
    last: str | None = None,
    full: str | None = None,
    linkedin: str | None = None,
) -> tuple[str, str]:
    """Lower-case (first, last) for generated addresses, from the names, else the slug."""
    if first and last and _letters(first) and _letters(last):
        return _letters(first), _letters(last)
    words = [_letters(word) for word in (full or "").split()]
    words = [word for word in words if word]
    if len(words) >= 2:
        return words[0], words[-1]
    if linkedin:
        match = re.search(r"/(?:in|pub)/([^/?#]+)", linkedin)
        slug = match.group(1) if match else linkedin
        parts = [_letters(p) for p in re.split(r"[-_.]", slug) if p and not re.search(r"\d", p)]
        parts = [part for part in parts if part]
        if len(parts) >= 2:
            return parts[0], parts[-1]
    return key, key


def company_domain(domain: str | None, company: str | None) -> str:
    if domain:
        cleaned = re.sub(r"^[a-z]+://", "", domain.strip().lower()).split("/", 1)[0]
        return cleaned.removeprefix("www.") or "example.com"
    if company:
        slug = re.sub(r"[^a-z0-9]", "", company.lower())
        return f"{slug}.com" if slug else "example.com"
    return "example.com"


def work_email(first: str, last: str, domain: str) -> str:
    return f"{first}.{last}@{domain}" if first != last else f"{first}@{domain}"


def personal_email(key: str, first: str, last: str) -> str:
    domain = PERSONAL_DOMAINS[digest(key, "personal") % len(PERSONAL_DOMAINS)]
    local = f"{first}.{last}" if first != last else first
    return f"{local}{digest(key) % 90 + 10}@{domain}"


def phone_e164(key: str) -> str:
    """A fictional North American number (555-01xx is reserved for fiction)."""
    return f"+120255501{digest(key, 'phone') % 100:02d}"


def phone_display(e164: str) -> str:
    return f"+1 {e164[2:5]}-{e164[5:8]}-{e164[8:]}"
