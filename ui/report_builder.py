"""Assembles the one-page HTML report of a run (dapt_core.studio.report renders it) in one language."""

from __future__ import annotations

from datetime import datetime

from dapt_core import __version__
from dapt_core.deploy.calibration import MIN_HELD_OUT
from dapt_core.studio.report import Picture, ReportContent, Section, Table, render_report
from ui import charts, pass_fail_view, run_view
from ui.i18n import engine_text, join_sentences, t
from ui.narrative import (
    accuracy_rows,
    data_rows,
    dispersion_caption,
    dispersion_rows,
    dispersion_summary,
    manager_sentence,
    mistakes,
    pct,
    settings_rows,
)

MAX_PICTURES = 12
REPORT_COVERAGES = (0.9, 0.95)  # of the coverages the calibration measures (deploy.calibration)


def _calibration_section(metrics: dict, n_classes: int, lang: str | None) -> Section | None:
    """What the inspection line can expect: the unknown rate, coverage and set size measured on the test
    photos, and the temperature (the numbers of the prompt file's calibration). None for a run made
    before calibration existed."""
    if "calibration" not in metrics:
        return None
    heading = t("report.line_title", lang=lang)
    calibration = metrics["calibration"]
    if calibration is None:
        return Section(heading, t("export.line_uncalibrated", lang=lang, n=MIN_HELD_OUT))
    measured = calibration.get("measured") or {}
    threshold = calibration.get("unknown_threshold")
    rows = [[t("report.line_temperature", lang=lang), f"{calibration['temperature']:.3f}"],
            [t("report.line_threshold", lang=lang), "–" if threshold is None else f"{threshold:.4f}"],
            [t("report.line_unknown_rate", lang=lang, rate=pct(calibration.get("reject_rate"))),
             pct(measured.get("false_reject_rate"))]]
    for coverage in REPORT_COVERAGES:
        sets = (measured.get("coverage") or {}).get(str(coverage)) or {}
        rows.append([t("report.line_coverage", lang=lang, coverage=pct(coverage)), pct(sets.get("coverage"))])
        size = sets.get("mean_set_size")
        rows.append([t("report.line_set_size", lang=lang, coverage=pct(coverage), classes=n_classes),
                     "–" if size is None else f"{size:.2f}"])
    return Section(heading, t("report.line_help", lang=lang, n=calibration.get("held_out_photos")),
                   tables=[Table([t("report.line_measure", lang=lang), t("report.value", lang=lang)], rows)])


def _pass_fail_section(metrics: dict, lang: str | None) -> Section | None:
    """Escapes and overkill before and after, the trade-off chart and the operating point; for a run whose
    task has no good class, one line saying there is no pass/fail decision."""
    if not metrics.get("pass_fail"):
        return Section(t("pf.title", lang=lang), t("pf.none", lang=lang)) if "pass_fail" in metrics else None
    figure = pass_fail_view.tradeoff_figure(metrics, lang=lang)
    text = " ".join(filter(None, [t("pf.help", lang=lang), pass_fail_view.operating_point_text(metrics, lang=lang)]))
    return Section(t("pf.title", lang=lang), text, tables=[_table(pass_fail_view.rows(metrics, lang=lang))],
                   figures=[figure] if figure is not None else [])


def _table(rows: list[dict]) -> Table:
    columns = list(rows[0]) if rows else []
    return Table(columns, [[row[c] for c in columns] for row in rows])


def build_report(view: run_view.RunView, project_name: str, *, lang: str | None = None,
                 heatmaps: list[Picture] | None = None) -> str:
    """The report's HTML; `heatmaps`: example photos with their maps (ui.heatmap_view), for a tiled run."""
    metrics = view.metrics
    proj = run_view.projection(view)
    before_map, after_map = run_view.maps(view, proj, lang=lang)
    cm_before, cm_after = run_view.confusion_figures(view, lang=lang)
    groups = mistakes(view.data, view.pred_before, view.pred_after)
    pictures = [Picture(run_view.thumbnail_bytes(view, i),
                        t("inspect.caption_wrong", lang=lang, true=view.classnames[view.labels[i]],
                          predicted=view.classnames[view.pred_after[i]], name=view.names[i]))
                for i in groups["wrong_after"][:MAX_PICTURES]]
    skipped = metrics.get("skipped") or []
    sections = [
        Section(t("inspect.map_title", lang=lang),
                join_sentences([t("inspect.map_help", lang=lang), t("inspect.map_stars", lang=lang)], lang=lang),
                figures=[before_map, after_map], columns=2),
        Section(t("inspect.dispersion_title", lang=lang),
                join_sentences([dispersion_caption(view.data, lang=lang), dispersion_summary(metrics, lang=lang)],
                               lang=lang),
                tables=[_table(dispersion_rows(metrics["dispersion"], lang=lang))]),
        Section(t("inspect.accuracy_title", lang=lang), tables=[_table(accuracy_rows(metrics, lang=lang))],
                figures=[run_view.per_class_figure(view, lang=lang)]),
        Section(t("inspect.confusion_title", lang=lang), t("inspect.confusion_help", lang=lang),
                figures=[cm_before, cm_after], columns=2),
        Section(t("report.mistakes", lang=lang, n=len(groups["wrong_after"]), shown=len(pictures)),
                t("report.mistakes_help", lang=lang, fixed=len(groups["fixed"]), broken=len(groups["broken"])),
                pictures=pictures),
        Section(t("report.settings", lang=lang),
                tables=[Table([t("report.setting", lang=lang), t("report.value", lang=lang)],
                              [list(row) for row in settings_rows(view.data, lang=lang)])]),
        Section(t("report.data", lang=lang),
                t("report.data_help", lang=lang, skipped=len(skipped)),
                tables=[_table(data_rows(view.data, lang=lang))]
                + ([Table([t("data.col_file", lang=lang), t("data.col_reason", lang=lang)],
                          [[s.get("path"), engine_text(s.get("reason") or "", lang)] for s in skipped])]
                   if skipped else [])),
    ]
    calibration = _calibration_section(metrics, len(view.classnames), lang)
    if calibration is not None:  # after accuracy, before the confusion matrices
        sections.insert(next(i for i, section in enumerate(sections)
                             if section.heading == t("inspect.accuracy_title", lang=lang)) + 1, calibration)
    if heatmaps is not None:  # where the defects are, right after what the line decides
        sections.insert(0, Section(t("heat.title", lang=lang), join_sentences(
            [t("report.heatmaps_help", lang=lang), t("heat.caption", lang=lang)], lang=lang), pictures=heatmaps))
    pass_fail = _pass_fail_section(metrics, lang)
    if pass_fail is not None:
        sections.insert(0, pass_fail)  # what the line decides comes first
    if metrics.get("history"):
        sections.append(Section(t("inspect.training_curve", lang=lang),
                                figures=[run_view.loss_figure(view, lang=lang)]))
    content = ReportContent(
        title=t("report.title", lang=lang, project=project_name),
        subtitle=t("report.subtitle", lang=lang, run=view.run.id,
                   created=str(view.data.get("created", ""))[:19].replace("T", " "),
                   method=t(f"method.{view.data.get('method', 'dapt')}.name", lang=lang),
                   backbone=(view.data.get("backbone") or {}).get("spec", "")),
        headline=manager_sentence(view.data, lang=lang),
        key_numbers=[(t(label, lang=lang), number["count"]) for label, number
                     in zip(("pf.escapes", "pf.overkill"), pass_fail_view.key_numbers(metrics, lang=lang))]
        + [(t("inspect.zero_shot", lang=lang), pct(metrics.get("zero_shot_accuracy"))),
           (t("inspect.tuned", lang=lang), pct(metrics.get("accuracy"))),
           (t("report.chance", lang=lang), pct(metrics.get("chance"))),
           (t("inspect.test_images", lang=lang), str(metrics.get("n_test"))),
           (t("report.shots", lang=lang), str(view.data.get("shots")))],
        sections=sections,
        footer=t("report.footer", lang=lang, version=__version__, when=datetime.now().strftime("%Y-%m-%d %H:%M")),
        lang=lang or "en",
        plotly_config=charts.plotly_config(lang),
    )
    return render_report(content)
