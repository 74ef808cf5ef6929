"""Who "me" is, which way each message went, and whom it was exchanged with.

Computed from the store at read time, not at import, so a change to
`[identity]` or `[aliases]` applies at once without re-importing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pandas as pd

from mailnet.addresses import is_automated_address
from mailnet.config import Config, PatternSettings
from mailnet.errors import MailnetError
from mailnet.store import Store
from mailnet.untrusted import clean

FROM_ME = "from_me"
TO_ME = "to_me"


def sent_folders(store: Store, config: Config) -> set[tuple[str, str]]:
    """(source, folder) of the folders that hold my sent mail: by name from
    `[identity] sent_folders`, or because an IMAP server gave them the \\Sent role."""
    pairs = store.db.execute("SELECT DISTINCT source, folder FROM messages").fetchall()
    by_role = store.folders_with_role("\\Sent")
    return {(s, f) for s, f in pairs if (s, f) in by_role or config.identity.is_sent_folder(f)}


def _name_key(name: str) -> str:
    """A display name compared without case, quotes or extra spaces; "" if it is too
    short (one word) to tell a person apart."""
    words = name.replace('"', " ").replace("'", " ").casefold().split()
    return " ".join(words) if len(words) >= 2 else ""


class ContactError(MailnetError):
    """A name that several contacts share."""


def named_contact(names: pd.Series, who: str) -> str | None:
    """The one contact (of the index of `names`, their names as the report shows them)
    called `who`, in any case; None when nobody is. The report lists people by name, so a
    name pasted back must find them; a name several share is a clear error."""
    named = sorted(names.index[names.str.casefold() == who.strip().casefold()])
    if len(named) > 1:
        raise ContactError(f"{len(named)} contacts are called {clean(who)}: give one of "
                           f"{clean(', '.join(named))}")
    return named[0] if named else None


def my_addresses(store: Store, config: Config,
                 sent: set[tuple[str, str]] | None = None) -> frozenset[str]:
    """The configured addresses, every address that sent from a Sent folder (`sent`:
    :func:`sent_folders`, when the caller has it already; an assistant writing from my
    Sent folder writes as me), and any address that sends under my display name."""
    found: set[str] = set(config.identity.addresses)
    sent = sent_folders(store, config) if sent is None else sent
    if sent:
        pairs = ", ".join(["(?, ?)"] * len(sent))
        rows = store.db.execute(
            f"SELECT DISTINCT from_addr FROM messages WHERE (source, folder) IN (VALUES {pairs}) "
            "AND NOT recovered",
            [v for pair in sent for v in pair])
        found.update(a for (a,) in rows if a)
    if found:
        names = store.db.execute(
            "SELECT DISTINCT from_name, from_addr FROM messages WHERE lower(from_name) IN "
            "(SELECT DISTINCT lower(from_name) FROM messages WHERE from_name != '' AND "
            "from_addr IN (SELECT value FROM json_each(?)))", (json.dumps(sorted(found)),))
        names = names.fetchall()
        mine = {_name_key(n) for n, a in names if a in found} - {""}
        found.update(a for n, a in names if _name_key(n) in mine)
    return frozenset(config.canonical(a) for a in found)


@dataclass(frozen=True)
class Exchanges:
    """Messages with their direction, and one row per (message, counterpart)."""

    messages: pd.DataFrame  # one row per stored message, indexed by id
    links: pd.DataFrame  # id, contact, direction (from_me / to_me), addressed (in To)
    me: frozenset[str]
    list_addresses: frozenset[str]


def _canonical(series: pd.Series, config: Config) -> pd.Series:
    if not config.aliases:
        return series
    return series.map(lambda a: config.aliases.get(a, a))


RECOVERED_SLACK = pd.Timedelta(days=1)  # a quoted "Sent:" is in some office's time zone


def _drop_recovered_copies(msgs: pd.DataFrame) -> pd.DataFrame:
    """A recovered original (mailnet.quoted) the mailbox also holds is that message (same
    author and subject, within a day): the stored copy stays, links to it are moved."""
    recovered = msgs["recovered"].astype(bool)
    if not recovered.any():
        return msgs
    rec = msgs.loc[recovered, ["message_id", "from_addr", "thread_subject", "date"]]
    real = msgs.loc[~recovered & msgs["from_addr"].isin(rec["from_addr"]),
                    ["message_id", "from_addr", "thread_subject", "date"]]
    pairs = rec.reset_index().merge(real, on=["from_addr", "thread_subject"],
                                    suffixes=("", "_real"))
    pairs = pairs[(pairs["date"] - pairs["date_real"]).abs() <= RECOVERED_SLACK]
    same = pairs.drop_duplicates("id").set_index("message_id")["message_id_real"]
    msgs = msgs[~msgs.index.isin(pairs["id"])].copy()
    moved = msgs["parent_id"].isin(same.index)
    msgs.loc[moved, "parent_id"] = msgs.loc[moved, "parent_id"].map(same)
    return msgs


def exchanges(store: Store, config: Config) -> Exchanges:
    """Direction and counterparts of every stored message.

    A message is *to me* when I am a recipient, when it answers a message of
    mine, or when it reached my mailbox directly (not through a list). On a
    list, my reply's counterpart is the author of the message I answered.
    """
    sent = sent_folders(store, config)
    me = my_addresses(store, config, sent)
    msgs = pd.read_sql_query(
        """SELECT id, message_id, date, from_name, from_addr, subject, parent_id, list_id,
                  list_post, is_bulk, source, folder, reply_subject, thread_subject, recovered,
                  question, footer, link
           FROM messages""",
        store.db, index_col="id",
    )
    msgs["from_addr"] = _canonical(msgs["from_addr"], config)
    in_sent = pd.Series(False, index=msgs.index)
    for source, folder in sent:  # a few folders, many messages
        in_sent |= (msgs["source"] == source) & (msgs["folder"] == folder)
    in_sent &= msgs["recovered"] == 0  # read from a quote in my reply, it is not mine
    # A list can deliver the same message twice; both copies are stored, one counts: the
    # copy in a Sent folder if there is one (anyone can send me mail that reuses the
    # Message-IDs of my replies, and must not replace them), else the first stored.
    keep = ~msgs.assign(in_sent=in_sent).sort_values("in_sent", ascending=False,
                                                     kind="stable")["message_id"].duplicated()
    keep = keep.reindex(msgs.index)
    # Anyone can also write From: me. Once there is a Sent folder, mail from me outside
    # it is not mine unless a Sent folder holds its Message-ID (then that copy is kept
    # above): it counts for nobody. Without a Sent folder only the address can tell.
    if sent:
        keep &= in_sent | ~msgs["from_addr"].isin(me)
    msgs, in_sent = msgs[keep].copy(), in_sent[keep]
    # The store writes one format: naming it parses a million dates several times faster.
    msgs["date"] = pd.to_datetime(msgs["date"], format="%Y-%m-%dT%H:%M:%SZ", utc=True,
                                  errors="coerce")
    msgs = _drop_recovered_copies(msgs)
    in_sent = in_sent[msgs.index]
    recips = pd.read_sql_query(
        "SELECT message AS id, address, kind = 'to' AS in_to FROM recipients "
        "WHERE kind IN ('to', 'cc')", store.db
    )
    recips["address"] = _canonical(recips["address"], config)
    recips["in_to"] = recips["in_to"].astype(bool)
    # How many people a message went to (To and Cc): a broadcast weighs less.
    msgs["recipients"] = recips.groupby("id").size().reindex(msgs.index, fill_value=0)
    list_addresses = frozenset(msgs["list_post"][msgs["list_post"] != ""].unique())

    authors = msgs.drop_duplicates("message_id").set_index("message_id")["from_addr"]
    msgs["parent_author"] = msgs["parent_id"].map(authors)
    # Whether the message answered is one the mailbox kept (not only read from a quote).
    msgs["recovered"] = msgs["recovered"].astype(bool)
    msgs["parent_kept"] = msgs["parent_id"].isin(msgs.loc[~msgs["recovered"], "message_id"])
    msgs["from_me"] = msgs["from_addr"].isin(me)
    me_recipient = set(recips.loc[recips["address"].isin(me), "id"])
    msgs["to_me_in_to"] = msgs.index.isin(recips.loc[recips["address"].isin(me) & recips["in_to"],
                                                     "id"])
    via_list = (msgs["list_id"] != "") | msgs.index.isin(
        recips.loc[recips["address"].isin(list_addresses), "id"]
    )
    msgs["to_me"] = ~msgs["from_me"] & (
        msgs.index.isin(me_recipient)
        | msgs["parent_author"].isin(me)
        | (~via_list & ~in_sent)
    )
    msgs["via_list"] = via_list

    incoming = msgs.loc[msgs["to_me"], ["from_addr"]].rename(columns={"from_addr": "contact"})
    incoming["direction"] = TO_ME
    # Not knowing who I am, no message can be told to have reached me only by Cc or Bcc.
    incoming["addressed"] = msgs.loc[msgs["to_me"], "to_me_in_to"] | (not me)

    mine = msgs[msgs["from_me"]]
    list_reply = mine["via_list"] & mine["parent_author"].notna() & ~mine["parent_author"].isin(me)
    answered = mine.loc[list_reply, ["parent_author"]].rename(columns={"parent_author": "contact"})
    answered["addressed"] = True
    direct = recips[recips["id"].isin(mine.index[~list_reply])
                    & ~recips["address"].isin(me | list_addresses)]
    # Someone both in To and Cc of one message is addressed.
    direct = direct.sort_values("in_to", ascending=False).drop_duplicates(["id", "address"])
    direct = direct.set_index("id").rename(columns={"address": "contact", "in_to": "addressed"})
    outgoing = pd.concat([answered, direct])
    outgoing["direction"] = FROM_ME

    links = pd.concat([incoming, outgoing]).rename_axis("id").reset_index()
    links = links[links["contact"].astype(bool)]
    return Exchanges(msgs, links, me, list_addresses)


# Names that announce a sender rather than a person, where mail has no List headers.
_BULK_NAME = re.compile(
    r"(announce|newsletter|digest|bulletin|notif|alert|mailer|bounce|reply|confirm|order|"
    r"update|news|info|admin|messaging|broadcast|^dl-|^all[._-]|everyone|team|service|"
    r"support|help|webmaster|report|subscri|list|office|event|promo|deals|feedback|members|"
    r"customer|sales|marketing|offers|specials|rewards)",
    re.IGNORECASE)
MASS_SHARE = 0.5  # a one-way sender whose mail mostly went to many, or not to me in To


def suggest_aliases(ex: Exchanges) -> str:
    """Likely merges as an `[aliases]` table to paste into the config: one display name
    sending from several addresses (the busiest address first). Nothing is merged."""
    msgs = ex.messages[~ex.messages["from_me"] & (ex.messages["from_addr"] != "")]
    named = msgs.assign(key=msgs["from_name"].map(_name_key))
    named = named[named["key"] != ""]
    counts = named.groupby(["key", "from_addr"]).size().reset_index(name="n")
    lines = []
    for _, group in counts.sort_values(["key", "n"], ascending=[True, False]).groupby("key"):
        if len(group) > 1:
            first, *others = group["from_addr"]
            lines.append(f"{json.dumps(first)} = [{', '.join(json.dumps(o) for o in others)}]")
    return "[aliases]\n" + "".join(f"{line}\n" for line in lines) if lines else ""


def contact_kind(address: str, bulk_share: float, list_addresses: frozenset[str],
                 mass_share: float = 0.0, from_them: int = 0, to_them: int = 0,
                 footer_share: float = 0.0) -> str:
    """person, bulk (automated, marketing and announcement senders) or list.

    Without List headers a sender is recognised by behaviour: I never write to them,
    and their mail mostly goes to many people (or to me only in Cc/Bcc), or mostly
    carries an opt-out footer (a mailer's, sent one-to-one), or their address
    reads like a function, not a person."""
    if address in list_addresses:
        return "list"
    if bulk_share > 0.5 or is_automated_address(address):
        return "bulk"
    if to_them == 0 and from_them > 0 and (
            max(mass_share, footer_share) > MASS_SHARE
            or _BULK_NAME.search(address.rpartition("@")[0])):
        return "bulk"
    return "person"


def exchanged_with(ex: Exchanges, who: str, config: Config) -> pd.Series:
    """Ids of the messages exchanged with `who`: an address (aliases merged) or, when it is
    none, a contact's name as the report shows it."""
    key = config.canonical(who)
    if not (ex.links["contact"] == key).any():  # the summary's names only when needed
        key = named_contact(contact_summary(ex).set_index("contact")["name"], who)
    return ex.links.loc[ex.links["contact"] == key, "id"]


def contact_summary(ex: Exchanges,
                    broadcast_recipients: int = PatternSettings.broadcast_recipients
                    ) -> pd.DataFrame:
    """One row per contact: messages from them / to them, first and last date; busiest first."""
    columns = ["contact", "name", "kind", "from_them", "to_them", "total", "first", "last"]
    if ex.links.empty:
        return pd.DataFrame(columns=columns)
    rows = ex.links.join(ex.messages[["date", "is_bulk", "from_name", "recipients"]], on="id")
    rows["from_them"] = rows["direction"] == TO_ME
    rows["to_them"] = rows["direction"] == FROM_ME
    rows["their_name"] = rows["from_name"].where(rows["from_them"] & (rows["from_name"] != ""))
    rows["mass"] = rows["from_them"] & ~(rows["addressed"].astype(bool)
                                         & (rows["recipients"] <= broadcast_recipients))
    grouped = rows.groupby("contact")
    out = pd.DataFrame({
        "from_them": grouped["from_them"].sum().astype(int),
        "to_them": grouped["to_them"].sum().astype(int),
        "first": grouped["date"].min(),
        "last": grouped["date"].max(),
        "bulk_share": grouped["is_bulk"].mean(),
        "mass": grouped["mass"].sum() / grouped["from_them"].sum().clip(lower=1),
        "name": grouped["their_name"].agg(lambda s: s.mode().iat[0] if s.notna().any() else ""),
    }).reset_index()
    out["total"] = out["from_them"] + out["to_them"]
    out["kind"] = [
        contact_kind(a, b, ex.list_addresses, m, f, t) for a, b, m, f, t in zip(
            out["contact"], out["bulk_share"], out["mass"], out["from_them"], out["to_them"],
            strict=True)]
    out = out.sort_values(["total", "last"], ascending=[False, False], kind="stable")
    return out[columns].reset_index(drop=True)
