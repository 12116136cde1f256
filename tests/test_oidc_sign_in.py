"""Sign-in through an OpenID Connect identity provider (Streamlit's st.login): the sign-in screen it adds, the
network address it opens, and the whole round trip in a real browser against a real provider.

The provider is panva's oidc-provider (OpenID Certified), run by tests/oidc_provider/provider.js on a free
localhost port with one client (the app) and one account; `make test` installs it (scripts/test_provider.sh:
`npm ci`). Without node, its packages or /usr/bin/chromium the browser test skips, unless
DAPT_REQUIRE_BROWSER=1 (CI), where it fails. Never run `playwright install`: it downloads a browser.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit_server import CHROMIUM, CHROMIUM_ARGS, Server, free_port

from dapt_core.studio.accounts import Accounts
from ui.plain_text import WORD_JOINER, as_text

APP = os.path.join(os.path.dirname(__file__), "..", "app.py")
PROVIDER_DIR = Path(__file__).parent / "oidc_provider"
PROVIDER_NAME = "factory"  # [auth.factory]: the button reads "Sign in with Factory"
ACCOUNT, EMAIL = "aiko", "aiko@factory.example"
CLIENT_ID, CLIENT_SECRET = "dapt-studio", "a client secret only this test knows"
# the sidebar's line as a person reads it (as_text puts an invisible word joiner after "@": no mailto: link)
SIGNED_IN = re.compile("Signed in as " + re.escape(EMAIL).replace("@", f"@{WORD_JOINER}?"))
STARTUP_SECONDS = 30


def auth_secrets(redirect_uri: str, issuer: str) -> dict:
    """Streamlit's [auth] secrets for the provider `issuer`, as README "Sharing on a network" shows them."""
    return {"auth": {
        "redirect_uri": redirect_uri,
        "cookie_secret": "the cookie secret of this test, 32 characters or more",
        PROVIDER_NAME: {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "server_metadata_url": f"{issuer}/.well-known/openid-configuration",
            # oidc-provider knows the prompts login and consent, not Streamlit's default select_account
            "client_kwargs": {"prompt": "login"},
        },
    }}


# ---------------------------------------------------------------- the sign-in screen (AppTest, no browser)


@pytest.fixture
def served_on_network(monkeypatch, tmp_path):
    from streamlit import config

    monkeypatch.setenv("DAPT_WORKSPACE", str(tmp_path / "workspace"))
    before = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    yield tmp_path / "workspace"
    config.set_option("server.address", before)


def app_with_provider() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for name, section in auth_secrets("https://inspection-pc.factory.local/oauth2callback",
                                      "https://keycloak.factory.local/realms/factory").items():
        at.secrets[name] = section
    return at


def test_served_on_a_network_with_an_identity_provider_the_app_offers_it_instead_of_refusing(served_on_network):
    at = app_with_provider()
    at.run()
    assert not at.exception
    assert not any("will not open" in e.value for e in at.error)
    assert [e.value for e in at.title] == ["Sign in to DAPT Studio"]
    assert [b.label for b in at.button] == ["Sign in with Factory"]  # no accounts: no password form
    assert not at.text_input


def test_with_both_ways_set_up_the_screen_offers_both_and_a_provider_user_is_the_session_user(served_on_network):
    Accounts(served_on_network).add("ben", "correct horse battery")
    at = app_with_provider()
    at.run()
    assert [b.label for b in at.button] == ["Sign in with Factory", "Sign in"]
    assert at.text_input(key="sign-in-name") is not None
    at = app_with_provider()
    at.user = {"is_logged_in": True, "provider": PROVIDER_NAME, "sub": "f81d4fae", "email": EMAIL}
    at.run()
    assert not at.exception
    # shown as plain text (ui.plain_text.as_text: no mailto: link), as the browser test sees it
    assert f"Signed in as {as_text(EMAIL)}" in [c.value for c in at.sidebar.caption]
    assert at.session_state["signed-in-user"] == EMAIL  # what ui.sign_in.current_user() returns


def test_a_provider_user_named_like_a_local_account_is_refused_not_given_its_projects(served_on_network):
    from dapt_core.studio.guarded import UserWorkspace
    from dapt_core.studio.workspace import Workspace

    Accounts(served_on_network).add("aiko", "correct horse battery")
    UserWorkspace(Workspace(served_on_network), "aiko").create_project("Aiko's line")
    at = app_with_provider()
    # a provider whose users are named by a username claim: someone there is called "aiko" too
    at.secrets["dapt"] = {"user_claim": "preferred_username"}
    at.user = {"is_logged_in": True, "provider": PROVIDER_NAME, "sub": "0b7c", "preferred_username": "aiko"}
    at.run()
    assert not at.exception
    assert any("also has a local account named aiko" in e.value for e in at.error)
    assert "signed-in-user" not in at.session_state
    assert [b.label for b in at.button] == ["Sign out"]
    assert not any("Aiko's line" in str(element.value) for element in at.main if hasattr(element, "value"))

    at.user = {"is_logged_in": True, "provider": PROVIDER_NAME, "sub": "0b7d", "preferred_username": "aiko.t"}
    at.run()  # another name from the same provider signs in
    assert not at.error and at.session_state["signed-in-user"] == "aiko.t"


# ---------------------------------------------------------------- the round trip (browser, real provider)


def _unavailable(reason: str) -> None:
    if os.environ.get("DAPT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, and DAPT_REQUIRE_BROWSER=1", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def provider(tmp_path):
    """oidc-provider on a free port; yields its issuer and the app server it is set up for (not started)."""
    node = shutil.which("node")
    if node is None:
        _unavailable("node is missing: the OpenID Connect provider of this test runs on Node.js "
                     "(scripts/test_provider.sh installs it)")
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        _unavailable(f"oidc-provider is not installed: run `npm ci` in {PROVIDER_DIR} (make test does)")
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} is missing (install it with scripts/browser.sh)")
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    app = Server(tmp_path / "workspace", tmp_path / "app.log")
    redirect_uri = f"{app.url}/oauth2callback"
    log = open(tmp_path / "provider.log", "ab")
    process = subprocess.Popen(
        [node, "provider.js"], cwd=PROVIDER_DIR, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PORT": str(port), "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET,
             "REDIRECT_URI": redirect_uri, "ACCOUNT": ACCOUNT, "ACCOUNT_EMAIL": EMAIL})
    try:
        deadline = time.time() + STARTUP_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.time() > deadline:
                    raise RuntimeError("the OpenID Connect provider did not start:\n"
                                       + (tmp_path / "provider.log").read_text(errors="replace")[-3000:]) from None
                time.sleep(0.3)
        yield issuer, app, redirect_uri
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            process.wait(10)
        log.close()


def write_secrets(path: Path, secrets: dict) -> Path:
    """secrets.toml from nested dicts of strings (a JSON string is a TOML basic string)."""
    lines: list[str] = []

    def table(name: str, values: dict) -> None:
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in values.items() if not isinstance(value, dict))
        for key, value in values.items():
            if isinstance(value, dict):
                table(f"{name}.{key}", value)

    for name, values in secrets.items():
        table(name, values)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_signing_in_and_out_through_a_real_identity_provider_in_a_real_browser(provider, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    issuer, app, redirect_uri = provider
    secrets = write_secrets(tmp_path / "secrets.toml", auth_secrets(redirect_uri, issuer))
    app.options["secrets.files"] = secrets  # the repository's own .streamlit/ stays as it is
    app.start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                page.set_default_timeout(60_000)
                # the provider's pages import a web font: answer that at once on a machine without internet
                page.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda route: route.abort())
                page.goto(app.url)
                expect(page.get_by_text("Sign in to DAPT Studio")).to_be_visible(timeout=90_000)
                page.get_by_role("button", name="Sign in with Factory").click()

                # the provider's own pages: who (its login form), then what the app may know (consent)
                page.wait_for_url(f"{issuer}/interaction/**")
                page.locator('input[name="login"]').fill(ACCOUNT)
                page.locator('input[name="password"]').fill("any password: the test provider's dev login")
                page.get_by_role("button", name="Sign-in").click()
                page.get_by_role("button", name="Continue").click()

                page.wait_for_url(f"{app.url}/**")
                expect(page.get_by_text(SIGNED_IN)).to_be_visible(timeout=90_000)
                page.get_by_role("link", name="Tune").click()
                expect(page).to_have_url(re.compile(r"/tune(\?|$)"))
                expect(page.get_by_text(SIGNED_IN)).to_be_visible()

                page.get_by_role("button", name="Sign out").click()
                # the provider ends its session too (its end_session_endpoint asks first), then sends the
                # browser back to the app
                page.wait_for_url(f"{issuer}/session/end**")
                page.get_by_role("button", name="Yes, sign me out").click()
                page.wait_for_url(f"{app.url}/**")
                expect(page.get_by_role("button", name="Sign in with Factory")).to_be_visible(timeout=90_000)
                expect(page.get_by_text(SIGNED_IN)).to_have_count(0)
            finally:
                browser.close()
    except Exception:
        print("app log:\n" + app.log_text())
        raise
    finally:
        app.stop()
