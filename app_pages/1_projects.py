"""Projects and data: create, open, rename and delete projects; classes; uploads; the image grids."""

from __future__ import annotations

import streamlit as st

from dapt_core.errors import DaptError
from dapt_core.studio.access import Action
from ui import intake_view, nav, recovery_view, state, uploads
from ui.i18n import current_language, skipped_reason, t
from ui.label_review import review_section
from ui.labelling_view import label_next_section
from ui.plain_text import as_text
from ui.project_access import history_section, members_panel, role_note, unowned_notice, why_not
from ui.widgets import delete_button, isolated, show_error, thumbnail_grid

ws = state.workspace()
st.title(t("projects.title"))
state.show_flashes()
recovery_view.show_once()  # what the sweep after a crash removed, told once (ui/recovery_view.py)
if st.session_state.pop("_demo_next", False):
    nav.TUNE.link(t("data.next_tune"), ":material/arrow_forward:")
listing = ws.list_projects()


def _make_demo_project() -> None:
    """The built-in inspection task as a new project (a new name when one is taken), opened."""
    bar = st.progress(0.0, text=t("projects.demo_progress"))
    name = t("projects.demo_name")
    taken = {info.name for info in listing}
    suffix = 2
    while name in taken:
        name = f"{t('projects.demo_name')} ({suffix})"
        suffix += 1
    try:
        demo = ws.create_demo_project(name, progress=lambda done, total: bar.progress(
            done / total, text=t("projects.demo_progress_n", done=done, total=total)))
        state.open_project(demo.id)
        state.flash(t("projects.demo_done", name=as_text(demo.name)))
        st.session_state["_demo_next"] = True  # the next step, linked at the top of the page once
        st.rerun()
    except DaptError as error:
        show_error(error)


# ------------------------------------------------------------------ what the app does; the demo in one click
with st.container(border=True):
    st.markdown(t("projects.intro"))
    demo_row = st.container(horizontal=True, vertical_alignment="center")
    # The first thing to press on a first visit (no project yet); a plain button afterwards.
    clicked = demo_row.button(t("projects.demo"), icon=":material/auto_awesome:", help=t("projects.demo_help"),
                              type="secondary" if listing else "primary", key="demo-project")
    demo_row.caption(t("projects.demo_what"))
if clicked:  # below the box: the progress bar and any error show under it, full width
    _make_demo_project()

# ------------------------------------------------------------------ choose / create a project
project = state.current_project()

left, right = st.columns([3, 2], gap="large")
with left:
    if listing:
        ids = [info.id for info in listing]
        by_id = {info.id: info for info in listing}
        current = project.id if project is not None and project.id in ids else ids[0]

        lang = current_language()  # fixed now: a format function may be called outside this run

        def _label(pid: str) -> str:
            info = by_id[pid]
            if info.error is not None:
                return t("projects.damaged_label", lang=lang, name=info.name)
            return info.name  # only the name: a label that changes with every upload confuses the widget

        chosen = st.selectbox(t("projects.open"), ids, index=ids.index(current), format_func=_label,
                              key=f"project-picker-{current}-{lang}")
        if project is None or chosen != project.id:
            state.open_project(chosen)
            st.rerun()
    else:
        st.info(t("projects.empty"), icon=":material/info:")
    unowned_notice(ws, prominent=not listing)  # signed in: projects made before sign-in have no owner yet

with right:
    with st.form("create-project", clear_on_submit=True, border=True):
        new_name = st.text_input(t("projects.new_name"), placeholder=t("projects.new_placeholder"))
        # On a first visit the demo is the one blue button: a new empty project is the second step.
        if st.form_submit_button(t("projects.create"), icon=":material/add:",
                                 type="primary" if listing else "secondary"):
            try:
                created = ws.create_project(new_name)
                state.open_project(created.id)
                state.flash(t("projects.created", name=as_text(created.name)))
                st.rerun()
            except DaptError as error:
                show_error(error)

if project is None:
    st.stop()

# ------------------------------------------------------------------ a damaged project
try:
    manifest = project.manifest()
except DaptError as error:
    show_error(error)
    if getattr(error, "params", {}).get("has_backup"):
        if st.button(t("projects.restore_backup"), icon=":material/restore:", disabled=not project.may(Action.EDIT),
                     help=why_not(project, Action.EDIT)):
            try:
                project.restore_backup()
                state.flash(t("projects.restored"))
                st.rerun()
            except DaptError as restore_error:
                show_error(restore_error)
    if delete_button("delete-damaged", t("projects.delete"), t("projects.delete_confirm", name=as_text(project.id)),
                     subject=project.id, disabled=not project.may(Action.DELETE),
                     help=why_not(project, Action.DELETE)):
        try:
            ws.delete_project(project.id)
        except DaptError as delete_error:  # a read-only workspace: said plainly
            show_error(delete_error)
        else:
            state.open_project(None)
            st.rerun()
    st.stop()

st.divider()
st.header(as_text(manifest["name"]))
counts = project.counts()
total = sum(counts.values())
st.caption(t("projects.summary", classes=len(counts), images=total, runs=len(project.run_ids())))
role_note(project)
# What the user's role allows (dapt_core.studio.access): what it does not is drawn disabled, with the reason.
# The library checks again whatever is pressed.
can_edit, cannot_edit = project.may(Action.EDIT), why_not(project, Action.EDIT)

# ------------------------------------------------------------------ project settings
with st.expander(t("projects.settings"), icon=":material/settings:"):
    with st.form("rename-project", border=False):
        renamed = st.text_input(t("projects.rename_label"), value=manifest["name"])
        if st.form_submit_button(t("projects.rename"), disabled=not project.may(Action.RENAME),
                                 help=why_not(project, Action.RENAME)):
            try:
                project.rename(renamed)
                state.flash(t("projects.renamed", name=as_text(renamed.strip())))
                st.rerun()
            except DaptError as error:
                show_error(error)
    busy = [j for j in state.queue().jobs(project.id, active_only=True)]
    question = t("projects.delete_confirm_full", name=as_text(manifest["name"]), images=total,
                 runs=len(project.run_ids()))
    if delete_button("delete-project", t("projects.delete"), question, subject=project.id,
                     disabled=bool(busy) or not project.may(Action.DELETE),
                     help=why_not(project, Action.DELETE) or (t("projects.delete_busy") if busy else None)):
        try:
            ws.delete_project(project.id)
        except DaptError as error:  # a read-only workspace: said plainly, the project kept
            show_error(error)
        else:
            state.open_project(None)
            state.flash(t("projects.deleted", name=as_text(manifest["name"])))
            st.rerun()

# ------------------------------------------------------------------ what the last upload did
report = None if intake_view.show_kept_error(project) else project.last_intake()
if report is not None and (report.added or report.skipped):
    added = report.added_by_class()
    text = t("data.intake_added", n=len(report.added),
             detail=", ".join(f"{as_text(c)}: {n}" for c, n in added.items()) or "–")
    if report.created_classes:
        text += " " + t("data.intake_created", classes=", ".join(as_text(c) for c in report.created_classes))
    (st.warning if report.skipped else st.success)(text + (" " + t("data.intake_skipped", n=len(report.skipped))
                                                          if report.skipped else ""))
    if report.skipped:
        with st.expander(t("data.skipped_title", n=len(report.skipped)), expanded=True, icon=":material/block:"):
            st.dataframe([{t("data.col_file"): s.name, t("data.col_reason"): skipped_reason(s)}
                          for s in report.skipped],
                         hide_index=True, width="stretch")
    if st.button(t("data.intake_dismiss"), icon=":material/close:", key="dismiss-intake", disabled=not can_edit):
        project.clear_last_intake()
        st.rerun()

# ------------------------------------------------------------------ classes
st.subheader(t("data.classes"))
st.caption(t("data.classes_help"))
with st.form("add-class", clear_on_submit=True, border=False):
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    new_class = c1.text_input(t("data.new_class"), placeholder=t("data.new_class_placeholder"))
    if c2.form_submit_button(t("data.add_class"), icon=":material/add:", disabled=not can_edit, help=cannot_edit):
        try:
            added_name = project.add_class(new_class)
            state.flash(t("data.class_added", name=as_text(added_name)))
            st.rerun()
        except DaptError as error:
            show_error(error)

with st.expander(t("data.zip_title"), icon=":material/folder_zip:"):
    st.caption(t("data.zip_help"))
    zip_key = f"zip-{project.id}-{state.counter('zip-uploads')}"
    archive = st.file_uploader(t("data.zip_upload"), type=["zip"], key=zip_key, disabled=not can_edit)
    if archive is not None:
        with st.spinner(t("data.zip_reading")):
            intake_view.import_uploaded_zip(project, archive)  # an error stays shown (ui/intake_view.py)
        uploads.release([archive])  # stored (or refused): its bytes leave the server's memory
        state.bump("zip-uploads")
        st.rerun()

if not counts:
    st.info(t("data.no_classes"), icon=":material/info:")
elif len(counts) >= 2:
    # Which class means a good part decides what the line counts (escapes, overkill) and where the pass
    # threshold goes; a guess from the names applies until the user confirms or changes it.
    NONE_CHOICE = "\u0000none"  # cannot be a class name (names are cleaned of control characters)
    good_class = project.good_class
    choices = [*counts, NONE_CHOICE]
    lang = current_language()  # fixed now: a format function may be called outside this run
    chosen = st.selectbox(t("pf.good_class"), choices, index=choices.index(good_class or NONE_CHOICE),
                          format_func=lambda c: t("pf.good_none", lang=lang) if c == NONE_CHOICE else c,
                          key=f"good-class-{project.id}-{good_class}", help=t("pf.good_class_help"),
                          disabled=not can_edit)
    if not project.good_class_confirmed:
        st.caption(t("pf.good_guessed"))
    if chosen != (good_class or NONE_CHOICE) or (not project.good_class_confirmed and can_edit
                                                  and st.button(t("pf.good_confirm"), key="good-class-confirm")):
        try:
            project.set_good_class(None if chosen == NONE_CHOICE else chosen)
            state.flash(t("pf.good_saved", name=t("pf.good_none") if chosen == NONE_CHOICE else as_text(chosen)))
            st.rerun()
        except DaptError as error:
            show_error(error)

for index, class_name in enumerate(list(counts)):
    records = project.images(class_name)
    from_test = sum(record.part == "test" for record in records)
    header = (t("data.class_header_parts", name=as_text(class_name), n=len(records), test=from_test) if from_test
              else t("data.class_header", name=as_text(class_name), n=len(records)))
    with st.expander(header, expanded=len(counts) <= 3 or not records):
        with isolated(class_name):
            upload_key = f"upload-{project.id}-{index}-{state.counter('uploads-' + class_name)}"
            files = st.file_uploader(t("data.upload", name=as_text(class_name)), accept_multiple_files=True,
                                     key=upload_key,
                                     help=cannot_edit or t("data.upload_help"), disabled=not can_edit)
            if files:
                with st.spinner(t("data.checking", n=len(files))):
                    intake_view.add_uploaded_files(project, class_name, files)  # an error stays shown
                uploads.release(files)
                state.bump("uploads-" + class_name)
                st.rerun()

            if records:
                # Off by default for many classes: every preview shown is sent to the browser on each run.
                if st.toggle(t("data.show_images"), value=len(counts) <= 3, key=f"show-{project.id}-{index}"):
                    thumbnail_grid(project, records, key=f"{project.id}-{index}")
                by_sha = {r.sha256: r for r in records}
                names = [r.name for r in records]
                repeated = {n for n in names if names.count(n) > 1} if len(set(names)) < len(names) else set()

                def _image_label(sha: str, by_sha=by_sha, repeated=repeated) -> str:  # names may repeat; hashes differ
                    name = by_sha[sha].name
                    return f"{name} · {sha[:6]}" if name in repeated else name

                picked = st.multiselect(t("data.select_images"), list(by_sha), format_func=_image_label,
                                        key=f"pick-{project.id}-{index}", placeholder=t("data.select_placeholder"))
                if picked:
                    c1, c2, c3 = st.columns([2, 1, 1], vertical_alignment="bottom")
                    others = [c for c in counts if c != class_name]
                    target = c1.selectbox(t("data.move_to"), others, key=f"move-target-{project.id}-{index}",
                                          disabled=not others)
                    if c2.button(t("data.move"), key=f"move-{project.id}-{index}", disabled=not others or not can_edit,
                                 icon=":material/drive_file_move:", help=cannot_edit):
                        moved = project.move_images(picked, target)
                        state.flash(t("data.moved", n=moved, name=as_text(target)))
                        st.rerun()
                    if c3.button(t("data.remove"), key=f"remove-{project.id}-{index}", icon=":material/delete:",
                                 disabled=not can_edit, help=cannot_edit):
                        removed = project.remove_images(picked)
                        state.flash(t("data.removed", n=removed))
                        st.rerun()
            else:
                st.caption(t("data.class_empty"))

            with st.popover(t("data.class_settings"), icon=":material/edit:"):
                with st.form(f"rename-class-{project.id}-{index}", border=False):
                    renamed_class = st.text_input(t("data.rename_class"), value=class_name)
                    if st.form_submit_button(t("data.rename"), disabled=not can_edit, help=cannot_edit):
                        try:
                            project.rename_class(class_name, renamed_class)
                            st.rerun()
                        except DaptError as error:
                            show_error(error)
                if delete_button(f"delete-class-{project.id}-{index}", t("data.delete_class"),
                                 t("data.delete_class_confirm", name=as_text(class_name), n=len(records)),
                                 subject=class_name,
                                 disabled=not can_edit, help=cannot_edit):
                    project.delete_class(class_name)
                    state.flash(t("data.class_deleted", name=as_text(class_name)))
                    st.rerun()

if len(counts) >= 2 and total:
    review_section(project)
label_next_section(project)
members_panel(project)  # owners, signed in
history_section(project)

if counts:
    ready = len(counts) >= 2 and all(counts.values())
    if ready:
        nav.TUNE.link(t("data.next_tune"), ":material/arrow_forward:")
    else:
        st.caption(t("data.not_ready"))
