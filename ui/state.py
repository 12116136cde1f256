"""What a page needs from the process and the session: the workspace, the open project, the
job queue, cached backbones, the map warm-up, the device.

The open project is kept in the session AND in the URL (?project=...), so a browser refresh,
which starts a new session, reopens it; with neither, the most recently changed project opens.
"""

from __future__ import annotations

import os

import streamlit as st

from dapt_core.studio import backbone_cache, job_queue, projection
from dapt_core.studio.guarded import UserProject, UserWorkspace
from dapt_core.studio.storage import DEFAULT_ROOT, WORKSPACE_ENV, WorkspaceError
from dapt_core.studio.workspace import Workspace

PROJECT_KEY = "project_id"
RUN_KEY = "run_id"
MY_JOBS_KEY = "_my_jobs"  # ids of the jobs this browser session started (without sign-in: see is_mine)


def workspace() -> UserWorkspace:
    """The workspace as this session's user may use it: only their projects, each change checked against their
    role and written to the project's audit log (dapt_core.studio.guarded). Without sign-in, all of it."""
    from ui.sign_in import current_user  # here, not at the top: ui.sign_in imports this module

    return UserWorkspace(_workspace(os.path.abspath(os.environ.get(WORKSPACE_ENV) or DEFAULT_ROOT)), current_user())


@st.cache_resource(show_spinner=False)
def _workspace(root: str) -> Workspace:
    return Workspace(root)


@st.cache_resource(show_spinner=False)
def warmup() -> projection.Warmup:
    """Started once per server process, on the first page view (see app.py)."""
    return projection.start_warmup()


def queue() -> job_queue.JobQueue:
    return job_queue.get_queue()


@st.cache_resource(show_spinner=False, max_entries=4)
def backbone(spec: str, device: str):
    """A loaded backbone (shared with the job workers through dapt_core.studio.backbone_cache.BACKBONES)."""
    return backbone_cache.BACKBONES.get(spec, device)


@st.cache_resource(show_spinner=False, max_entries=2)
def classifier(path: str, spec: str, device: str):
    """A run's prompt file as a Classifier on the cached backbone (Export's try-out, Inspect's heatmaps)."""
    from dapt_core.engine import prompt_file
    from dapt_core.engine.inference import Classifier

    return Classifier.from_prompt_file(prompt_file.load(path), backbone(spec, device))


def device() -> tuple[str, str]:
    """(device key such as 'cpu' or 'cuda', a human description in the session's language such
    as 'CPU (2 threads)'; a GPU's name is a product name and stays as the driver reports it)."""
    from ui.i18n import t

    key, threads, name = _picked_device()
    if name is not None:
        return key, name
    return key, t("device.cpu", threads=threads) if threads != 1 else t("device.cpu_one")


@st.cache_resource(show_spinner=False)
def _picked_device() -> tuple[str, int, str | None]:
    """(device key, CPU threads, a GPU's name or None): the same for every session, so kept once;
    the words around it are each session's own (a cached sentence would keep the first visitor's language)."""
    import torch

    from dapt_core.engine.device import describe, pick_device

    picked = pick_device(None)
    return str(picked), torch.get_num_threads(), None if picked.type == "cpu" else describe(picked)


def claim_job(job_id: str) -> None:
    """Remember that this session started the job (its cards say "yours"; cancel needs no question)."""
    st.session_state.setdefault(MY_JOBS_KEY, []).append(job_id)


def is_mine(job_id: str) -> bool:
    """Whether the job is this user's: signed in, the job's owner is the user, so a job stays theirs in another
    tab or after the tab is closed; without sign-in (no users to tell apart), this browser session started it."""
    user = workspace().user
    if user is not None:
        job = queue().get(job_id)
        return job is not None and job.owner == user
    return job_id in st.session_state.get(MY_JOBS_KEY, [])


def my_active_jobs(kind: str | None = None) -> list[job_queue.Job]:
    """This session's queued or running jobs (of every project), of one job_queue.JobKind or all."""
    return [job for job in queue().jobs(active_only=True) if is_mine(job.id) and kind in (None, job.kind)]


def current_project() -> UserProject | None:
    """The open project, or None when the workspace has none (or the chosen one is gone)."""
    ws = workspace()
    wanted = st.session_state.get(PROJECT_KEY) or st.query_params.get("project")
    if wanted:
        try:
            project = ws.project(wanted)
        except WorkspaceError:
            project = None
        if project is not None:
            _remember(project.id)
            return project
    listing = [info for info in ws.list_projects() if info.error is None]
    if not listing:
        st.session_state.pop(PROJECT_KEY, None)
        return None
    project = ws.project(listing[0].id)
    _remember(project.id)
    return project


def open_project(project_id: str | None) -> None:
    if project_id is None:
        st.session_state.pop(PROJECT_KEY, None)
        st.query_params.pop("project", None)
    else:
        _remember(project_id)
    st.session_state.pop(RUN_KEY, None)


def _remember(project_id: str) -> None:
    st.session_state[PROJECT_KEY] = project_id
    if st.query_params.get("project") != project_id:
        st.query_params["project"] = project_id


def chosen_run_id(run_ids: list[str]) -> str | None:
    """The run a page shows: the one last chosen in this session (or the URL), else the newest."""
    wanted = st.session_state.get(RUN_KEY) or st.query_params.get("run")
    if wanted in run_ids:
        return wanted
    return run_ids[0] if run_ids else None


def choose_run(run_id: str) -> None:
    st.session_state[RUN_KEY] = run_id
    if st.query_params.get("run") != run_id:
        st.query_params["run"] = run_id


def flash(message: str, kind: str = "success") -> None:
    """A message to show once on the next run (after st.rerun())."""
    st.session_state.setdefault("_flash", []).append((kind, message))


def show_flashes() -> None:
    for kind, message in st.session_state.pop("_flash", []):
        getattr(st, kind)(message)


def bump(key: str) -> int:
    """A counter for widget keys: a new key empties a file uploader after its files were taken."""
    st.session_state[key] = st.session_state.get(key, 0) + 1
    return st.session_state[key]


def counter(key: str) -> int:
    return st.session_state.get(key, 0)


def keep_settings(prefix: str = "tune-") -> None:
    """Keep the values of widgets whose key starts with `prefix` while their page is not shown.

    Streamlit forgets a widget's value once a run does not draw it (another page is open);
    writing the value back as plain session state each run keeps it. Pages that use this seed
    their defaults into the session and give their widgets no default value of their own.
    """
    for key in [k for k in st.session_state.keys() if isinstance(k, str) and k.startswith(prefix)]:
        st.session_state[key] = st.session_state[key]
