"""Email addresses reduced to the one form a contact is counted under."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

import tldextract


@dataclass(frozen=True)
class Address:
    """A display name and a normalised address."""

    name: str
    address: str


def shown(name: str, address: str) -> str:
    """A mailbox as a reader sees it: `Name <address>`, or the bare address."""
    return f"{name} <{address}>" if name else address


# Local parts that mark a machine, not a person, as the sender.
_AUTOMATED_LOCAL = re.compile(
    r"^(no[-_.]?reply|do[-_.]?not[-_.]?reply|donotreply|mailer[-_.]daemon|postmaster|"
    r"bounces?|notifications?|notify|alerts?|automated|auto[-_.]?reply|"
    r"newsletters?|news|marketing|mailman|listserv|majordomo|.*-bounces|.*-request|"
    r"owner-.*|.*-owner)$"
)
# Mail hosts that only robots send from (the first label of the domain).
_AUTOMATED_HOST = re.compile(r"^(mailman|lists?|bounces?|mailer|newsletters?|news|notify|"
                             r"notifications?|alerts?)\.")


def normalise_address(address: str) -> str:
    """Lower-case, trimmed, with any `+tag` sub-address removed."""
    addr = address.strip().strip("<>").strip().lower()
    local, at, domain = addr.rpartition("@")
    if not at:
        return addr
    local = local.split("+", 1)[0] if "+" in local and not local.startswith("+") else local
    return f"{local}@{domain}"


def is_automated_address(address: str) -> bool:
    """True for noreply-style and list-robot senders, and senders on a robot's mail host."""
    local, _, domain = address.rpartition("@")
    return bool(_AUTOMATED_LOCAL.match(local) or _AUTOMATED_HOST.match(domain))


# Mail services anyone can sign up to: two of their users share a domain, not an employer.
_PUBLIC_MAIL = frozenset((
    "gmail.com", "googlemail.com", "yahoo.com", "hotmail.com", "outlook.com", "live.com",
    "msn.com", "aol.com", "icloud.com", "me.com", "mail.com", "gmx.com", "gmx.net", "gmx.de",
    "web.de", "t-online.de", "yandex.ru", "mail.ru", "qq.com", "163.com", "126.com",
    "proton.me", "protonmail.com", "earthlink.net", "juno.com", "excite.com",
    "netscape.net", "compuserve.com", "prodigy.net", "att.net", "comcast.net",
    "sbcglobal.net", "swbell.net", "bellsouth.net", "verizon.net", "cox.net", "rr.com",
))
# The Public Suffix List snapshot tldextract ships: never fetched, never cached on disk.
_SUFFIXES = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=())


@functools.lru_cache(maxsize=1 << 16)
def _registered_domain(host: str) -> str:
    return _SUFFIXES(host).top_domain_under_public_suffix  # a mailbox repeats its domains


def organisation(address: str) -> str:
    """The domain an address's organisation owns (`ect.enron.com` → `enron.com`,
    `mail.example.co.uk` → `example.co.uk`); "" for a public mail service or no domain."""
    org = _registered_domain(address.rpartition("@")[2])
    return "" if org in _PUBLIC_MAIL else org


def is_internal(sender: str, recipients: Iterable[str]) -> bool:
    """True when the sender writes to someone of their own organisation (a colleague's
    mail, not a vendor's pitch or a stranger's spam, which come from outside)."""
    org = organisation(sender)
    return bool(org) and any(organisation(r) == org for r in recipients if r != sender)
