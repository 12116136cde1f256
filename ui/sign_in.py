"""Who may open the app: served on this machine only unless sign-in is set up.

Two ways to sign in, either or both:
- an OpenID Connect identity provider (Keycloak, Entra ID, Authentik, ...) through Streamlit's st.login, set up
  in Streamlit's `[auth]` secrets (.streamlit/secrets.toml); the session's user is the ID token's `email`
  claim, else its `sub`, or the claim named by `user_claim` under `[dapt]` in the same secrets;
- local accounts (dapt_core.studio.accounts), made with `dapt users add`, for a workstation with no provider.

The app listens on 127.0.0.1 (.streamlit/config.toml), so only this machine's browser reaches it. Served on a
network address (`--server.address 0.0.0.0`, `dapt app --address ...`), anyone on the network would reach
every project, so the app then shows only how to set sign-in up until one of the two is; once either is,
every session signs in first. TLS belongs to a reverse proxy in front (README, "Sharing on a network").
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from urllib.parse import urlparse

import streamlit as st

from dapt_core.errors import DaptError
from dapt_core.studio.accounts import Accounts
from dapt_core.studio.sign_in_policy import serving_on_network  # noqa: F401 (the tests import it here)
from ui import state
from ui.i18n import t
from ui.plain_text import as_text

USER_KEY = "signed-in-user"
# how USER_KEY was signed in: LOCAL_ACCOUNT or an identity provider's name; each is checked again on every run
# by the way it signed in. A provider's user named like a local account is refused (_provider_user).
SIGNED_IN_THROUGH_KEY = "signed-in-through"
LOCAL_ACCOUNT = "local account"
FAILED_WAIT_SECONDS = 1.0  # each wrong password costs this long: guessing stays slow

# Streamlit's names for the settings of one provider (streamlit.auth_util.validate_auth_credentials)
PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")
SHARED_AUTH_KEYS = ("redirect_uri", "cookie_secret")
DEFAULT_PROVIDER = "default"  # Streamlit's name for a provider given directly in [auth]
# The ID token claims that name the user, first present wins: an e-mail address is what colleagues recognise
# in an audit log; `sub` (the provider's stable id) is in every ID token.
IDENTITY_CLAIMS = ("email", "sub")


def current_user() -> str | None:
    """The signed-in user of this session (an account name, or an identity provider's user), or None on a
    machine without sign-in (the local default: one person, as on a laptop)."""
    return st.session_state.get(USER_KEY)


def _secrets_section(name: str) -> Mapping:
    """One section of Streamlit's secrets (st.secrets: .streamlit/secrets.toml or the `secrets.files` option),
    empty when there are no secrets at all."""
    if not st.secrets.load_if_toml_exists():
        return {}
    section = st.secrets.get(name)
    return section if isinstance(section, Mapping) else {}


def identity_providers() -> list[str]:
    """The OpenID Connect providers set up in Streamlit's `[auth]` secrets, as st.login names them: "default"
    for client_id etc. directly under [auth], and the name of each `[auth.NAME]` section."""
    auth = _secrets_section("auth")
    providers = [DEFAULT_PROVIDER] if any(key in auth for key in PROVIDER_KEYS) else []
    return providers + [name for name, section in auth.items()
                        if isinstance(section, Mapping) and any(key in section for key in PROVIDER_KEYS)]


def missing_provider_settings(provider: str) -> list[str]:
    """The settings st.login(provider) needs that the secrets lack (Streamlit would refuse with an exception)."""
    auth = _secrets_section("auth")
    section = auth if provider == DEFAULT_PROVIDER else auth.get(provider, {})
    return ([f"[auth] {key}" for key in SHARED_AUTH_KEYS if not auth.get(key)]
            + [f"[auth{'' if provider == DEFAULT_PROVIDER else '.' + provider}] {key}"
               for key in PROVIDER_KEYS if not section.get(key)])


def provider_label(provider: str) -> str:
    """How the sign-in button names a provider: its section's name, or for [auth] itself the provider's host."""
    if provider != DEFAULT_PROVIDER:
        return provider[:1].upper() + provider[1:]
    return urlparse(str(_secrets_section("auth").get("server_metadata_url", ""))).netloc or provider


def identity_of(claims: Mapping) -> str | None:
    """The user an identity provider signed in: the claim named by `[dapt] user_claim`, else the first of
    IDENTITY_CLAIMS the ID token holds."""
    wanted = _secrets_section("dapt").get("user_claim")
    for claim in [wanted] if wanted else IDENTITY_CLAIMS:
        value = claims.get(claim)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _provider_user(providers: list[str], local_names: list[str]) -> str | None:
    """The identity provider's user of this session (from Streamlit's identity cookie), or None. A provider's
    user named like one of `local_names` (the local accounts) is refused: members are kept by name alone, so
    they would share that account's projects and roles."""
    if not providers:
        return None
    claims = st.user.to_dict()
    provider = claims.get("provider", DEFAULT_PROVIDER)
    # an identity cookie (kept 30 days) from a provider that has since been taken out of the secrets no longer counts
    if not claims.get("is_logged_in") or provider not in providers:
        return None
    identity = identity_of(claims)
    if identity is None:
        wanted = _secrets_section("dapt").get("user_claim") or " / ".join(IDENTITY_CLAIMS)
        _refuse_provider_user(t("signin.no_identity_claim", claim=wanted), "sign-out-unknown")
    if identity in local_names:
        _refuse_provider_user(t("signin.provider_name_taken", provider=provider_label(provider),
                                name=as_text(identity)), "sign-out-name-taken")
    st.session_state[USER_KEY] = identity
    st.session_state[SIGNED_IN_THROUGH_KEY] = provider
    return identity


def _refuse_provider_user(message: str, key: str) -> None:
    """Stop the page for a user the provider signed in but the app cannot take, saying why, with a way out."""
    st.error(message, icon=":material/lock:")
    if st.button(t("signin.sign_out"), key=key, icon=":material/logout:"):
        st.logout()
    st.stop()


def _sign_out() -> None:
    through = st.session_state.pop(SIGNED_IN_THROUGH_KEY, None)
    st.session_state.pop(USER_KEY, None)
    if through not in (None, LOCAL_ACCOUNT):
        st.logout()  # clears Streamlit's identity cookie, and the provider's session where it offers that
        st.stop()
    st.rerun()


def _provider_buttons(providers: list[str]) -> None:
    for provider in providers:
        missing = missing_provider_settings(provider)
        if missing:  # st.login would raise: say which settings to add instead
            st.error(t("signin.provider_incomplete", provider=provider_label(provider), keys=", ".join(missing)),
                     icon=":material/settings:")
            continue
        if st.button(t("signin.with_provider", provider=provider_label(provider)), key=f"sign-in-{provider}",
                     type="primary", icon=":material/login:"):
            st.login(provider)


def require_sign_in() -> str | None:
    """Stop the page unless this session may go on; the signed-in user's name, or None on a machine without
    sign-in (the local default: one person, as on a laptop)."""
    accounts = Accounts(state.workspace().root)
    try:
        names = accounts.names()  # read once per run: every page of every session comes through here
    except DaptError as error:
        st.error(str(error), icon=":material/lock:")
        st.stop()
    exist = bool(names)
    providers = identity_providers()
    if not exist and not providers:
        if serving_on_network(st.get_option("server.address")):
            st.title(t("signin.title"))
            st.error(t("signin.network_without_accounts", address=st.get_option("server.address") or "0.0.0.0"),
                     icon=":material/lock:")
            st.code("dapt users add YOUR_NAME", language="bash")
            st.stop()
        return None
    user = _provider_user(providers, names)
    # a session signed in before SIGNED_IN_THROUGH_KEY existed (or by a test's session_state) holds a local name
    if user is None and st.session_state.get(SIGNED_IN_THROUGH_KEY, LOCAL_ACCOUNT) == LOCAL_ACCOUNT:
        user = st.session_state.get(USER_KEY)
        if user not in names:  # the account was removed meanwhile
            user = None
    if user is not None:
        # a provider's user name can be any text, and an e-mail address would become a mailto: link
        st.sidebar.caption(t("signin.signed_in_as", name=as_text(user)))
        if st.sidebar.button(t("signin.sign_out"), key="sign-out", icon=":material/logout:"):
            _sign_out()
        return user
    st.session_state.pop(USER_KEY, None)
    st.session_state.pop(SIGNED_IN_THROUGH_KEY, None)
    st.title(t("signin.title"))
    _provider_buttons(providers)
    if not exist:
        st.stop()
    if providers:
        st.caption(t("signin.with_account"))
    with st.form("sign-in", clear_on_submit=True):
        name = st.text_input(t("signin.name"), key="sign-in-name")
        password = st.text_input(t("signin.password"), type="password", key="sign-in-password")
        submitted = st.form_submit_button(t("signin.submit"), type="primary")
    if submitted:
        st.session_state.pop("sign-in-password", None)  # the password does not stay in the session
        if accounts.verify(name.strip(), password):
            st.session_state[USER_KEY] = name.strip()
            st.session_state[SIGNED_IN_THROUGH_KEY] = LOCAL_ACCOUNT
            st.rerun()
        time.sleep(FAILED_WAIT_SECONDS)
        st.error(t("signin.wrong"), icon=":material/lock:")
    st.stop()
