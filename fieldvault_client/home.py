"""The staff client's folder on this machine (``--home``, mode 0700).

It holds ``session.json`` (server address and bearer token), ``signer.json``
(the pinned org signing public key) and, on an admin's machine,
``signing-key.pem`` (the org signing key, encrypted under their passphrase).
Org private keys are never written: they exist in memory only while a grant
is sealed or a record opened.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

__all__ = ['Home', 'DEFAULT_HOME']

#: Where the client keeps its files unless ``--home`` says otherwise.
DEFAULT_HOME = '~/.fieldvault'


class Home:
    """The client's local folder; every file it writes is readable by its owner only."""

    def __init__(self, path: str) -> None:
        self.path = pathlib.Path(path).expanduser()

    def _file(self, name: str) -> pathlib.Path:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self.path / name

    def read_json(self, name: str) -> dict[str, Any] | None:
        """Return the JSON file ``name``, or None when it does not exist."""
        target = self._file(name)
        return json.loads(target.read_text()) if target.exists() else None

    def write(self, name: str, data: bytes | str) -> None:
        """Write ``name`` with mode 0600, replacing what was there."""
        target = self._file(name)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data.encode() if isinstance(data, str) else data)

    def read_bytes(self, name: str) -> bytes | None:
        """Return the bytes of ``name``, or None when it does not exist."""
        target = self._file(name)
        return target.read_bytes() if target.exists() else None
