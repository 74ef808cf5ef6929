"""All of mailnet's settings, read once from one TOML file.

Every stage takes what it needs from a :class:`Config`; nothing else reads
the file or the environment for settings, so `config.example.toml` is the
whole story.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Config:
    db_path: Path = field(default_factory=default_db_path)
    identity: Identity = field(default_factory=Identity)
    # alias address -> canonical address, both normalised
    aliases: dict[str, str] = field(default_factory=dict)
    import_workers: int = 0  # 0: one per core
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    patterns: dict[str, Any] = field(default_factory=dict)
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
        accounts=data.get("accounts", {}),
        patterns=data.get("patterns", {}),
        classify=data.get("classify", {}),
        source=path if path.exists() else None,
    )
