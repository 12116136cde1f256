"""Local accounts, for a shared workstation with no identity provider: who may open the app.

Names and argon2id hashes of the passwords (argon2-cffi, the Password Hashing Competition's winner with
its recommended parameters) are kept in the workspace's `users.json`; a password itself is never stored or
logged. `dapt users add NAME` creates an account; the app asks for a name and password once any account
exists, and refuses to serve on a network address while neither an account nor an identity provider
(OpenID Connect, ui/sign_in.py) is set up. Who may do what in which project is access.py's (owners,
editors, viewers per project).
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

from .. import atomic
from ..errors import ConfigError

USERS_FILE = "users.json"
MIN_PASSWORD_LENGTH = 10
NAME_PATTERN = re.compile(r"^[\w.@-]{1,64}$")  # letters (any script), digits, . _ @ -

_lock = threading.Lock()


def _hasher():
    try:
        from argon2 import PasswordHasher
    except ImportError:
        raise ConfigError('Accounts need argon2-cffi: pip install "dapt-studio[app]".') from None
    return PasswordHasher()


class Accounts:
    """The accounts of one workspace folder."""

    def __init__(self, workspace_root: str | Path):
        self.path = Path(workspace_root) / USERS_FILE

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigError(f"The accounts file {self.path} cannot be read ({error}); restore it from a backup "
                              "or delete it and add the accounts again with 'dapt users add'.") from None
        users = data.get("users") if isinstance(data, dict) else None
        return {str(name): str(entry["hash"]) for name, entry in (users or {}).items()
                if isinstance(entry, dict) and "hash" in entry}

    def names(self) -> list[str]:
        return sorted(self._read())

    def exist(self) -> bool:
        return bool(self._read())

    def add(self, name: str, password: str, *, replace: bool = False) -> None:
        """Create the account `name` (or give it a new password, with `replace`)."""
        if not NAME_PATTERN.match(name):
            raise ConfigError(f"'{name}' cannot be an account name: use 1-64 letters, digits, '.', '_', '@' or '-'.")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ConfigError(f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters.")
        hashed = _hasher().hash(password)
        with _lock:
            users = self._read()
            if name in users and not replace:
                raise ConfigError(f"There is already an account '{name}'; use --replace to give it a new password.")
            users[name] = hashed
            self._write(users)

    def remove(self, name: str) -> None:
        with _lock:
            users = self._read()
            if name not in users:
                raise ConfigError(f"There is no account '{name}'. Accounts: {', '.join(sorted(users)) or 'none'}.")
            del users[name]
            self._write(users)

    def verify(self, name: str, password: str) -> bool:
        """Whether `password` is `name`'s. An unknown name costs the same time as a wrong password, so the
        answer's timing does not tell which names exist."""
        from argon2.exceptions import InvalidHashError, VerificationError

        hasher = _hasher()
        stored = self._read().get(name)
        try:
            return hasher.verify(stored or _dummy_hash(), password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    def _write(self, users: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_json(self.path, {"format": "dapt-studio-users", "format_version": 1,
                                      "users": {name: {"hash": hashed} for name, hashed in sorted(users.items())}})


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(_hasher().hash("not a password anyone has"))
    return _DUMMY[0]
