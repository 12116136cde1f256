"""The Projects page's "Review labels": photos whose label looks wrong, duplicates and leaks, outliers.

A click runs the review (dapt_core.studio.review_state.review_project: frozen features through the feature
cache, seconds with the demo model, under a spinner); its result is kept in the session. Each finding shows
its photos' previews, the reason in words, and buttons: move to the class it looks like, remove a photo, or
keep it and stop asking (remembered in the project folder). Nothing changes without a click; a finding whose
photos were moved or removed since the review is no longer shown.
"""

from __future__ import annotations

import streamlit as st

from dapt_core.studio import review_state
from dapt_core.studio.access import Action
from dapt_core.studio.workspace import Project
from ui import state
from ui.i18n import t
from ui.plain_text import as_text
from ui.widgets import isolated

KINDS = ("suspect_label", "duplicate", "near_duplicate", "outlier")
DEFAULT_BACKBONE = "demo"


def _result_key(project: Project) -> str:
    return f"_review-{project.id}"


def review_section(project: Project) -> None:
    """The expander, drawn where it is called; a failure in it leaves the rest of the page."""
    with st.expander(t("review.title"), icon=":material/fact_check:"):
        with isolated(t("review.title")):
            _section(project)


def _section(project: Project) -> None:
    st.caption(t("review.help"))
    c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
    spec = c1.text_input(t("review.backbone"), value=DEFAULT_BACKBONE, key=f"review-backbone-{project.id}").strip()
    if c2.button(t("review.run"), key=f"review-run-{project.id}", icon=":material/search:",
                 disabled=not spec or len(project.classes) < 2):
        with st.spinner(t("review.running", n=len(project.images()))):
            device_key, _ = state.device()
            backbone = state.backbone(spec, device_key)
            st.session_state[_result_key(project)] = review_state.review_project(
                project, backbone, cache_dir=state.workspace().cache_dir)
    result = st.session_state.get(_result_key(project))
    if result is None:
        return
    current = {record.sha256: record.class_name for record in project.images()}
    # A finding is shown while its photos are still there with the classes they had when it was found.
    findings = [f for f in result["findings"]
                if all(current.get(sha) == name for sha, name in zip(f["shas"], f["classes"]))]
    separation = result.get("separation") or {}
    if separation.get("level") == "near_chance":
        st.info(t("review.near_chance", accuracy=f"{100 * separation['accuracy']:.0f}%",
                  chance=f"{100 * separation['chance']:.0f}%"), icon=":material/info:")
    if not findings:
        st.success(t("review.none", n=result["photos"]), icon=":material/check_circle:")
    else:
        st.markdown(t("review.summary", n=len(findings), photos=result["photos"]))
    if result.get("dismissed"):
        st.caption(t("review.dismissed", n=result["dismissed"]))
    for kind in KINDS:
        mine = [f for f in findings if f["kind"] == kind]
        if mine:
            st.markdown(f"**{t('review.kind.' + kind, n=len(mine))}**")
            for finding in mine:
                _finding(project, finding, result)


def _finding(project: Project, finding: dict, result: dict) -> None:
    names, classes, shas = finding["names"], finding["classes"], finding["shas"]
    key = finding["key"]
    with st.container(border=True):
        st.image([str(project.thumbnail_path(sha)) for sha in shas],
                 caption=[as_text(f"{name} · {name_class}") for name, name_class in zip(names, classes)], width=96)
        st.markdown(_reason(finding, result))
        row = st.container(horizontal=True)
        can_edit = project.may(Action.EDIT)  # a viewer sees the findings; fixing them is an editor's
        if finding["kind"] == "suspect_label" and finding["suggested"] in project.classes:
            if row.button(t("review.move", name=as_text(finding["suggested"])), key=f"review-move-{key}",
                          icon=":material/drive_file_move:", type="primary", disabled=not can_edit):
                moved = project.move_images(shas, finding["suggested"])
                state.flash(t("data.moved", n=moved, name=as_text(finding["suggested"])))
                st.rerun()
        for sha, name in zip(shas, names):
            label = t("review.remove") if len(shas) == 1 else t("review.remove_one", name=as_text(name))
            if row.button(label, key=f"review-remove-{key}-{sha}", icon=":material/delete:", disabled=not can_edit):
                removed = project.remove_images([sha])
                state.flash(t("data.removed", n=removed))
                st.rerun()
        if row.button(t("review.keep"), key=f"review-keep-{key}", icon=":material/visibility_off:"):
            review_state.dismiss(project, key)
            st.session_state[_result_key(project)]["findings"] = [
                f for f in result["findings"] if f["key"] != key]
            state.flash(t("review.kept"))
            st.rerun()


def _reason(finding: dict, result: dict) -> str:
    """The finding in words, for Markdown: its file and class names as typed."""
    names, classes = [as_text(n) for n in finding["names"]], [as_text(c) for c in finding["classes"]]
    details = finding["details"]
    kind = finding["kind"]
    if kind == "suspect_label":
        return t("review.reason.suspect", name=names[0], label=classes[0], other=as_text(finding["suggested"]),
                 count=details["neighbours_other"], k=details["neighbours"])
    if kind == "outlier":
        return t("review.reason.outlier", name=names[0], label=classes[0])
    labels = ", ".join(f"'{name}'" for name in sorted(set(classes)))
    what = t("review.reason.exact" if kind == "duplicate" else "review.reason.near", names=", ".join(names))
    return what + " " + t(f"review.scope.{finding['scope']}", labels=labels)
