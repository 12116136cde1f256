"""Who may do what in a project: its members, their roles, and the table of what each role allows.

    <project>/members.json     {"members": {"aiko": "owner", "ben": "editor", "chie": "viewer"}}

Three roles, as MLflow's READ/EDIT/MANAGE per experiment and Label Studio's or CVAT's owners and members:
a viewer looks and downloads; an editor also changes the photos and classes and starts jobs; an owner also
deletes (runs, the project), renames, manages the members and cancels other people's jobs.

Who the user is comes from the app's sign-in (ui/sign_in.current_user); `None` means no sign-in, one person
on their own machine, who may do everything, exactly as before accounts existed. A project created without
sign-in has no members file and so no owner: once sign-in is turned on nobody sees it until someone with shell
access names an owner (`dapt projects grant PROJECT USER owner`), because guessing an owner could hand one
person's work to another.

The members file is written whole and atomically (a temporary file renamed over it), under the project's lock,
so two owners changing members at once lose neither change and a crash never leaves half a file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .storage import WorkspaceError, atomic_write_json, lock_for

MEMBERS_FILE = "members.json"
MEMBERS_FORMAT = "dapt-studio-members"
# A member is named as they sign in: a local account's name, or what an identity provider says (an e-mail
# address, a `sub`), so any visible characters, no spaces, within an e-mail address's length.
MEMBER_NAME = re.compile(r"^[^\s\x00-\x1f\x7f]{1,254}$")


class Role:
    OWNER = "owner"
    EDITOR = "editor"
    VIEWER = "viewer"
    ALL = (OWNER, EDITOR, VIEWER)


class Action:
    VIEW = "view"  # open the project, its photos, runs, Inspect, History
    DOWNLOAD = "download"  # prompt file, report, ONNX
    EDIT = "edit"  # upload, relabel (move), remove photos, classes, the good class, restore the backup
    TUNE = "tune"  # start jobs: tuning, the check before Start, evaluating a prompt file
    CANCEL_OTHERS_JOB = "cancel_others_job"  # anyone may cancel their own job
    DELETE = "delete"  # runs, the project
    RENAME = "rename"  # the project
    MANAGE_MEMBERS = "manage_members"
    ALL = (VIEW, DOWNLOAD, EDIT, TUNE, CANCEL_OTHERS_JOB, DELETE, RENAME, MANAGE_MEMBERS)


# Each role allows what the one below it allows, and more.
_VIEWER = frozenset({Action.VIEW, Action.DOWNLOAD})
_EDITOR = _VIEWER | {Action.EDIT, Action.TUNE}
ALLOWED: dict[str, frozenset[str]] = {
    Role.VIEWER: _VIEWER,
    Role.EDITOR: _EDITOR,
    Role.OWNER: frozenset(Action.ALL),
}


def allows(role: str | None, action: str) -> bool:
    """Whether `role` (None: not a member) allows `action`."""
    return role is not None and action in ALLOWED.get(role, frozenset())


class AccessDenied(WorkspaceError):
    """The signed-in user's role in a project does not allow what was asked (`code` says which case, so the
    app can say what to ask for and of whom)."""


def denial(project_name: str, role: str | None, action: str) -> AccessDenied:
    """The AccessDenied for a user of `role` asking for `action` (a code per case: the app says what to do)."""
    if role is None:
        return AccessDenied("access_not_member", project=project_name)
    if role == Role.VIEWER:
        return AccessDenied("access_viewer", project=project_name)
    return AccessDenied("access_owner_only", project=project_name)


def may_cancel(job_owner: str | None, user: str | None, role: str | None) -> bool:
    """Whether `user` may cancel a job `job_owner` started: their own, or any job of a project they own.
    Without sign-in (user None) everyone may, as before."""
    if user is None:
        return True
    return job_owner == user or allows(role, Action.CANCEL_OTHERS_JOB)


class Members:
    """The members file of one project folder. Read fresh on every call: another session may change it."""

    def __init__(self, project_path: Path):
        self.path = Path(project_path) / MEMBERS_FILE
        self._lock = lock_for(Path(project_path))

    def roles(self) -> dict[str, str]:
        """{user: role}; empty for a project without members (made before sign-in, or without it). An
        unreadable file counts as no members (nobody signed in sees the project) and is left as it is."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return {}
        members = data.get("members") if isinstance(data, dict) else None
        if not isinstance(members, dict):
            return {}
        return {str(user): role for user, role in members.items() if role in Role.ALL}

    def role_of(self, user: str | None) -> str | None:
        return self.roles().get(user) if user is not None else None

    def owners(self) -> list[str]:
        return sorted(user for user, role in self.roles().items() if role == Role.OWNER)

    def set(self, user: str, role: str) -> None:
        """Give `user` `role` (adding them). Refuses to leave the project without an owner."""
        if not MEMBER_NAME.match(str(user or "")):
            raise WorkspaceError("member_name_bad", name=str(user))
        if role not in Role.ALL:
            raise WorkspaceError("role_unknown", role=str(role))
        with self._lock:
            roles = self.roles()
            if roles.get(user) == Role.OWNER and role != Role.OWNER:
                self._keep_an_owner(roles, user)
            roles[user] = role
            self._write(roles)

    def remove(self, user: str) -> None:
        with self._lock:
            roles = self.roles()
            if user not in roles:
                raise WorkspaceError("member_not_found", name=str(user))
            if roles[user] == Role.OWNER:
                self._keep_an_owner(roles, user)
            del roles[user]
            self._write(roles)

    @staticmethod
    def _keep_an_owner(roles: dict[str, str], leaving: str) -> None:
        # A project nobody owns can only be reached again from the shell: refuse to get there from the app.
        if not any(role == Role.OWNER for user, role in roles.items() if user != leaving):
            raise WorkspaceError("last_owner", name=leaving)

    def _write(self, roles: dict[str, str]) -> None:
        atomic_write_json(self.path, {"format": MEMBERS_FORMAT, "format_version": 1,
                                      "members": dict(sorted(roles.items()))})
