"""When the app must ask who is there: served on a network address, it needs local accounts or an identity
provider. Both the app (ui/sign_in.py, which shows how to set one up) and `dapt app --address` (which refuses to
start) ask here, so the rule is written once.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from pathlib import Path

# Where Streamlit looks for secrets unless its `secrets.files` option says otherwise.
DEFAULT_SECRETS_FILES = (Path.home() / ".streamlit" / "secrets.toml", Path(".streamlit") / "secrets.toml")


def serving_on_network(address: str | None) -> bool:
    """Whether Streamlit's `server.address` lets other machines in (unset: Streamlit listens on every interface)."""
    if not address:
        return True
    try:
        resolved = socket.gethostbyname(address)
    except OSError:
        return True  # cannot tell: assume the worst
    return not ipaddress.ip_address(resolved).is_loopback


def identity_provider_configured(secrets_files: Iterable[str | Path] = DEFAULT_SECRETS_FILES) -> bool:
    """Whether any of Streamlit's secrets files sets up an OpenID Connect provider for st.login: a `client_id`
    directly under [auth] or under one of its [auth.NAME] sections. An unreadable file counts as none."""
    import tomllib  # Python 3.11 and newer, as Streamlit itself needs

    for path in secrets_files:
        try:
            auth = tomllib.loads(Path(path).expanduser().read_text(encoding="utf-8")).get("auth")
        except (OSError, ValueError):
            continue
        if isinstance(auth, dict) and ("client_id" in auth or any(
                isinstance(section, dict) and "client_id" in section for section in auth.values())):
            return True
    return False
