"""A project's tuning runs: saving one whole (assembled in a hidden folder, then renamed into place),
listing, opening and deleting them, and the markers that tell a user about a run a stopped server
left unfinished."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .disk import disk_error, disk_errors
from .manifest import ProjectManifest
from .storage import (
    EMBEDDINGS_FILE,
    FORMAT_VERSION,
    PROJECTION_FILE,
    PROMPT_FILE,
    RUN_FILE,
    RUN_FORMAT,
    RunInfo,
    WorkspaceError,
    atomic_write_json,
    fsync_dir,
    mtime_of,
    utc_now,
)

if TYPE_CHECKING:
    from .workspace import Project

_RUN_ID = re.compile(r"^[0-9]{8}-[0-9]{6}-[a-z]+-[0-9a-f]{4}$")
_STALE_INCOMING_SECONDS = 600
INCOMING_PREFIX = ".incoming-"  # a run being assembled (recovery.py removes what a crash left)
# Identifies this server process in run markers (a PID alone can be reused after a restart).
PROCESS_TOKEN = f"{os.getpid()}-{time.time():.0f}-{secrets.token_hex(3)}"


class ProjectRuns(ProjectManifest):
    """The saved runs of a Project."""

    # ------------------------------------------------------------------ runs
    def run_ids(self) -> list[str]:
        if not self.runs_dir.is_dir():
            return []
        return sorted((p.name for p in self.runs_dir.iterdir() if _RUN_ID.match(p.name)), reverse=True)

    def runs(self) -> list[RunInfo]:
        """Saved runs, newest first; a run whose files are damaged is listed with its error."""
        infos = []
        for run_id in self.run_ids():
            try:
                data = self.run(run_id).data
            except WorkspaceError as error:
                infos.append(RunInfo(run_id, "", "?", "?", 0, None, None, 0, error))
                continue
            metrics = data["metrics"]
            tuned = (metrics.get("pass_fail") or {}).get("after") or {}
            infos.append(RunInfo(run_id, data["created"], data["method"], data["backbone"]["spec"],
                                 int(data.get("shots") or 0), metrics.get("accuracy"),
                                 metrics.get("zero_shot_accuracy"), int(metrics.get("n_test") or 0),
                                 escapes=(tuned.get("escapes") or {}).get("rate"),
                                 overkill=(tuned.get("overkill") or {}).get("rate"),
                                 created_by=data.get("created_by")))
        return infos

    def run(self, run_id: str) -> SavedRun:
        folder = self.runs_dir / str(run_id)
        if not _RUN_ID.match(str(run_id)) or not folder.is_dir():
            raise WorkspaceError("run_not_found", run=str(run_id))
        return SavedRun(self, folder)

    def delete_run(self, run_id: str) -> None:
        run = self.run(run_id)
        trash = self.runs_dir / f".deleted-{run_id}"
        with disk_errors():
            os.replace(run.path, trash)
        shutil.rmtree(trash, ignore_errors=True)
        with self._lock:
            manifest = self.manifest()
            in_manifest = {item["sha256"] for item in manifest["images"]}
        orphans = {p.stem for p in self.images_dir.glob("*") if p.stem not in in_manifest}
        self._forget_blobs(orphans)

    def _shas_in_runs(self) -> set[str]:
        shas: set[str] = set()
        for run_id in self.run_ids():
            try:
                data = self.run(run_id).data
            except WorkspaceError:
                continue
            shas.update(item["sha256"] for item in data.get("train", []) + data.get("test", []))
        return shas

    def save_run(self, result, *, request: dict | None = None, prompt_extra: dict | None = None,
                 metrics_extra: dict | None = None, created_by: str | None = None) -> SavedRun:
        """Store an ExperimentResult: settings and metrics (with `metrics_extra` added), the prompt file, and
        the embeddings Inspect draws, and who made it (`created_by`: the signed-in user whose job it was, None
        without sign-in). Everything is written into a hidden folder that is renamed into place
        at the end, so a run is either complete or absent."""
        import torch
        from safetensors.torch import save_file

        records = self.names_by_sha()
        classnames = list(result.split.classnames)
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{result.config.method}-{secrets.token_hex(2)}"
        with disk_errors():
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            self._clean_incoming()
            incoming = self.runs_dir / f"{INCOMING_PREFIX}{run_id}"
            incoming.mkdir()
        try:
            def describe(path, label) -> dict:
                sha = Path(path).stem
                record = records.get(sha)
                return {"sha256": sha, "name": record.name if record else Path(path).name,
                        "class": classnames[label], "suffix": Path(path).suffix}

            test_rows = [describe(p, int(label)) for p, label in zip(result.after.paths, result.after.labels.tolist())]
            train_rows = [describe(item.path, item.label) for item in result.split.train]
            metrics = {**result.metrics(), **(metrics_extra or {})}
            for entry in metrics.get("skipped", []):
                sha = Path(entry["path"]).stem
                entry["path"] = records[sha].name if sha in records else Path(entry["path"]).name
            data = {
                "format": RUN_FORMAT, "format_version": FORMAT_VERSION, "id": run_id, "created": utc_now(),
                "created_by": created_by,
                "project": {"id": self.id, "name": self.name},
                "method": result.config.method, "backbone": result.backbone.describe(),
                "device": str(result.backbone.device), "shots": result.shots, "seed": result.config.seed,
                "classnames": classnames, "request": request or {}, "metrics": metrics,
                "train": train_rows, "test": test_rows,
            }
            before, after = result.before, result.after
            tensors = {
                "before_features": before.features, "after_features": after.features,
                "before_text": before.text_features, "after_text": after.text_features,
                "before_logits": before.logits, "after_logits": after.logits,
                "labels": after.labels.to(torch.int64),
            }
            # A copy each: without a visual prompt (CoOp, zero-shot, a run the collapse safeguard replaced)
            # the tuned image features are the frozen ones, one tensor under two names, which safetensors
            # refuses to write.
            tensors = {k: v.detach().cpu().clone(memory_format=torch.contiguous_format) for k, v in tensors.items()}
            tensors = {k: (v.float() if v.is_floating_point() else v) for k, v in tensors.items()}
            save_file(tensors, str(incoming / EMBEDDINGS_FILE))
            extra = {"dapt_studio": {"project": data["project"]["name"], "run_id": run_id,
                                     "image_names": {row["sha256"]: row["name"] for row in train_rows}}}
            extra["dapt_studio"].update(prompt_extra or {})
            result.save_prompt_file(incoming / PROMPT_FILE, extra=extra)
            atomic_write_json(incoming / RUN_FILE, data)
            fsync_dir(incoming)
            os.replace(incoming, self.runs_dir / run_id)
            fsync_dir(self.runs_dir)
        except BaseException as error:
            shutil.rmtree(incoming, ignore_errors=True)
            told = disk_error(error)  # a full disk: said plainly, the project as it was
            if told is not None:
                raise told from error
            raise
        return SavedRun(self, self.runs_dir / run_id)

    # A job that is tuning leaves a marker, removed when it ends in any way. A marker written by
    # another server process means that process stopped mid-run: the user is told, not left
    # wondering where the run went.
    def mark_running(self, job_id: str, info: dict) -> None:
        with disk_errors():
            atomic_write_json(self.runs_dir / f".running-{job_id}.json",
                              {**info, "job_id": job_id, "process": PROCESS_TOKEN, "started": utc_now()})

    def clear_running(self, job_id: str) -> None:
        if re.fullmatch(r"[0-9a-f]{1,32}", str(job_id)):
            (self.runs_dir / f".running-{job_id}.json").unlink(missing_ok=True)

    def interrupted_runs(self) -> list[dict]:
        """Runs that a previous server process started and never finished."""
        found = []
        for path in sorted(self.runs_dir.glob(".running-*.json")) if self.runs_dir.is_dir() else []:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            if data.get("process") != PROCESS_TOKEN:
                found.append(data)
        return found

    def _clean_incoming(self) -> None:
        """Remove leftovers of runs whose saving was interrupted (a crash mid-save)."""
        for folder in self.runs_dir.glob(f"{INCOMING_PREFIX}*"):
            if time.time() - mtime_of(folder) > _STALE_INCOMING_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)


class SavedRun:
    """One saved run: its settings and metrics (`data`), embeddings and prompt file."""

    def __init__(self, project: Project, folder: Path):
        self.project = project
        self.path = folder
        self.id = folder.name
        try:
            self.data = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise WorkspaceError("run_damaged", run=self.id, detail=str(error)) from None
        if not isinstance(self.data, dict) or self.data.get("format") != RUN_FORMAT or "metrics" not in self.data:
            raise WorkspaceError("run_damaged", run=self.id, detail="not a DAPT Studio run")

    @property
    def metrics(self) -> dict:
        return self.data["metrics"]

    @property
    def classnames(self) -> list[str]:
        return list(self.data["classnames"])

    @property
    def prompt_file(self) -> Path:
        return self.path / PROMPT_FILE

    def embeddings(self) -> dict:
        """numpy arrays: before/after_features (N, D), before/after_text (C, D), before/after_logits
        (N, C) and labels (N,); row i is test image self.data['test'][i]."""
        from safetensors.numpy import load_file

        try:
            return load_file(str(self.path / EMBEDDINGS_FILE))
        except Exception as error:  # safetensors raises its own error types for damaged files
            raise WorkspaceError("run_damaged", run=self.id, detail=f"its embeddings: {error}") from None

    def test_image_path(self, row: dict) -> Path:
        return self.project.image_path(row["sha256"], row.get("suffix") or None)

    def load_projection(self, key: dict) -> dict | None:
        """The cached map if it was made with the same settings (`key`), else None."""
        try:
            data = json.loads((self.path / PROJECTION_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        return data if data.get("key") == key else None

    def save_projection(self, key: dict, coordinates: dict) -> None:
        atomic_write_json(self.path / PROJECTION_FILE, {"key": key, **coordinates})
