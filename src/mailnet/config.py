"""All of mailnet's settings, read once from one TOML file.

Every stage takes what it needs from a :class:`Config`; nothing else reads
the file or the environment for settings, so `config.example.toml` is the
whole story.
"""

from __future__ import annotations

import ipaddress
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


TLS_MODES = ("implicit", "starttls", "plain")
SPECIAL_USE = ("\\Inbox", "\\Sent", "\\All", "\\Junk", "\\Archive", "\\Flagged")
DEFAULT_FOLDERS = ("\\Inbox", "\\Sent")
_SECRET_KEYS = ("password_env", "password_command", "password_keyring", "oauth2_token_command")
_ACCOUNT_KEYS = frozenset({"host", "port", "tls", "ca_file", "username", "folders",
                           "allow_insecure", "timeout", *_SECRET_KEYS})


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
    only_sales_min: int = 3
    ignores_min_sent: int = 3
    ignores_share: float = 0.6
    resurface_silence_days: float = 90.0
    resurface_min: int = 2
    resurface_request_share: float = 0.75
    lost_touch_min_messages: int = 6
    lost_touch_factor: float = 4.0
    lost_touch_min_days: float = 90.0
    lost_touch_min_direct: int = 3
    ally_min_each: int = 1
    ally_min_reply_rate: float = 0.5
    ally_exchange_share: float = 0.35
    ally_min_direct: int = 6
    ally_balance: float = 0.25
    broadcast_recipients: int = 5
    coverage_min_messages: int = 1
    coverage_min_share: float = 0.15
    coverage_min_replies: int = 10
    coverage_replies_seen_share: float = 0.8
    stale_after_days: float = 30.0
    change_min_quarters: int = 3
    change_min_messages: float = 3.0
    change_share: float = 0.5
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
class Account:
    """One `[accounts.NAME]` table: where the mailbox is, how to log in, which folders to read.

    Secrets are never stored here, only where to get them (an environment
    variable, a command, the keyring), so a Config can be printed or logged.
    """

    name: str
    host: str
    username: str
    port: int
    tls: str = "implicit"
    ca_file: Path | None = None
    # Folder names, or RFC 6154 roles such as "\\Sent" (resolved on the server).
    folders: tuple[str, ...] = DEFAULT_FOLDERS
    password_env: str | None = None
    password_command: str | None = None
    password_keyring: bool = False
    oauth2_token_command: str | None = None
    allow_insecure: bool = False
    timeout: float = 60.0

    @property
    def folders_are_default(self) -> bool:
        return self.folders == DEFAULT_FOLDERS


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _role(folder: str) -> str:
    """`\\sent` → `\\Sent`: roles are case-insensitive in the config, as in RFC 6154."""
    return "\\" + folder[1:].capitalize()


def _account(name: str, table: Any) -> Account:
    """Validate one account table, naming the key to fix in every error."""
    where = f"[accounts.{name}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(table) - _ACCOUNT_KEYS)
    if unknown:
        raise ConfigError(f"{where} unknown key {unknown[0]!r}; known keys: "
                          f"{', '.join(sorted(_ACCOUNT_KEYS))}")
    for key in ("host", "username"):
        if not isinstance(table.get(key), str) or not table[key].strip():
            raise ConfigError(f"{where} needs {key} = \"...\"")
    tls = table.get("tls", "implicit")
    if tls not in TLS_MODES:
        raise ConfigError(f"{where} tls must be one of {', '.join(TLS_MODES)}, not {tls!r}")
    port = table.get("port", 993 if tls == "implicit" else 143)
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"{where} port must be a number between 1 and 65535")
    allow_insecure = table.get("allow_insecure", False)
    if tls == "plain" and not is_loopback(table["host"]) and allow_insecure is not True:
        raise ConfigError(f"{where} tls = \"plain\" sends the password unencrypted; it is "
                          "allowed only for a loopback host, unless allow_insecure = true")
    secrets = [key for key in _SECRET_KEYS if table.get(key)]
    if len(secrets) != 1:
        raise ConfigError(f"{where} needs exactly one of {', '.join(_SECRET_KEYS)}"
                          + (f" (found {', '.join(secrets)})" if secrets else ""))
    folders = table.get("folders", list(DEFAULT_FOLDERS))
    if isinstance(folders, str):
        folders = [folders]
    if not isinstance(folders, list) or not folders or not all(
        isinstance(f, str) and f for f in folders
    ):
        raise ConfigError(f"{where} folders must be a list of folder names or roles "
                          f"({', '.join(SPECIAL_USE)})")
    folders = [_role(f) if f.startswith("\\") else f for f in folders]
    for folder in folders:
        if folder.startswith("\\") and folder not in SPECIAL_USE:
            raise ConfigError(f"{where} unknown folder role {folder!r}; "
                              f"known roles: {', '.join(SPECIAL_USE)}")
    timeout = table.get("timeout", 60.0)
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(f"{where} timeout must be a number of seconds > 0")
    ca_file = table.get("ca_file")
    return Account(
        name=name, host=table["host"].strip(), username=table["username"], port=port, tls=tls,
        ca_file=Path(ca_file).expanduser() if ca_file else None,
        folders=tuple(folders),
        password_env=table.get("password_env"),
        password_command=table.get("password_command"),
        password_keyring=table.get("password_keyring") is True,
        oauth2_token_command=table.get("oauth2_token_command"),
        allow_insecure=allow_insecure is True, timeout=float(timeout),
    )


@dataclass(frozen=True)
class Config:
    db_path: Path = field(default_factory=default_db_path)
    identity: Identity = field(default_factory=Identity)
    # alias address -> canonical address, both normalised
    aliases: dict[str, str] = field(default_factory=dict)
    import_workers: int = 0  # 0: one per core
    accounts: dict[str, Account] = field(default_factory=dict)
    patterns: PatternSettings = field(default_factory=PatternSettings)
    classify: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    def canonical(self, address: str) -> str:
        """The address a contact is known by, after normalising and alias merging."""
        addr = normalise_address(address)
        return self.aliases.get(addr, addr)


@dataclass(frozen=True)
class ClassifySettings:
    """The [classify] table: which intent model tags messages."""

    # A model directory or .skops file; None: the user's trained model if there is
    # one (see `mailnet train`), else the default model shipped with mailnet.
    model: Path | None = None

    @staticmethod
    def user_model_dir() -> Path:
        return Path(platformdirs.user_data_dir(APP)) / "model"

    def model_path(self) -> Path | None:
        """The model to use; None means the shipped default."""
        if self.model is not None:
            return self.model
        user = self.user_model_dir()
        return user if (user / "intent.skops").exists() else None


def classify_settings(config: Config) -> ClassifySettings:
    """The typed [classify] settings of a config."""
    table = config.classify
    unknown = sorted(set(table) - {"model"})
    if unknown:
        raise ConfigError(f"[classify] unknown setting(s): {', '.join(unknown)}")
    model = table.get("model")
    if model is not None and not isinstance(model, str):
        raise ConfigError("[classify] model must be a path")
    return ClassifySettings(model=Path(model).expanduser() if model else None)


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
        accounts={name: _account(name, table)
                  for name, table in data.get("accounts", {}).items()},
        patterns=PatternSettings.from_table(data.get("patterns", {})),
        classify=data.get("classify", {}),
        source=path if path.exists() else None,
    )
