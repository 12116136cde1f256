"""The Projects page's parts about people: the user's role and what it allows, the owners' members panel, the
History (the project's audit log), and the note about projects nobody owns yet (dapt_core.studio.access, audit).

Without sign-in there is one local person and no one to manage: the role note and the members panel are not
drawn, and the History names the user "this machine".
"""

from __future__ import annotations

import streamlit as st

from dapt_core.errors import DaptError
from dapt_core.studio.access import Action, Role
from dapt_core.studio.accounts import Accounts
from dapt_core.studio.audit import AuditEntry
from dapt_core.studio.guarded import UserProject, UserWorkspace
from ui import state
from ui.i18n import STRINGS, current_language, t
from ui.plain_text import as_text
from ui.widgets import show_error

HISTORY_ROWS = 200  # the newest entries; the whole log stays in the project folder's audit.jsonl


def why_not(project: UserProject, action: str) -> str | None:
    """Why the user's role does not allow `action` (the help text of a disabled button), or None if it does."""
    if project.may(action):
        return None
    return t("access.why_viewer") if project.role == Role.VIEWER else t("access.why_owner_only")


def role_note(project: UserProject) -> None:
    """One line under the project's name: the user's role, and whom to ask for more."""
    if project.user is None:
        return
    owners = ", ".join(project.owners()) or "–"
    key = {Role.OWNER: "access.you_owner", Role.EDITOR: "access.you_editor"}.get(project.role, "access.you_viewer")
    st.caption(t(key, owners=as_text(owners)))


def unowned_notice(workspace: UserWorkspace, *, prominent: bool) -> None:
    """Signed in, projects made before sign-in was turned on are hidden until an owner is granted from the shell;
    say so, rather than let them seem lost."""
    if workspace.user is None:
        return
    hidden = len(workspace.unowned_projects())
    if not hidden:
        return
    if prominent:
        st.info(t("access.unowned", n=hidden), icon=":material/lock:")
        st.code(f"dapt projects list\ndapt projects grant PROJECT {workspace.user} owner", language="bash")
    else:
        st.caption(t("access.unowned", n=hidden))


def members_panel(project: UserProject) -> None:
    """Owners add people by the name they sign in with, change their role and remove them."""
    if project.user is None or not project.may(Action.MANAGE_MEMBERS):
        return
    lang = current_language()  # fixed now: a format function may be called outside this run
    with st.expander(t("access.members_title"), icon=":material/group:"):
        st.caption(t("access.members_help"))
        members = project.members()
        st.dataframe([{t("access.col_member"): name, t("access.col_role"): t(f"role.{role}")}
                      for name, role in sorted(members.items())], hide_index=True, width="stretch")
        with st.form(f"add-member-{project.id}", clear_on_submit=True, border=False):
            c1, c2, c3 = st.columns([3, 2, 1], vertical_alignment="bottom")
            name = c1.text_input(t("access.member_name"), placeholder=_name_hint(members), key="member-name")
            role = c2.selectbox(t("access.member_role"), Role.ALL, index=Role.ALL.index(Role.EDITOR),
                                format_func=lambda r: t(f"role.{r}", lang=lang), key="member-role")
            if c3.form_submit_button(t("access.member_set"), icon=":material/person_add:"):
                if _unknown(name.strip()):
                    st.error(t("access.member_unknown", name=as_text(name.strip())), icon=":material/person_off:")
                else:
                    _change(lambda: project.set_member(name.strip(), role),
                            t("access.member_saved", name=as_text(name.strip()), role=t(f"role.{role}")))
        others = [name for name in sorted(members) if name != project.user]
        if others:
            c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
            leaving = c1.selectbox(t("access.member_remove_who"), others, key="member-remove-who")
            if c2.button(t("access.member_remove"), key="member-remove", icon=":material/person_remove:"):
                _change(lambda: project.remove_member(leaving), t("access.member_removed", name=as_text(leaving)))


def _name_hint(members: dict[str, str]) -> str:
    """Some account names not yet members, as the placeholder (people signing in through an identity provider
    have no local account, so any name is accepted)."""
    try:
        names = [name for name in Accounts(state.workspace().root).names() if name not in members]
    except DaptError:
        names = []
    return ", ".join(names[:4]) if names else t("access.member_name_placeholder")


def _unknown(name: str) -> bool:
    """Whether nobody could sign in as `name`: no local account of that name, and no identity provider whose
    users could have it (a typo would otherwise add a member nobody is)."""
    from ui.sign_in import identity_providers

    try:
        return bool(name) and name not in Accounts(state.workspace().root).names() and not identity_providers()
    except DaptError:
        return False


def _change(change, done: str) -> None:
    try:
        change()
    except DaptError as error:
        show_error(error)
        return
    state.flash(done)
    st.rerun()


def history_section(project: UserProject) -> None:
    """Who changed what, newest first."""
    with st.expander(t("access.history_title"), icon=":material/history:"):
        entries = project.history(HISTORY_ROWS)
        if not entries:
            st.caption(t("access.history_empty"))
            return
        st.dataframe([{t("access.col_when"): entry.time.replace("T", " ")[:19] + " UTC",
                       t("access.col_who"): _who(entry),
                       t("access.col_what"): describe(entry)} for entry in entries],
                     hide_index=True, width="stretch", key=f"history-{project.id}")
        st.caption(t("access.history_help"))


def _who(entry: AuditEntry) -> str:
    if entry.details.get("via") == "shell":  # `dapt projects grant` on the server
        return t("access.shell_user", user=entry.details.get("shell_user", "?"))
    return entry.user or t("access.local_user")


def describe(entry: AuditEntry, lang: str | None = None) -> str:
    """An entry as a sentence in the session's language (plain text: a data frame cell shows no Markdown)."""
    details = dict(entry.details)
    key = f"audit.{entry.action}"
    if entry.action == "images_uploaded":
        classes = details.get("classes") or {}
        where = details.get("class") or ", ".join(f"{name}: {n}" for name, n in classes.items())
        if details.get("archive"):
            where = f"{details['archive']} ({where})" if where else details["archive"]
        details = {"count": details.get("count", 0), "where": where or "–", "skipped": details.get("skipped", 0)}
    elif entry.action in ("images_moved", "images_removed"):
        names = details.get("names") or []
        more = int(details.get("count", 0)) - len(names)
        details["names"] = ", ".join(names) + (f" (+{more})" if more > 0 else "")
    elif entry.action in ("member_set",):
        details["role"] = t(f"role.{details.get('role')}", lang=lang) if details.get("role") in Role.ALL else "?"
    elif entry.action == "downloaded":
        details["what"] = t(f"audit.file.{details.get('what')}", lang=lang) \
            if details.get("what") in ("prompt_file", "report", "onnx") else str(details.get("what"))
    elif entry.action == "good_class_set":
        details["name"] = details.get("name") or t("pf.good_none", lang=lang)
    return _sentence(key, details, lang)


def _sentence(key: str, details: dict, lang: str | None) -> str:
    if key not in STRINGS:  # an entry of a newer version, or a hand-edited line: shown as it is
        return f"{key.split('.', 1)[1]} {details}"
    return t(key, lang=lang, **{name: "–" if value is None else value for name, value in details.items()})
