"""Who may open the app: served on this machine only unless accounts exist (dapt_core.studio.accounts).

The app listens on 127.0.0.1 (.streamlit/config.toml), so only this machine's browser reaches it. Served on a
network address (`--server.address 0.0.0.0`, `dapt app --address ...`), anyone on the network would reach
every project, so the app then shows only how to create accounts until one exists; once any account exists,
every session signs in first. TLS belongs to a reverse proxy in front (README, "Sharing on a network").
"""

from __future__ import annotations

import ipaddress
import socket
import time

import streamlit as st

from dapt_core.errors import DaptError
from dapt_core.studio.accounts import Accounts
from ui import state
from ui.i18n import t

USER_KEY = "signed-in-user"
FAILED_WAIT_SECONDS = 1.0  # each wrong password costs this long: guessing stays slow


def current_user() -> str | None:
    """The signed-in user of this session (an account name, or an identity provider's user), or None on a
    machine without sign-in (the local default: one person, as on a laptop)."""
    return st.session_state.get(USER_KEY)


def serving_on_network(address: str | None) -> bool:
    """Whether Streamlit's `server.address` lets other machines in (unset: Streamlit listens on every interface)."""
    if not address:
        return True
    try:
        resolved = socket.gethostbyname(address)
    except OSError:
        return True  # cannot tell: assume the worst
    return not ipaddress.ip_address(resolved).is_loopback


def require_sign_in() -> str | None:
    """Stop the page unless this session may go on; the signed-in user's name, or None on a machine without
    accounts (the local default: one person, as on a laptop)."""
    accounts = Accounts(state.workspace().root)
    try:
        exist = accounts.exist()
    except DaptError as error:
        st.error(str(error), icon=":material/lock:")
        st.stop()
    if not exist:
        if serving_on_network(st.get_option("server.address")):
            st.title(t("signin.title"))
            st.error(t("signin.network_without_accounts", address=st.get_option("server.address") or "0.0.0.0"),
                     icon=":material/lock:")
            st.code("dapt users add YOUR_NAME", language="bash")
            st.stop()
        return None
    user = st.session_state.get(USER_KEY)
    if user in accounts.names():
        st.sidebar.caption(t("signin.signed_in_as", name=user))
        if st.sidebar.button(t("signin.sign_out"), key="sign-out", icon=":material/logout:"):
            st.session_state.pop(USER_KEY, None)
            st.rerun()
        return user
    st.title(t("signin.title"))
    with st.form("sign-in", clear_on_submit=True):
        name = st.text_input(t("signin.name"), key="sign-in-name")
        password = st.text_input(t("signin.password"), type="password", key="sign-in-password")
        submitted = st.form_submit_button(t("signin.submit"), type="primary")
    if submitted:
        st.session_state.pop("sign-in-password", None)  # the password does not stay in the session
        if accounts.verify(name.strip(), password):
            st.session_state[USER_KEY] = name.strip()
            st.rerun()
        time.sleep(FAILED_WAIT_SECONDS)
        st.error(t("signin.wrong"), icon=":material/lock:")
    st.stop()
