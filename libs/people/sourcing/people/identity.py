"""Who a lead is: the normalised person identity that deduplicates people into one Expert.

The identity is the normalised LinkedIn profile URL, else the normalised email. It is the
Kafka key of the ``lead-ingestion`` lane (same person, same partition, one at a time) and the
value of ``experts.linkedin_url_normalized`` / ``experts.primary_email`` (unique indexes, the
final guard against two Experts for one person). Pure functions, no I/O.

LinkedIn URLs arrive in many spellings of one profile: ``http://``, no scheme, ``www.``,
country subdomains (``uk.linkedin.com``, ``de.linkedin.com``), ``m.linkedin.com``, trailing
slashes, query strings and fragments (``?originalSubdomain=uk``), percent-encoding and mixed
case in the slug, sub-pages (``/in/jane/details/experience``). They all normalise to
``https://www.linkedin.com/in/<slug>`` with the slug lower-cased. Sales Navigator lead URLs
(``/sales/lead/<id>,NAME_SEARCH,xyz`` and ``/sales/people/<id>,...``) normalise to
``https://www.linkedin.com/sales/lead/<id>``: the id is case-sensitive and kept as is. A Sales
Nav id and a public ``/in/`` slug of the same person cannot be matched without LinkedIn's API,
so such a pair stays two identities (the email, when both leads carry it, still matches).
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote, urlsplit

CANONICAL_ORIGIN: Final = "https://www.linkedin.com"
_HOST: Final = re.compile(r"^(?:[a-z0-9-]+\.)*linkedin\.com$")


def normalize_email(email: str | None) -> str | None:
    """Trimmed and lower-cased; None when empty or not an address (no ``@`` with text around)."""
    if email is None:
        return None
    value = email.strip().lower()
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain.strip("."):
        return None
    return value


def normalize_linkedin_url(url: str | None) -> str | None:
    """The canonical form of a LinkedIn URL (see the module docstring); None when the URL is
    empty or not on linkedin.com.

    Other linkedin.com paths (a company page, say) keep their lower-cased path without query
    or trailing slash, so equal URLs still compare equal.
    """
    if url is None:
        return None
    raw = url.strip()
    if not raw:
        return None
    if "://" not in raw:
        raw = f"https://{raw.lstrip('/')}"
    try:
        parts = urlsplit(raw)
    except ValueError:
        return None
    host = (parts.hostname or "").lower().rstrip(".")
    if not _HOST.match(host):
        return None
    segments = [unquote(s) for s in parts.path.split("/") if s.strip()]
    if len(segments) >= 2 and segments[0].lower() == "in":
        return f"{CANONICAL_ORIGIN}/in/{segments[1].strip().lower()}"
    if (
        len(segments) >= 3
        and segments[0].lower() == "sales"
        and segments[1].lower()
        in {
            "lead",
            "people",
        }
    ):
        lead_id = segments[2].split(",", 1)[0].strip()
        if lead_id:
            return f"{CANONICAL_ORIGIN}/sales/lead/{lead_id}"
    path = "/".join(s.strip().lower() for s in segments)
    return f"{CANONICAL_ORIGIN}/{path}" if path else None


def person_identity(linkedin_url: str | None, email: str | None) -> str:
    """The normalised LinkedIn URL, else the normalised email.

    Raises ``ValueError`` when neither identifies anyone (the webhook refuses such leads).
    """
    identity = normalize_linkedin_url(linkedin_url) or normalize_email(email)
    if identity is None:
        raise ValueError("a person needs a LinkedIn URL or an email")
    return identity
