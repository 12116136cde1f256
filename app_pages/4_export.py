"""Export: the prompt file, the HTML report, a Python snippet; import a prompt file and score it."""

from __future__ import annotations

import math
import re
import zipfile
from pathlib import Path

import streamlit as st

from dapt_core.data.images import IMAGE_SUFFIXES, largest_size, load_image
from dapt_core.deploy import latency, onnx_export
from dapt_core.deploy.calibration import MIN_HELD_OUT, Calibration
from dapt_core.engine import prompt_file
from dapt_core.engine.inference import Classifier
from dapt_core.errors import DaptError, ImageRejected
from dapt_core.studio import backbone_cache, export_cache, job_queue, jobs
from dapt_core.studio.access import Action
from ui import charts, pass_fail_view, run_view, state, uploads
from ui.drift_view import drift_section
from ui.heatmap_view import heatmap_gallery, report_heatmaps
from ui.i18n import current_language, engine_text, t
from ui.narrative import pct
from ui.plain_text import as_text, in_code_span
from ui.project_access import why_not
from ui.report_builder import build_report
from ui.widgets import job_panel, page_header, require_project, run_picker, show_error

project = require_project()
page_header("export.title", project)
device_key, _ = state.device()


def _file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "dapt"


def _classifier(path: str, spec: str, device: str) -> Classifier | None:
    """The run's classifier, loaded when first needed (trying photos, exporting); None after showing why not."""
    try:
        return state.classifier(path, spec, device)
    except DaptError as error:
        show_error(error)
        return None


def _calibration_note(calibration: Calibration | None, coverage: float) -> None:
    if calibration is None:
        st.info(t("export.line_uncalibrated", n=MIN_HELD_OUT), icon=":material/info:")
        return
    measured = calibration.measured
    sets = measured.get("coverage", {}).get(str(coverage), {})
    threshold = calibration.unknown_threshold()
    st.caption(t("export.line_calibration", threshold=f"{threshold:.4f}", rate=pct(calibration.reject_rate),
                 n=calibration.held_out, measured=pct(measured.get("false_reject_rate")), coverage=pct(coverage),
                 covered=pct(sets.get("coverage")), size=f"{sets.get('mean_set_size', float('nan')):.2f}"))


def _operating_point_choice(calibration: Calibration | None) -> float | None:
    """The allowed escape rate for trying photos (the file's by default), with what it costs in good parts
    stopped on the held-out photos; None for a file without a pass/fail operating point."""
    point = calibration.operating_point if calibration is not None else None
    if point is None:
        return None
    options = sorted({0.005, 0.01, 0.02, 0.05, 0.1, point.escape_rate})
    rate = st.select_slider(t("pf.try_escape_rate"), options=options, value=point.escape_rate, format_func=pct,
                            key="try-escape-rate", help=t("pf.try_escape_rate_help", rate=pct(point.escape_rate)))
    cut = point.cut(rate)
    if cut == float("inf"):
        st.warning(t("pf.line.no_threshold", rate=pct(rate), n=len(point.defect_scores),
                     needed=math.ceil(1 / rate - 1)), icon=":material/warning:")
    else:
        st.caption(t("pf.try_point", good=as_text(point.good_class), threshold=f"{cut:.3f}", rate=pct(rate),
                     overkill=pct(point.overkill_on_held_out(rate)), n=len(point.good_scores)))
    return rate


def _try_photos(classifier: Classifier, decision, photos) -> None:
    images, names = [], []
    for photo in photos:
        try:
            images.append(load_image(photo.getvalue()))
            names.append(photo.name)
        except ImageRejected as error:
            st.warning(t("export.try_skipped", name=as_text(photo.name), reason=as_text(engine_text(str(error)))),
                       icon=":material/warning:")
    if not images:
        return
    rows = []
    tiled = classifier.tiling.on
    predictions = classifier.predict(images, decision, heatmaps=tiled)
    for name, prediction in zip(names, predictions):
        # An unknown photo is unlike every training photo: its class probability is no confidence, and
        # the prediction set's coverage holds only for photos like the test photos. Neither is shown.
        if prediction.unknown:
            result, confidence, members = t("export.unknown_result", cls=prediction.label), "–", "–"
        else:
            result, confidence = prediction.label, pct(prediction.score)
            members = ("–" if prediction.prediction_set is None else ", ".join(prediction.prediction_set) or "∅")
        verdict = {}
        if prediction.verdict is not None:
            # An unknown part fails whatever its P(good): that number means nothing for it, so none is shown.
            verdict = {t("pf.col_verdict"): t(f"pf.verdict_{prediction.verdict}"),
                       t("pf.col_good_probability"): "–" if prediction.unknown else pct(prediction.good_probability)}
        rows.append({t("data.col_file"): name, **verdict, t("export.col_result"): result,
                     t("export.col_confidence"): confidence, t("export.col_set"): members})
    # A long file name would push the last columns out of view: names get a set width (and a tooltip).
    st.dataframe(rows, hide_index=True, width="stretch",
                 column_config={t("data.col_file"): st.column_config.TextColumn(width="medium")})
    if any(prediction.unknown for prediction in predictions):
        st.caption(t("export.unknown_note"))
    if tiled:
        heatmap_gallery(images, names, predictions)


def _zip_names(archive: Path) -> list[str]:
    """The files in a ZIP, as the button that downloads it names them (read from the archive itself)."""
    with zipfile.ZipFile(archive) as opened:
        return opened.namelist()


def _latency_table(rows: list[dict]) -> None:
    for engine, error in {row["engine"]: row["error"] for row in rows if "error" in row}.items():
        st.warning(t("export.bench_failed", engine=engine, error=as_text(error)), icon=":material/warning:")
    table = [{t("export.bench_engine"): row["engine"], t("export.bench_batch"): row["batch"],
              t("export.bench_ms"): round(row["ms_per_photo"], 2),
              t("export.bench_fps"): round(row["photos_per_second"], 1),
              t("export.bench_memory"): None if row.get("peak_memory_mb") is None else round(row["peak_memory_mb"])}
             for row in rows if "error" not in row]
    if table:
        st.dataframe(table, hide_index=True, width="stretch")
        tiled = next((row for row in rows if row.get("views_per_photo", 1) > 1), None)
        if tiled is not None:
            st.caption(t("export.bench_tiles", views=tiled["views_per_photo"], width=tiled["photo_size"][0],
                         height=tiled["photo_size"][1]))


run = run_picker(project, key=f"export-run-{project.id}")
if run is not None:
    stem = f"{_file_stem(project.id)}-{run.id}"
    left, right = st.columns(2, gap="large")
    with left:
        st.subheader(t("export.prompt_title"))
        st.caption(t("export.prompt_help"))
        try:
            data = run.prompt_file.read_bytes()
        except OSError as error:
            show_error(error)
            data = None
        if data is not None:
            def _prompt_file(data=data, run_id=run.id) -> bytes:  # read when clicked: the History says who took it
                project.note_download("prompt_file", run_id)
                return data

            st.download_button(t("export.prompt_download"), _prompt_file, file_name=f"{stem}.safetensors",
                               mime="application/octet-stream", icon=":material/download:", type="primary",
                               key="download-prompt", on_click="ignore")  # no rerun: see the report below
            st.caption(t("export.prompt_size", kb=f"{len(data) / 1024:.0f}"))
    with right:
        st.subheader(t("export.report_title"))
        st.caption(t("export.report_help"))
        language = current_language()
        spec = (run.data.get("backbone") or {}).get("spec", "demo")

        def _report() -> str:  # made when clicked: the page itself stays fast
            project.note_download("report", run.id)
            view = run_view.load_view(run)
            return build_report(view, project.name, lang=language,
                                heatmaps=report_heatmaps(view, lambda: _classifier(str(run.prompt_file), spec,
                                                                                   device_key), lang=language))

        # on_click="ignore" on both downloads: a download that reran the page would replace this
        # button's prepared file, and a click on it right after would find nothing.
        st.download_button(t("export.report_download"), _report, file_name=f"{stem}-report.html", mime="text/html",
                           icon=":material/description:", key="download-report", on_click="ignore")

    st.subheader(t("export.snippet_title"))
    st.caption(t("export.snippet_help"))
    st.code(t("export.snippet", file=f"{stem}.safetensors", spec=spec), language="python")

    # ------------------------------------------------------------ for the inspection line
    st.divider()
    st.subheader(t("export.line_title"))
    st.caption(t("export.line_help"))
    try:
        tuned = prompt_file.load(run.prompt_file)
    except DaptError as error:
        show_error(error)
        tuned = None
    if tuned is not None:
        calibration = Calibration.from_dict(tuned.header["calibration"]) if tuned.header.get("calibration") else None
        coverage = st.select_slider(t("export.try_coverage"), options=[0.8, 0.9, 0.95, 0.99], value=0.95,
                                    format_func=pct, key="try-coverage")
        _calibration_note(calibration, coverage)
        escape_rate = _operating_point_choice(calibration)
        photos = st.file_uploader(t("export.try_upload"), accept_multiple_files=True,
                                  type=sorted(s.lstrip(".") for s in IMAGE_SUFFIXES), key=f"try-{run.id}")
        if photos:
            classifier = _classifier(str(run.prompt_file), spec, device_key)
            if classifier is not None:
                _try_photos(classifier, classifier.decision(coverage=coverage, escape_rate=escape_rate), photos)

        st.markdown(f"**{t('export.onnx_title')}**")
        st.caption(t("export.onnx_help"))
        onnx_key = f"onnx-zip-{run.id}"  # the export's path: the file is read when Download is clicked
        cache_dir = project.workspace.cache_dir
        if st.button(t("export.onnx_prepare"), icon=":material/memory:", key="make-onnx"):
            with st.spinner(t("export.onnx_prepare")):
                classifier = _classifier(str(run.prompt_file), spec, device_key)
                try:
                    if classifier is not None:
                        archive = export_cache.onnx_zip_path(cache_dir, project.id, run.id)
                        st.session_state[onnx_key] = str(onnx_export.export_zip(classifier, archive, stem))
                        export_cache.prune(cache_dir)
                        project.note_download("onnx", run.id)
                except DaptError as error:
                    show_error(error)
        archive = st.session_state.get(onnx_key)
        if archive and Path(archive).is_file():  # pruned meanwhile (export_cache.KEEP): made again on request
            archive = Path(archive)
            st.download_button(t("export.onnx_download", files=", ".join(_zip_names(archive))), archive.read_bytes,
                               file_name=f"{stem}-onnx.zip", mime="application/zip", icon=":material/download:",
                               key="download-onnx", on_click="ignore")

        st.markdown(f"**{t('export.bench_title')}**")
        st.caption(t("export.bench_help"))
        bench_key = f"bench-{run.id}-{device_key}"
        if st.button(t("export.bench_run"), icon=":material/speed:", key="run-bench"):
            largest = largest_size(run.test_image_path(row) for row in run.data.get("test") or [])
            with st.spinner(t("export.bench_run")):
                st.session_state[bench_key] = latency.measure(run.prompt_file, device=device_key, photo_size=largest)
        if bench_key in st.session_state:
            _latency_table(st.session_state[bench_key])
    drift_section(project, run, device_key)

# ---------------------------------------------------------------- import a prompt file
st.divider()
st.subheader(t("export.import_title"))
st.caption(t("export.import_help"))
upload_key = f"import-{project.id}-{state.counter('prompt-imports')}"
uploaded = st.file_uploader(t("export.import_upload"), key=upload_key)
if uploaded is not None:
    st.session_state["imported-prompt"] = (uploaded.name, uploaded.getvalue())
    uploads.release([uploaded])
    state.bump("prompt-imports")
    st.rerun()

imported = st.session_state.get("imported-prompt")
if imported is not None:
    name, data = imported
    try:
        file = prompt_file.load(data, name)
    except DaptError as error:
        st.error(t("export.import_bad", name=as_text(name)), icon=":material/error:")
        show_error(error)
        file = None
    if file is not None:
        header = file.header
        metrics = header.get("metrics") or {}
        st.markdown(t("export.import_summary", name=as_text(name), method=t(f"method.{file.method}.name"),
                      backbone=in_code_span(file.backbone_spec), classes=", ".join(map(as_text, file.classnames)),
                      created=str(header.get("created", ""))[:19].replace("T", " "),
                      before=pct(metrics.get("zero_shot_accuracy")), after=pct(metrics.get("accuracy"))))
        comparison = jobs.compare_classes(file.classnames, project.classes)
        if comparison["case_only"]:
            st.info(t("export.classes_case",
                      pairs=", ".join(f"{as_text(a)} ↔ {as_text(b)}" for a, b in comparison["case_only"])))
        if comparison["only_file"]:
            st.warning(t("export.classes_only_file", classes=", ".join(map(as_text, comparison["only_file"]))),
                       icon=":material/warning:")
        if comparison["only_project"]:
            st.warning(t("export.classes_only_project", classes=", ".join(map(as_text, comparison["only_project"]))),
                       icon=":material/warning:")
        if not comparison["only_file"] and not comparison["only_project"] and not comparison["case_only"]:
            st.success(t("export.classes_match"), icon=":material/check_circle:")
        with st.spinner(t("tune.checking", spec=as_text(file.backbone_spec))):
            available = backbone_cache.BACKBONES.check(file.backbone_spec, device_key)
        problem = None
        if not available.ok:
            problem = t("export.backbone_missing", spec=as_text(file.backbone_spec),
                        message=as_text(available.message))
        else:
            try:
                file.check_backbone(state.backbone(file.backbone_spec, device_key))
            except DaptError as error:
                problem = t("export.backbone_mismatch", message=as_text(error))
        if problem:
            st.error(problem, icon=":material/error:")
        usable = comparison["usable"] and problem is None
        if not comparison["usable"]:
            st.error(t("export.no_common_classes"), icon=":material/error:")
        c1, c2 = st.columns([1, 1])
        if c1.button(t("export.evaluate"), type="primary", disabled=not usable or not project.may(Action.TUNE),
                     icon=":material/fact_check:", key="evaluate-import", help=why_not(project, Action.TUNE)):
            job = project.start_job(state.queue(), jobs.EvaluateRequest(str(state.workspace().root), project.id,
                                                                        data, name, device=device_key))
            st.session_state.setdefault("_my_jobs", []).append(job.id)
            st.rerun()
        if c2.button(t("export.import_clear"), key="clear-import", type="tertiary"):
            st.session_state.pop("imported-prompt", None)
            st.rerun()


def _evaluation_done(snap) -> None:
    result = snap.result or {}
    classnames = result.get("classnames") or []
    st.success(t("export.eval_done", name=as_text(result.get("file_name") or ""), n=result.get("n_test"),
                 before=pct(result.get("zero_shot_accuracy")), after=pct(result.get("accuracy"))),
               icon=":material/check_circle:")
    if result.get("pass_fail"):  # the line's numbers on this project's photos, as a run's page leads with them
        st.info(pass_fail_view.headline(result, markdown=True), icon=":material/rule:")
        st.dataframe(pass_fail_view.rows(result), hide_index=True, width="stretch")
    left_out = result.get("left_out") or {}
    if left_out.get("excluded"):
        st.caption(t("export.eval_excluded", n=left_out["excluded"]))
    for other, count in (left_out.get("other_classes") or {}).items():
        st.caption(t("export.eval_other_class", cls=as_text(other), n=count))
    confusion = result.get("confusion") or {}
    if confusion.get("after"):
        st.plotly_chart(charts.confusion_heatmap(confusion["after"], classnames, t("inspect.confusion_after")),
                        key=f"eval-cm-{snap.id}", config=charts.plotly_config())
    wrong = [row for row in result.get("rows", []) if row["predicted"] != row["true"]]
    if wrong:
        st.markdown(t("export.eval_mismatches", n=len(wrong)))
        st.dataframe([{t("data.col_file"): row["name"], t("chart.true"): row["true"],
                       t("chart.predicted"): row["predicted"], t("common.zero_shot"): row["zero_shot"]}
                      for row in wrong], hide_index=True, width="stretch")
    else:
        st.caption(t("export.eval_no_mismatch"))


job_panel(project, job_queue.JobKind.EVALUATE, on_done=_evaluation_done)
