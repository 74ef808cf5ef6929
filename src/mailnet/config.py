"""All of mailnet's settings, read once from one TOML file.

Every stage takes what it needs from a :class:`Config`; nothing else reads
the file or the environment for settings, so `config.example.toml` is the
whole story.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs

from mailnet.addresses import normalise_address
from mailnet.errors import MailnetError

APP = "mailnet"

DEFAULT_SENT_FOLDERS = (
    "Sent",
    "Sent Items",
    "Sent Messages",
    "Sent Mail",
    "[Gmail]/Sent Mail",
    "INBOX.Sent",
    "Gesendet",
    "Envoyés",
    "Enviados",
    "Inviati",
)


class ConfigError(MailnetError):
    """The configuration file is missing, unreadable or holds a wrong value."""


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP)) / "config.toml"


def default_db_path() -> Path:
    return Path(platformdirs.user_data_dir(APP)) / "mailnet.db"


@dataclass(frozen=True)
class Identity:
    """Who "me" is: the configured addresses and the folders that hold sent mail."""

    addresses: frozenset[str] = frozenset()
    sent_folders: tuple[str, ...] = DEFAULT_SENT_FOLDERS

    def is_sent_folder(self, folder: str) -> bool:
        name = folder.casefold()
        return any(name == f.casefold() or name.endswith("/" + f.casefold())
                   for f in self.sent_folders)


PATTERNS = (
    "only_asks", "gives_more", "never_thanks", "vanishes", "only_sales",
    "ignores_you", "surfaces_in_need", "lost_touch", "ally",
)


@dataclass(frozen=True)
class PatternSettings:
    """Thresholds of the reciprocity patterns (`[patterns]`); config.example.toml explains each."""

    min_messages: int = 4
    max_evidence: int = 5
    reply_grace_days: float = 14.0
    only_asks_min_requests: int = 3
    only_asks_share: float = 0.75
    only_asks_max_offer_share: float = 0.1
    gives_more_min_offers: int = 3
    gives_more_ratio: float = 2.0
    never_thanks_min_help: int = 3
    vanishes_min: int = 2
    vanishes_share: float = 0.6
    only_sales_share: float = 0.9
    ignores_min_sent: int = 3
    ignores_share: float = 0.6
    resurface_silence_days: float = 90.0
    resurface_min: int = 2
    resurface_request_share: float = 0.75
    lost_touch_min_messages: int = 6
    lost_touch_factor: float = 4.0
    lost_touch_min_days: float = 60.0
    ally_min_each: int = 1
    ally_min_reply_rate: float = 0.5
    prune: tuple[str, ...] = (
        "only_asks", "gives_more", "never_thanks", "vanishes", "only_sales",
        "ignores_you", "surfaces_in_need",
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "prune":
                unknown = sorted(set(value) - set(PATTERNS))
                if unknown:
                    raise ConfigError(f"[patterns] prune: unknown pattern(s) {', '.join(unknown)}; "
                                      f"choose from {', '.join(PATTERNS)}")
            elif value < 0:
                raise ConfigError(f"[patterns] {f.name} must be ≥ 0, not {value}")
            elif f.name.endswith(("_share", "_rate")) and value > 1:
                raise ConfigError(f"[patterns] {f.name} is a share: between 0 and 1, not {value}")

    @classmethod
    def from_table(cls, table: dict[str, Any]) -> PatternSettings:
        """Typed settings from the raw `[patterns]` table; unknown keys and wrong types fail."""
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key not in known:
                raise ConfigError(f"[patterns] unknown key {key!r}; known keys: {', '.join(known)}")
            default = getattr(cls, key)
            if key == "prune":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ConfigError("[patterns] prune must be a list of pattern names")
                value = tuple(value)
            elif isinstance(value, bool) or not isinstance(value, int | float) or (
                    isinstance(default, int) and not isinstance(value, int)):
                kind = "a whole number" if isinstance(default, int) else "a number"
                raise ConfigError(f"[patterns] {key} must be {kind}, not {value!r}")
            values[key] = value
        return cls(**values)


@dataclass(frozen=True)
class Config:
    db_path: Path = field(default_factory=default_db_path)
    identity: Identity = field(default_factory=Identity)
    # alias address -> canonical address, both normalised
    aliases: dict[str, str] = field(default_factory=dict)
    import_workers: int = 0  # 0: one per core
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    patterns: PatternSettings = field(default_factory=PatternSettings)
    classify: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    def canonical(self, address: str) -> str:
        """The address a contact is known by, after normalising and alias merging."""
        addr = normalise_address(address)
        return self.aliases.get(addr, addr)


def _aliases(table: dict[str, Any]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for canonical, others in table.items():
        if isinstance(others, str):
            others = [others]
        if not isinstance(others, list):
            raise ConfigError(f"[aliases] {canonical!r} must be a list of addresses")
        target = normalise_address(canonical)
        for other in others:
            merged[normalise_address(str(other))] = target
    return merged


def load_config(path: Path | None = None, *, db: Path | None = None) -> Config:
    """Read the config file (the default one only if it exists); `db` overrides the store path."""
    explicit = path is not None
    path = path or default_config_path()
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from None
    elif explicit:
        raise ConfigError(f"config file not found: {path}")

    ident = data.get("identity", {})
    identity = Identity(
        addresses=frozenset(normalise_address(a) for a in ident.get("addresses", [])),
        sent_folders=tuple(ident.get("sent_folders", DEFAULT_SENT_FOLDERS)),
    )
    store = data.get("store", {})
    db_path = db or (Path(store["path"]).expanduser() if "path" in store else default_db_path())
    workers = data.get("import", {}).get("workers", 0)
    if not isinstance(workers, int) or workers < 0:
        raise ConfigError("[import] workers must be a whole number ≥ 0")
    return Config(
        db_path=db_path,
        identity=identity,
        aliases=_aliases(data.get("aliases", {})),
        import_workers=workers,
        accounts=data.get("accounts", {}),
        patterns=PatternSettings.from_table(data.get("patterns", {})),
        classify=data.get("classify", {}),
        source=path if path.exists() else None,
    )
