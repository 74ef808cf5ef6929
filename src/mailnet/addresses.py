"""Email addresses reduced to the one form a contact is counted under."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Address:
    """A display name and a normalised address."""

    name: str
    address: str


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
