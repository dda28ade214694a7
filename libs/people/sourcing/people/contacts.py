"""Contact rules (manual §9): who may only be reached at a professional email, and which email
domains are personal (free-mail, ISP and privacy mailboxes). Pure functions, no I/O.

Region rule: experts in Canada, Great Britain, Australia and every European country get
professional emails only. "European country" here means the UN M49 region Europe (which
includes Russia and the Crown dependencies), plus Cyprus (an EU member that M49 files under
Western Asia) and Kosovo (no M49 code). Transcontinental countries whose territory and
population lie mainly in Asia (Turkey, Georgia, Armenia, Azerbaijan, Kazakhstan) are not in the
list; Greenland (geographically North America) is not either. The list is deliberately a set of
ISO 3166-1 alpha-2 codes so a change is one line and a test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final, TypeVar

T = TypeVar("T")

EU_COUNTRIES: Final = frozenset(
    {
        "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
        "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
    }
)  # fmt: skip
# EEA members outside the EU, Switzerland and the United Kingdom.
EEA_EFTA_UK: Final = frozenset({"IS", "LI", "NO", "CH", "GB"})
# The rest of Europe: microstates, the Western Balkans, Eastern Europe, dependencies.
OTHER_EUROPE: Final = frozenset(
    {
        "AD", "MC", "SM", "VA",  # microstates
        "AL", "BA", "ME", "MK", "RS", "XK",  # Western Balkans (XK: Kosovo, user-assigned code)
        "BY", "MD", "UA", "RU",  # Eastern Europe
        "AX", "FO", "GG", "GI", "IM", "JE", "SJ",  # Åland, Faroe, Crown dependencies, ...
    }
)  # fmt: skip
EUROPEAN_COUNTRIES: Final = EU_COUNTRIES | EEA_EFTA_UK | OTHER_EUROPE
PROFESSIONAL_EMAIL_ONLY_COUNTRIES: Final = EUROPEAN_COUNTRIES | {"CA", "AU"}

# Non-ISO spellings seen in lead data, mapped to ISO 3166-1 alpha-2.
_COUNTRY_ALIASES: Final = {"UK": "GB", "EL": "GR"}

# Personal mailbox domains: free-mail, ISP, privacy and relay services. A subdomain of one of
# these (e.g. `privaterelay.appleid.com`, `mail.yahoo.co.uk`) counts as personal too.
PERSONAL_EMAIL_DOMAINS: Final = frozenset(
    {
        # Google, Microsoft, Apple, Yahoo, AOL (regional variants are also covered by
        # _PERSONAL_BRANDS below)
        "gmail.com", "googlemail.com",
        "outlook.com", "hotmail.com", "live.com", "msn.com", "passport.com", "windowslive.com",
        "icloud.com", "me.com", "mac.com", "privaterelay.appleid.com",
        "yahoo.com", "ymail.com", "rocketmail.com", "aol.com", "aim.com", "verizon.net",
        # privacy-first and independent providers
        "proton.me", "protonmail.com", "protonmail.ch", "pm.me",
        "tutanota.com", "tutanota.de", "tutamail.com", "tuta.io", "tuta.com", "keemail.me",
        "fastmail.com", "fastmail.fm", "hey.com", "hushmail.com", "runbox.com", "posteo.de",
        "posteo.net", "mailbox.org", "disroot.org", "riseup.net", "duck.com", "mailfence.com",
        "zoho.com", "zohomail.com", "zohomail.eu", "gmx.com", "gmx.net", "mail.com",
        "email.com", "usa.com", "inbox.com", "lycos.com", "yandex.com", "yandex.ru", "ya.ru",
        # Europe: ISPs and national free-mail
        "web.de", "t-online.de", "freenet.de", "arcor.de",
        "orange.fr", "wanadoo.fr", "free.fr", "sfr.fr", "neuf.fr", "laposte.net", "bbox.fr",
        "btinternet.com", "btopenworld.com", "sky.com", "virginmedia.com", "ntlworld.com",
        "talktalk.net", "blueyonder.co.uk", "tiscali.co.uk", "plus.net",
        "libero.it", "virgilio.it", "alice.it", "tin.it", "tiscali.it", "fastwebnet.it",
        "telenet.be", "skynet.be", "proximus.be", "ziggo.nl", "kpnmail.nl", "home.nl",
        "planet.nl", "hetnet.nl", "chello.nl", "casema.nl", "bluewin.ch", "hispeed.ch",
        "sunrise.ch", "gmx.ch", "gmx.at", "chello.at", "aon.at", "online.no",
        "sapo.pt", "terra.es", "telefonica.net", "seznam.cz", "centrum.cz", "email.cz",
        "atlas.cz", "post.cz", "azet.sk", "zoznam.sk", "wp.pl", "o2.pl", "interia.pl",
        "onet.pl", "op.pl", "gazeta.pl", "freemail.hu", "citromail.hu", "abv.bg", "mail.bg",
        "ukr.net", "i.ua", "meta.ua", "mail.ru", "inbox.ru", "list.ru", "bk.ru", "rambler.ru",
        "inbox.lv", "mail.ee", "suomi24.fi",
        # North America and Oceania: ISPs
        "comcast.net", "att.net", "sbcglobal.net", "bellsouth.net", "cox.net", "charter.net",
        "earthlink.net", "optonline.net", "frontier.com", "juno.com", "netzero.net",
        "shaw.ca", "rogers.com", "sympatico.ca", "videotron.ca", "telus.net", "bell.net",
        "bigpond.com", "bigpond.net.au", "optusnet.com.au", "iinet.net.au", "tpg.com.au",
        "internode.on.net", "xtra.co.nz",
        # Asia and Latin America
        "qq.com", "foxmail.com", "163.com", "126.com", "yeah.net", "sina.com", "sina.cn",
        "sohu.com", "aliyun.com", "139.com", "naver.com", "daum.net", "hanmail.net",
        "nate.com", "kakao.com", "docomo.ne.jp", "ezweb.ne.jp", "au.com", "softbank.ne.jp",
        "i.softbank.jp", "nifty.com", "biglobe.ne.jp", "ocn.ne.jp", "rediffmail.com",
        "uol.com.br", "bol.com.br", "terra.com.br", "ig.com.br",
    }
)  # fmt: skip

# Brands whose mailbox is personal under any country suffix: yahoo.fr, hotmail.co.uk,
# outlook.de, live.nl, gmx.at, aol.co.uk, yandex.kz, ...
_PERSONAL_BRANDS: Final = frozenset(
    {"yahoo", "ymail", "hotmail", "outlook", "live", "msn", "aol", "gmx", "yandex", "gmail"}
)
# Second-level labels under which a brand sits in a country domain: hotmail.co.uk, yahoo.com.au.
_SECOND_LEVEL_LABELS: Final = frozenset({"co", "com", "net", "org", "ne", "or"})
# Two-letter TLDs sold as generic ones: a company at live.io or outlook.ai is not a mailbox.
_GENERIC_CCTLDS: Final = frozenset({"ai", "co", "fm", "gg", "io", "ly", "me", "so", "tv"})


def normalize_country(country_iso: str | None) -> str | None:
    """Upper-case ISO 3166-1 alpha-2, mapping the usual non-ISO spellings (UK, EL)."""
    if not country_iso:
        return None
    code = country_iso.strip().upper()
    return _COUNTRY_ALIASES.get(code, code) or None


def requires_professional_email(country_iso: str | None) -> bool:
    """True for experts in Canada, Australia and every European country (GB included).

    An unknown country imposes nothing: the rule applies only where we know it does.
    """
    code = normalize_country(country_iso)
    return code is not None and code in PROFESSIONAL_EMAIL_ONLY_COUNTRIES


def email_domain(address: str) -> str | None:
    """The lower-case domain of an address (without a trailing dot), or None if there is none."""
    _, at, domain = address.strip().rpartition("@")
    domain = domain.strip().strip(".").lower()
    return domain if at and domain else None


def is_personal_email_domain(domain: str) -> bool:
    """True for a personal mailbox domain or any subdomain of one."""
    labels = domain.strip().strip(".").lower().split(".")
    # Exact domain or a parent of it: mail.yahoo.co.uk -> yahoo.co.uk -> co.uk -> uk.
    for start in range(len(labels) - 1):
        if ".".join(labels[start:]) in PERSONAL_EMAIL_DOMAINS:
            return True
    # Brand under a country suffix: <brand>.<cc> or <brand>.<co|com|...>.<cc>.
    country_tld = len(labels[-1]) == 2 and labels[-1] not in _GENERIC_CCTLDS
    if not country_tld:
        return False
    if len(labels) >= 2 and labels[-2] in _PERSONAL_BRANDS:
        return True
    return (
        len(labels) >= 3 and labels[-3] in _PERSONAL_BRANDS and labels[-2] in _SECOND_LEVEL_LABELS
    )


def is_personal_email(address: str) -> bool:
    """True when the address is at a personal mailbox provider (gmail, outlook, yahoo, ...).

    An address without a domain is not "personal" (it is not an email at all; callers
    validate addresses separately).
    """
    domain = email_domain(address)
    return domain is not None and is_personal_email_domain(domain)


def region_refusal(country_iso: str | None, address: str) -> str | None:
    """Why the region rule forbids emailing an expert in ``country_iso`` at ``address`` (a
    personal mailbox where only professional addresses may be used), or None when it allows it.
    """
    if not requires_professional_email(country_iso) or not is_personal_email(address):
        return None
    return (
        f"experts in {normalize_country(country_iso)} may be emailed at professional addresses "
        f"only; {email_domain(address)} is a personal mailbox provider"
    )


def filter_emails_for_region(
    emails: Iterable[T],
    country_iso: str | None,
    *,
    address_of: Callable[[T], str] | None = None,
    labelled_personal: Callable[[T], bool] | None = None,
) -> list[T]:
    """The emails an expert in `country_iso` may be contacted at, in their original order.

    Where the region rule applies, personal addresses are dropped: those at a personal domain
    and, when `labelled_personal` is given, those a provider labelled personal. Elsewhere every
    email is kept. `address_of` extracts the address from richer objects (default: ``str``).
    """
    items = list(emails)
    if not requires_professional_email(country_iso):
        return items
    extract = address_of or str
    return [
        item
        for item in items
        if not is_personal_email(extract(item))
        and not (labelled_personal is not None and labelled_personal(item))
    ]
