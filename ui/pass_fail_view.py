"""Pass or fail, for the people beside the line: the sentence, the key numbers, the table of escapes
and overkill, the operating point in words and the trade-off chart. Shared by the Tune result, the
Inspect page, the Export page and the report, so each says the same thing the same way.

A run's metrics (dapt_core.engine.evaluation.comparison_metrics) hold "pass_fail" (escapes and overkill
zero-shot and tuned, a part passing when "good" is its most probable class, and the trade-off curves)
and "calibration" -> "pass_fail" (the operating point for the allowed escape rate, measured two-fold);
runs without a good class hold neither, and every function here then returns nothing.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go

from dapt_core.deploy.pass_fail import readiness
from ui.i18n import join_sentences, t
from ui.narrative import pct
from ui.plain_text import name_writer

BEFORE_COLOUR, AFTER_COLOUR = "#9aa4b1", "#d1495b"


def count_text(row: dict | None, *, lang: str | None = None) -> str:
    """'182 of 800 (22.8%)'."""
    if not row or not row.get("of"):
        return "–"
    return t("pf.count", lang=lang, k=row["count"], n=row["of"], rate=pct(row["rate"]))


def interval_text(row: dict | None) -> str:
    if not row or not row.get("interval"):
        return "–"
    low, high = row["interval"]
    return f"{100 * low:.1f}–{100 * high:.1f}%"


def operating_point(metrics: dict) -> dict | None:
    return ((metrics.get("calibration") or {}).get("pass_fail")) or None


def headline(metrics: dict, *, lang: str | None = None, markdown: bool = False) -> str | None:
    """The first thing a manager reads: what the tuned model lets through and throws away, against zero-shot,
    then whether it could run a line at the allowed escape rate. None without a good class. `markdown`: the
    class names written for Streamlit's Markdown (ui.plain_text)."""
    pass_fail = metrics.get("pass_fail")
    if not pass_fail:
        return None
    name = name_writer(markdown)
    before, after = pass_fail["before"], pass_fail["after"]
    sentence = t("pf.headline", lang=lang, good=name(pass_fail["good_class"]),
                 escapes=count_text(after["escapes"], lang=lang), overkill=count_text(after["overkill"], lang=lang),
                 escapes_before=count_text(before["escapes"], lang=lang),
                 overkill_before=count_text(before["overkill"], lang=lang))
    escaped = {name: n for name, n in (after.get("escapes_by_class") or {}).items() if n}
    worst = sorted(escaped.items(), key=lambda item: -item[1])[:3]
    most = (t("pf.escapes_by_class", lang=lang, classes=", ".join(f"{name(cls)} {n}" for cls, n in worst))
            if worst else "")
    return join_sentences([sentence, most, line_sentence(metrics, lang=lang)], lang)


def line_sentence(metrics: dict, *, lang: str | None = None) -> str | None:
    """Whether the tuned model could run a line at the allowed escape rate, and what that costs."""
    point = operating_point(metrics)
    verdict = readiness(point)
    if verdict is None:
        return None
    if verdict == "no_threshold":
        return t("pf.line.no_threshold", lang=lang, rate=pct(point["escape_rate"]), n=point["held_out_defective"],
                 needed=math.ceil(1 / point["escape_rate"] - 1))
    measured = point["measured"]
    return t(f"pf.line.{verdict}", lang=lang, rate=pct(point["escape_rate"]),
             escapes=pct(measured["escapes"]["rate"]), overkill=pct(measured["overkill"]["rate"]))


def is_alarming(metrics: dict) -> bool:
    """True when the screen should warn rather than congratulate: the line could not run on this model."""
    return readiness(operating_point(metrics)) in ("no_threshold", "not_ready")


def key_numbers(metrics: dict, *, lang: str | None = None, markdown: bool = False) -> list[dict]:
    """Escapes and overkill for a row of headline numbers: {"label", "rate" (tuned), "count" (tuned, as
    "182 of 800 (22.8%)"), "zero_shot" (zero-shot rate)}; empty without a good class."""
    pass_fail = metrics.get("pass_fail")
    if not pass_fail:
        return []
    before, after = pass_fail["before"], pass_fail["after"]
    return [{"label": t(label, lang=lang), "rate": pct(after[key]["rate"]),
             "count": count_text(after[key], lang=lang), "zero_shot": pct(before[key]["rate"]),
             "help": t(f"{label}_help", lang=lang, count=count_text(after[key], lang=lang),
                       good=name_writer(markdown)(pass_fail["good_class"]))}
            for key, label in (("escapes", "pf.escapes_short"), ("overkill", "pf.overkill_short"))]


def rows(metrics: dict, *, lang: str | None = None) -> list[dict]:
    """The pass/fail table: each measure zero-shot and tuned, with its 95 % interval."""
    pass_fail = metrics.get("pass_fail")
    if not pass_fail:
        return []
    before, after = pass_fail["before"], pass_fail["after"]
    table = []
    for key, label in (("escapes", "pf.escapes_long"), ("overkill", "pf.overkill_long"),
                       ("defect_type_accuracy", "pf.defect_type")):
        table.append({t("pf.col_measure", lang=lang): t(label, lang=lang, good=pass_fail["good_class"]),
                      t("common.zero_shot", lang=lang): count_text(before[key], lang=lang),
                      t("pf.col_interval", lang=lang): interval_text(before[key]),
                      t("common.tuned", lang=lang): count_text(after[key], lang=lang),
                      t("pf.col_interval_tuned", lang=lang): interval_text(after[key])})
    point = operating_point(metrics)
    if point and point.get("feasible") and point.get("measured"):
        measured = point["measured"]
        for key, label in (("escapes", "pf.at_point_escapes"), ("overkill", "pf.at_point_overkill")):
            table.append({t("pf.col_measure", lang=lang): t(label, lang=lang, rate=pct(point["escape_rate"])),
                          t("common.zero_shot", lang=lang): "",
                          t("pf.col_interval", lang=lang): "",
                          t("common.tuned", lang=lang): count_text(measured[key], lang=lang),
                          t("pf.col_interval_tuned", lang=lang): interval_text(measured[key])})
    return table


def operating_point_text(metrics: dict, *, lang: str | None = None, markdown: bool = False) -> str | None:
    """How the pass threshold was placed, in words."""
    point = operating_point(metrics)
    if not point:
        return None
    if not point.get("feasible"):
        return line_sentence(metrics, lang=lang)
    return t("pf.point_help", lang=lang, good=name_writer(markdown)(point["good_class"]),
             threshold=f"{point['threshold']:.3f}",
             rate=pct(point["escape_rate"]), n=point["held_out_defective"])


def tradeoff_figure(metrics: dict, *, lang: str | None = None) -> go.Figure | None:
    """Escapes against overkill as the pass threshold moves, zero-shot and tuned, with the operating point:
    one chart a manager reads as "missing at most 1 in 100 defects costs this many good parts"."""
    pass_fail = metrics.get("pass_fail")
    if not pass_fail or not pass_fail.get("curve_after"):
        return None
    figure = go.Figure()
    for key, name, colour in (("curve_before", t("common.zero_shot", lang=lang), BEFORE_COLOUR),
                              ("curve_after", t("common.tuned", lang=lang), AFTER_COLOUR)):
        curve = pass_fail.get(key) or []
        figure.add_scatter(x=[100 * row["escape_rate"] for row in curve],
                           y=[100 * row["overkill_rate"] for row in curve], mode="lines", name=name,
                           line={"color": colour, "width": 3 if key == "curve_after" else 2, "shape": "hv"},
                           hovertemplate=t("pf.curve_hover", lang=lang) + "<extra></extra>")
    point = operating_point(metrics)
    if point and point.get("feasible") and point.get("measured"):
        measured = point["measured"]
        figure.add_scatter(x=[100 * measured["escapes"]["rate"]], y=[100 * measured["overkill"]["rate"]],
                           mode="markers", name=t("pf.point_name", lang=lang, rate=pct(point["escape_rate"])),
                           marker={"color": AFTER_COLOUR, "size": 12, "symbol": "diamond",
                                   "line": {"color": "black", "width": 1}},
                           hovertemplate=t("pf.curve_hover", lang=lang) + "<extra></extra>")
    # The low-escape end is where a line operates: half the axis is enough to show the whole bend.
    figure.update_layout(title=t("pf.curve_title", lang=lang), height=360, margin={"l": 10, "r": 10, "t": 50, "b": 10},
                         xaxis={"title": t("pf.curve_x", lang=lang), "range": [0, 50], "ticksuffix": "%"},
                         yaxis={"title": t("pf.curve_y", lang=lang), "range": [0, 100], "ticksuffix": "%"},
                         legend={"orientation": "h", "y": -0.25})
    return figure
