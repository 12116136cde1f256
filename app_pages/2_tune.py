"""Tune: pick the backbone, the method and the split, start a run, follow it live; saved runs."""

from __future__ import annotations

import streamlit as st

from dapt_core.deploy.pass_fail import DEFAULT_ESCAPE_RATE
from dapt_core.engine.backbone_specs import LOCAL_DIR_PREFIX
from dapt_core.engine.methods import (
    AUGMENTATION_PRESETS,
    DEFAULT_SHOTS,
    DISPERSION_METHODS,
    LR_QUICK,
    LR_SCALED,
    METHODS_RECOMMENDED_FIRST,
    TEXT_PROMPT_METHODS,
    VISUAL_PROMPT_METHODS,
    TuningConfig,
    epochs_for_shots,
)
from dapt_core.engine.selection import scaled_learning_rate
from dapt_core.errors import DaptError
from dapt_core.studio import backbone_cache, job_queue, jobs, server_paths
from dapt_core.studio.access import Action
from dapt_core.studio.accounts import Accounts
from ui import nav, pass_fail_view, sign_in, state
from ui.feasibility import feasibility_section
from ui.i18n import current_language, engine_text, error_text, join_sentences, t
from ui.narrative import pct, run_warnings
from ui.plain_text import as_text
from ui.project_access import why_not
from ui.tiles_view import TILE_CHOICES, tile_preview
from ui.time_estimate import time_estimate_section
from ui.widgets import delete_button, duration, job_panel, page_header, require_project, run_label, show_error

project = require_project()
page_header("tune.title", project)
state.show_flashes()
device_key, device_text = state.device()

SOURCES = ("demo", "open_clip", "file", "folder", "spec")
LR_MODES = (LR_SCALED, LR_QUICK, "fixed")  # how the learning rate is set (see dapt_core.engine.selection)
# Settings live in the session under these keys (app.py keeps them across page changes), so the
# widgets below take no default values of their own. The tuning settings start at the library's defaults.
_CONFIG = TuningConfig()  # the default method (dapt), so its betas are set too
DEFAULTS = {"tune-source": "demo", "tune-pretrained": "ViT-B-16:openai", "tune-arch": "ViT-B-16",
            "tune-method": _CONFIG.method, "tune-shots": DEFAULT_SHOTS, "tune-epochs": 0, "tune-lr": _CONFIG.lr,
            "tune-beta-v": _CONFIG.beta_v, "tune-beta-t": _CONFIG.beta_t, "tune-n-ctx": _CONFIG.n_ctx,
            "tune-n-vis": _CONFIG.n_vis, "tune-seed": _CONFIG.seed, "tune-batch-size": _CONFIG.batch_size,
            "tune-preset": _CONFIG.preset, "tune-rotations": _CONFIG.rotations, "tune-lr-mode": LR_SCALED,
            "tune-escape-rate": 100 * DEFAULT_ESCAPE_RATE, "tune-budget": 0, "tune-tiles": _CONFIG.tiles}
for _key, _value in DEFAULTS.items():
    st.session_state.setdefault(_key, _value)


def _adapt_shots() -> None:
    """Suggest as many shots as every class can give while keeping test pictures (at most 16),
    unless the user chose a number of their own for this project."""
    try:
        capacity = project.shot_capacity()
    except DaptError:
        return  # the split below says what is wrong
    suggested = max(1, min([DEFAULTS["tune-shots"], *capacity.values()]))
    previous = st.session_state.get("tune-shots-suggested")  # (project id, the shots it last suggested)
    if previous != [project.id, suggested] and (previous is None or st.session_state["tune-shots"] == previous[1]):
        st.session_state["tune-shots"] = suggested
    st.session_state["tune-shots-suggested"] = [project.id, suggested]


_adapt_shots()


@st.cache_data(show_spinner=False)
def _pretrained() -> list[str]:
    import open_clip

    return [f"{name}:{tag}" for name, tag in open_clip.list_pretrained()]


@st.cache_data(show_spinner=False)
def _architectures() -> list[str]:
    import open_clip

    return list(open_clip.list_models())


settings_col, live_col = st.columns([5, 6], gap="large")

with settings_col:
    # ------------------------------------------------------------ backbone
    st.subheader(t("tune.backbone"))
    lang = current_language()  # fixed now: format functions may be called outside this run
    source = st.radio(t("tune.source"), SOURCES, format_func=lambda s: t(f"tune.source.{s}", lang=lang),
                      key="tune-source", horizontal=True)
    if source == "demo":
        spec = "demo"
    elif source == "open_clip":
        options = _pretrained()
        if st.session_state["tune-pretrained"] not in options:
            st.session_state["tune-pretrained"] = options[0]
        spec = st.selectbox(t("tune.pretrained"), options, key="tune-pretrained")
    elif source == "file":
        architectures = _architectures()
        if st.session_state["tune-arch"] not in architectures:
            st.session_state["tune-arch"] = architectures[0]
        arch = st.selectbox(t("tune.architecture"), architectures, key="tune-arch")
        path = st.text_input(t("tune.weights_path"), key="tune-weights-path", placeholder="/data/weights/ViT-B-16.pt")
        spec = f"{arch}:{path.strip()}" if path.strip() else ""
    elif source == "folder":
        path = st.text_input(t("tune.folder_path"), key="tune-folder-path", placeholder="/data/weights/my-clip")
        spec = f"{LOCAL_DIR_PREFIX}{path.strip()}" if path.strip() else ""
    else:
        spec = st.text_input(t("tune.spec"), key="tune-spec", placeholder="ViT-B-32:laion2b_s34b_b79k").strip()

    available = loaded = None
    # Signed in (accounts or an identity provider), server paths are limited to the allowed folders, with
    # one answer whether or not a path exists (dapt_core/studio/server_paths.py).
    signed_in = Accounts(state.workspace().root).exist() or bool(sign_in.identity_providers())
    try:
        server_paths.refuse_outside(spec, state.workspace().root, restricted=signed_in)
    except DaptError as error:
        show_error(error)
        spec = ""
    if spec:
        with st.spinner(t("tune.checking", spec=as_text(spec))):
            available = backbone_cache.BACKBONES.check(spec, device_key)
        if available.ok:
            loaded = state.backbone(spec, device_key)  # loaded now, so Start begins at once
            d = available.description or {}
            st.success(t("tune.ready", spec=as_text(spec), weights=as_text(str(d.get("weights", ""))[:19]),
                         dim=d.get("embed_dim")),
                       icon=":material/check_circle:")
        else:
            st.error(t("tune.unavailable", message=as_text(available.message)), icon=":material/cloud_off:")
            c1, c2 = st.columns(2)
            if c1.button(t("tune.check_again"), key="check-again"):
                backbone_cache.BACKBONES.check(spec, device_key, again=True)
                st.rerun()
            if spec != "demo":
                c2.button(t("tune.use_demo"), key="use-demo",
                          on_click=lambda: st.session_state.update({"tune-source": "demo"}))
    else:
        st.info(t("tune.need_spec"))
    st.caption(t("tune.device", device=device_text))

    # ------------------------------------------------------------ method and split
    st.subheader(t("tune.method"))
    order = METHODS_RECOMMENDED_FIRST
    method = st.radio(t("tune.method"), order, format_func=lambda m: t(f"method.{m}.name", lang=lang),
                      captions=[t(f"method.{m}.help") for m in order], key="tune-method",
                      label_visibility="collapsed")
    shots = int(st.number_input(t("tune.shots"), min_value=1, max_value=1000, step=1, key="tune-shots",
                                help=t("tune.shots_help")))
    preset = st.radio(t("tune.preset"), AUGMENTATION_PRESETS, format_func=lambda p: t(f"tune.preset.{p}", lang=lang),
                      key="tune-preset", horizontal=True, help=t("tune.preset_help"))
    rotations = st.checkbox(t("tune.rotations"), key="tune-rotations", disabled=preset != "inspection",
                            help=t("tune.rotations_help")) and preset == "inspection"
    tiles = st.selectbox(t("tune.tiles"), TILE_CHOICES, key="tune-tiles", help=t("tune.tiles_help"),
                         format_func=lambda choice: t(f"tune.tiles.{choice}", lang=lang) if choice in ("off", "auto")
                         else choice)
    good_class = project.good_class
    escape_rate = DEFAULT_ESCAPE_RATE
    if good_class is None:
        st.caption(t("pf.tune_no_good"))
    else:
        escape_rate = st.number_input(t("pf.tune_escape_rate", good=as_text(good_class)), min_value=0.1,
                                      max_value=50.0,
                                      step=0.5, format="%.1f",
                                      key="tune-escape-rate", help=t("pf.tune_escape_rate_help")) / 100

    with st.expander(t("tune.advanced"), icon=":material/science:"):
        recipe_epochs = epochs_for_shots(shots)
        epochs = int(st.number_input(t("tune.epochs", recipe=recipe_epochs), min_value=0, max_value=2000,
                                     step=1, key="tune-epochs", help=t("tune.epochs_help")))
        lr_mode = st.radio(t("tune.lr_mode"), LR_MODES, key="tune-lr-mode", disabled=method == "zeroshot",
                           format_func=lambda mode: t(f"tune.lr_mode.{mode}"), help=t("tune.lr_mode_help"))
        lr = st.number_input(t("tune.lr"), min_value=0.0, step=0.001, format="%.5f", key="tune-lr",
                             disabled=lr_mode != "fixed")
        if lr_mode == LR_SCALED and loaded is not None:  # the number above is not used
            st.caption(t("tune.lr_scaled_value", lr=f"{scaled_learning_rate(loaded):.4f}",
                         scale=f"{float(loaded.model.logit_scale.exp()):.1f}"))
        c1, c2 = st.columns(2)
        beta_v = c1.number_input(t("tune.beta_v"), min_value=0.0, key="tune-beta-v",
                                 disabled=method not in DISPERSION_METHODS, help=t("tune.beta_v_help"))
        beta_t = c2.number_input(t("tune.beta_t"), min_value=0.0, format="%.4f", key="tune-beta-t",
                                 disabled=method not in DISPERSION_METHODS, help=t("tune.beta_t_help"))
        c1, c2 = st.columns(2)
        n_ctx = int(c1.number_input(t("tune.n_ctx"), min_value=1, max_value=64, key="tune-n-ctx",
                                    disabled=method not in TEXT_PROMPT_METHODS))
        n_vis = int(c2.number_input(t("tune.n_vis"), min_value=1, max_value=64, key="tune-n-vis",
                                    disabled=method not in VISUAL_PROMPT_METHODS))
        c1, c2 = st.columns(2)
        seed = int(c1.number_input(t("tune.seed"), min_value=0, max_value=2**31 - 1, key="tune-seed",
                                   help=t("tune.seed_help")))
        batch_size = int(c2.number_input(t("tune.batch_size"), min_value=1, max_value=512,
                                         key="tune-batch-size"))

    split_error = None
    try:
        split = project.split(shots, seed)
    except DaptError as error:
        split, split_error = None, error
    if split is not None:
        train_counts = {c: 0 for c in split.classnames}
        test_counts = {c: 0 for c in split.classnames}
        for item in split.train:
            train_counts[split.classnames[item.label]] += 1
        for item in split.test:
            test_counts[split.classnames[item.label]] += 1
        own_test = {record.class_name for record in project.images() if record.part == "test"}
        # The settings column is narrow: short headers (the long names as tooltips), and where the test
        # photos come from in a column only when the classes differ in it, else in a line under the table.
        sources = {c: "own" if c in own_test else "drawn" for c in split.classnames}
        mixed = len(set(sources.values())) > 1
        st.dataframe([{"class": c, "train": train_counts[c], "test": test_counts[c],
                       **({"source": t(f"tune.test_{sources[c]}")} if mixed else {})} for c in split.classnames],
                     hide_index=True, width="stretch",
                     column_config={
                         "class": st.column_config.TextColumn(t("common.class")),
                         "train": st.column_config.NumberColumn(t("tune.col_train"), width="small",
                                                                help=t("common.train_images")),
                         "test": st.column_config.NumberColumn(t("tune.col_test"), width="small",
                                                               help=t("common.test_images")),
                         "source": st.column_config.TextColumn(t("tune.test_source"))})
        if not mixed:
            st.caption(t(f"tune.test_all_{next(iter(sources.values()), 'drawn')}"))
        for note in split.notes:
            st.caption(t("tune.note", note=as_text(engine_text(note))))  # notes name classes
    else:
        show_error(split_error)
    if split is not None and tiles != "off" and loaded is not None:
        tile_preview(split, tiles, loaded.preprocessing.size)
    feasibility_section(project, spec, device_key, shots, seed, split,
                        backbone_ready=available is not None and available.ok)

    settings = {"method": method, "epochs": epochs or None, "lr": lr, "seed": seed, "batch_size": batch_size,
                "n_ctx": n_ctx, "n_vis": n_vis, "preset": preset, "rotations": rotations, "tiles": tiles}
    if method in DISPERSION_METHODS:
        settings.update(beta_v=beta_v, beta_t=beta_t)
    can_start = bool(spec) and available is not None and available.ok and split is not None
    # A warm start (engine/warm_start.py): a saved run of this method and backbone, its prompts continued.
    resumable = {info.id: info for info in project.runs()
                 if info.error is None and info.method == method != "zeroshot" and info.backbone == spec}
    # "" is "from scratch" (a None choice would show Streamlit's untranslated "Choose an option").
    if st.session_state.get("tune-start-from") not in resumable:
        st.session_state["tune-start-from"] = ""
    start_from = st.selectbox(t("tune.start_from"), ["", *resumable], key="tune-start-from",
                              format_func=lambda run_id: run_label(resumable[run_id]) if run_id
                              else t("tune.start_from_none"),
                              help=t("tune.start_from_help"), disabled=method == "zeroshot" or not resumable) or None
    budget = st.number_input(t("tune.budget"), min_value=0, max_value=24 * 60, step=5, key="tune-budget",
                             help=t("tune.budget_help"), disabled=method == "zeroshot")
    if can_start and loaded is not None:
        time_estimate_section(loaded, split, settings, shots, lr_mode, project.good_class, budget or None)
    own_runs = state.my_active_jobs(job_queue.JobKind.TUNE)  # one run at a time per session: a second would only queue
    reason = (error_text(split_error, markdown=True) if split_error is not None
              else t("tune.own_run_active") if own_runs else None)
    reason = why_not(project, Action.TUNE) or reason  # a viewer looks at the settings but starts nothing
    start_slot = st.empty()
    clicked = start_slot.button(t("tune.start"), type="primary", icon=":material/play_arrow:",
                                disabled=not can_start or bool(own_runs) or not project.may(Action.TUNE),
                                key="start-tuning", help=reason)
    if clicked and not own_runs:  # a click from a page drawn before the run began does not queue a second
        request = jobs.TuneRequest(str(state.workspace().root), project.id, spec, settings, shots=shots,
                                   device=device_key, choose_lr=None if lr_mode == "fixed" else lr_mode,
                                   escape_rate=escape_rate, budget_minutes=float(budget) if budget else None,
                                   start_from_run=start_from)
        try:
            request.validate()
        except DaptError as error:
            show_error(error)
        else:
            job = project.start_job(state.queue(), request)  # the user's job: checked, audited, theirs in any tab
            state.claim_job(job.id)
            own_runs = [job]
            # Drawn disabled in this same run, so a second click cannot queue a second run. No
            # st.rerun(): the progress panel below is drawn in this run too, so the first update
            # shows without another round trip.
            start_slot.button(t("tune.start"), type="primary", icon=":material/play_arrow:", disabled=True,
                              key="start-tuning-started", help=t("tune.own_run_active"))
    if own_runs:
        st.caption(t("tune.own_run_active"))


def _done(snap) -> None:
    result = snap.result or {}
    saved = t("tune.done", before=pct(result.get("zero_shot_accuracy")), after=pct(result.get("accuracy")),
              n=result.get("n_test"), seconds=f"{result.get('train_seconds') or 0:.0f}")
    timing = result.get("time") or {}
    if timing.get("estimate") is not None:
        saved = join_sentences([saved, t("tune.done_time", estimate=duration(timing["estimate"]),
                                         actual=duration(timing["actual"]))])
    if timing.get("stopped_at_deadline"):
        saved = join_sentences([saved, t("tune.done_budget_stop", epochs=timing["epochs_run"],
                                         planned=timing["epochs"])])
    # Pass/fail and the run's health lead; a run the line could not use is saved, but not congratulated.
    warnings = run_warnings(result)
    lead = [*warnings, pass_fail_view.headline(result, markdown=True)]  # join_sentences skips a missing headline
    alarming = bool(warnings) or pass_fail_view.is_alarming(result)
    (st.warning if alarming else st.success)(join_sentences([*lead, saved]),
                                             icon=":material/warning:" if alarming else ":material/check_circle:")
    if st.button(t("tune.open_inspect"), key=f"inspect-{snap.id}", icon=":material/scatter_plot:"):
        state.choose_run(result["run_id"])
        nav.INSPECT.switch()


# The live column stays in view while the page scrolls: Start sits at the bottom of the settings,
# and a run's progress at the top of this column would otherwise be out of sight when it begins.
st.html("<style>[data-testid='stColumn']:has(.st-key-tune-live)"
        "{position: sticky; top: 4rem; align-self: flex-start}</style>")
with live_col, st.container(key="tune-live"):
    st.subheader(t("tune.live"))
    for lost in project.interrupted_runs():
        settings_lost = lost.get("settings") or {}
        st.warning(t("tune.interrupted", when=str(lost.get("started", ""))[:19].replace("T", " "),
                     method=t(f"method.{settings_lost.get('method', 'dapt')}.name"),
                     backbone=as_text(lost.get("backbone") or ""),
                     shots=lost.get("shots")), icon=":material/restart_alt:")
        if st.button(t("job.dismiss"), key=f"forget-{lost.get('job_id')}", icon=":material/close:",
                     disabled=not project.may(Action.TUNE)):
            project.clear_running(str(lost.get("job_id")))
            st.rerun()
    job_panel(project, job_queue.JobKind.TUNE, on_done=_done)
    if not [j for j in state.queue().jobs(project.id) if j.kind == job_queue.JobKind.TUNE]:
        st.caption(t("tune.live_empty"))

    st.subheader(t("tune.runs"))
    runs = project.runs()
    if not runs:
        st.caption(t("tune.no_runs"))
    for info in runs:
        if info.error is not None:
            st.warning(t("tune.run_damaged", run=info.id))
            continue
        with st.container(border=True):
            st.markdown(run_label(info, markdown=True))
            if info.created_by:
                st.caption(t("tune.run_by", name=as_text(info.created_by)))
            row = st.container(horizontal=True)
            if row.button(t("tune.inspect"), key=f"open-{info.id}", icon=":material/scatter_plot:"):
                state.choose_run(info.id)
                nav.INSPECT.switch()
            if delete_button(f"delete-{info.id}", t("tune.delete_run"), t("tune.delete_run_confirm", run=info.id),
                             where=row, disabled=not project.may(Action.DELETE), help=why_not(project, Action.DELETE)):
                project.delete_run(info.id)
                st.rerun()
