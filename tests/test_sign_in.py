"""Who may open the app: local accounts (argon2id hashes, never the password), the refusal to serve a network
without them, and the sign-in every session goes through once they exist."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from streamlit.testing.v1 import AppTest

from dapt_core.errors import ConfigError
from dapt_core.studio.accounts import Accounts
from ui.sign_in import serving_on_network

APP = os.path.join(os.path.dirname(__file__), "..", "app.py")
PASSWORD = "correct horse battery"


def test_an_account_keeps_a_hash_never_the_password_and_checks_it(tmp_path):
    accounts = Accounts(tmp_path)
    assert not accounts.exist()
    accounts.add("aiko", PASSWORD)
    stored = (tmp_path / "users.json").read_text(encoding="utf-8")
    assert PASSWORD not in stored and "$argon2id$" in stored
    assert accounts.verify("aiko", PASSWORD)
    assert not accounts.verify("aiko", PASSWORD + "!")
    assert not accounts.verify("nobody", PASSWORD)
    with pytest.raises(ConfigError, match="already an account"):
        accounts.add("aiko", "another long password")
    with pytest.raises(ConfigError, match="at least 10"):
        accounts.add("ben", "short")
    with pytest.raises(ConfigError, match="cannot be an account name"):
        accounts.add("<img src=x>", PASSWORD)
    accounts.remove("aiko")
    assert not accounts.exist()


def test_dapt_users_add_reads_the_password_from_stdin_and_lists_the_name(tmp_path):
    run = [sys.executable, "-m", "dapt_core.cli", "users"]
    added = subprocess.run(run + ["add", "aiko", "--workspace", str(tmp_path), "--password-stdin"],
                           input=PASSWORD + "\n", capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    listed = subprocess.run(run + ["list", "--workspace", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert listed.stdout.split() == ["aiko"]
    assert Accounts(tmp_path).verify("aiko", PASSWORD)
    assert set(json.loads((tmp_path / "users.json").read_text())["users"]) == {"aiko"}


def test_a_new_account_named_like_a_project_member_is_refused_until_told_to_keep_the_memberships(
        tmp_path, monkeypatch, capsys):
    from dapt_core import cli
    from dapt_core.studio.guarded import UserWorkspace
    from dapt_core.studio.workspace import Workspace

    # "aiko" owns a project through the identity provider: no local account has that name
    UserWorkspace(Workspace(tmp_path), "aiko").create_project("Line 3 camera")
    add = ["users", "add", "aiko", "--workspace", str(tmp_path), "--password-stdin"]
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main(add) != 0
    error = capsys.readouterr().err
    assert "already a member of 1 project(s): Line 3 camera (owner)" in error and "--keep-memberships" in error
    assert not Accounts(tmp_path).exist()  # nothing was created
    assert cli.main(["users", "add", "ben", "--workspace", str(tmp_path), "--password-stdin"]) == 0  # a new name

    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main(add + ["--keep-memberships"]) == 0
    assert Accounts(tmp_path).verify("aiko", PASSWORD)
    monkeypatch.setattr(sys, "stdin", io.StringIO("another long password\n"))
    assert cli.main(add + ["--replace"]) == 0  # a new password for the same account asks nothing more
    assert Accounts(tmp_path).verify("aiko", "another long password")


def test_loopback_addresses_stay_on_this_machine_and_others_reach_the_network():
    assert not serving_on_network("127.0.0.1") and not serving_on_network("localhost")
    assert serving_on_network("0.0.0.0") and serving_on_network(None) and serving_on_network("192.168.1.20")


@pytest.fixture
def served_on(monkeypatch, tmp_path):
    from streamlit import config

    monkeypatch.setenv("DAPT_WORKSPACE", str(tmp_path / "workspace"))
    before = config.get_option("server.address")

    def serve(address):
        config.set_option("server.address", address)

    yield serve
    config.set_option("server.address", before)


def test_served_on_a_network_without_accounts_the_app_shows_only_how_to_add_one(served_on):
    served_on("0.0.0.0")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    assert any("will not open until accounts exist" in e.value for e in at.error)
    assert any("dapt users add" in c.value for c in at.code)
    assert not at.button  # no project, no upload, nothing else


def test_once_accounts_exist_every_session_signs_in_first(served_on, tmp_path):
    served_on("0.0.0.0")
    Accounts(tmp_path / "workspace").add("aiko", PASSWORD)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert [e.value for e in at.title] == ["Sign in to DAPT Studio"]
    at.text_input(key="sign-in-name").input("aiko")
    at.text_input(key="sign-in-password").input("wrong password!")
    at.button[0].click()
    at.run()
    assert any("Wrong name or password" in e.value for e in at.error)
    at.text_input(key="sign-in-name").input("aiko")
    at.text_input(key="sign-in-password").input(PASSWORD)
    at.button[0].click()
    at.run()
    assert not at.exception
    assert any("Signed in as aiko" in c.value for c in at.sidebar.caption)
    assert "sign-in-password" not in at.session_state or not at.session_state["sign-in-password"]


def test_on_this_machine_without_accounts_the_app_opens_as_before(served_on):
    served_on("127.0.0.1")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    assert not at.error and "Sign in to DAPT Studio" not in [e.value for e in at.title]


def test_dapt_app_refuses_a_network_address_until_someone_can_sign_in(tmp_path, monkeypatch, capsys):
    from dapt_core import app_launcher
    from dapt_core.cli import main

    started = []
    monkeypatch.setattr(sys, "argv", list(sys.argv))  # dapt app hands Streamlit its command line there
    monkeypatch.setattr("streamlit.web.cli.main", lambda **kwargs: started.append(kwargs))
    monkeypatch.setattr(app_launcher, "DEFAULT_SECRETS_FILES", (tmp_path / "none.toml",))
    workspace = tmp_path / "workspace"
    command = ["app", "--workspace", str(workspace), "--address", "0.0.0.0"]
    assert main(command) != 0 and not started
    error = capsys.readouterr().err
    assert "Not starting on 0.0.0.0" in error and "dapt users add" in error
    assert main(["app", "--workspace", str(workspace), "--address", "127.0.0.1"]) == 0 and len(started) == 1

    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[auth]\nredirect_uri = "https://pc/oauth2callback"\ncookie_secret = "x"\n'
                       '[auth.keycloak]\nclient_id = "dapt"\nclient_secret = "s"\n', encoding="utf-8")
    assert main(command + ["--", "--secrets.files", str(secrets)]) == 0 and len(started) == 2
    Accounts(workspace).add("aiko", "a long enough password")
    assert main(command) == 0 and len(started) == 3
