"""Files mailnet writes are a digest of the user's mail: only the user may read them."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> None:
    """Create `path` (and missing parents) readable by the user alone; an existing one is kept."""
    if not path.exists():
        path.mkdir(parents=True, mode=DIR_MODE)
        path.chmod(DIR_MODE)  # mkdir's mode is masked by the umask


def private_file(path: Path) -> None:
    """Create `path` empty if it is missing, and make it readable by the user alone."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    with contextlib.suppress(PermissionError):  # a file of someone else's, shared on purpose
        path.chmod(FILE_MODE)


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path`, readable by the user alone from its first byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    with contextlib.suppress(PermissionError):
        path.chmod(FILE_MODE)
