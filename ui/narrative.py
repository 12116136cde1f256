"""Words and tables that explain a run: the one sentence for a manager, the dispersion table,
the settings and the data summary. Shared by the Inspect page, the Export page and the report."""

from __future__ import annotations

import math

from dapt_core.engine.methods import DISPERSION_METHODS
from ui.i18n import join_sentences, t
from ui.plain_text import name_writer


def pct(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{100 * float(value):.1f}%"


def num(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{float(value):.{digits}g}"


def manager_sentence(run_data: dict, *, lang: str | None = None, markdown: bool = False) -> str:
    """What changed, in one plain sentence: accuracy before and after on held-out photos, and
    the class that gained most (or what to try when tuning did not help). `markdown`: the class names
    written for Streamlit's Markdown (ui.plain_text), not for the HTML report."""
    written = name_writer(markdown)
    metrics = run_data["metrics"]
    before, after = metrics.get("zero_shot_accuracy"), metrics.get("accuracy")
    n_test = metrics.get("n_test") or 0
    shots = run_data.get("shots") or metrics.get("shots") or 0
    if before is None or after is None:
        return t("story.no_test", lang=lang)
    gains = []
    for name, value in (metrics.get("per_class") or {}).items():
        old = (metrics.get("zero_shot_per_class") or {}).get(name)
        if value is not None and old is not None:
            gains.append((value - old, name, old, value))
    gains.sort(reverse=True)
    params = {"shots": shots, "n_test": n_test, "before": pct(before), "after": pct(after)}
    from ui.pass_fail_view import headline  # here: pass_fail_view formats with this module's pct

    pass_fail = headline(metrics, lang=lang, markdown=markdown)
    if after - before > 0.005:
        sentence = t("story.up", lang=lang, **params)
        # With a pass/fail decision the gain of one class is no headline: the good class "gaining" can be
        # the model waving defective parts through (the escapes lead instead).
        if gains and gains[0][0] > 0.005 and not pass_fail:
            _, name, old, new = gains[0]
            sentence = t("story.up_best", lang=lang, cls=written(name), cls_before=pct(old), cls_after=pct(new),
                         cls_n=_test_count(run_data, name), **params)
    elif before - after > 0.005:
        sentence = t("story.down", lang=lang, **params)
    else:
        sentence = t("story.same", lang=lang, **params)
    if metrics.get("chance") is not None:
        sentence = sentence.rstrip("。.") + t("story.chance", lang=lang, chance=pct(metrics["chance"])) + \
            ("。" if sentence.endswith("。") else ".")
    lost = [name for drop, name, _, _ in sorted(gains) if drop < -0.005]
    sentence = join_sentences([*run_warnings(metrics, lang=lang), pass_fail, sentence,
                               t("story.lost", lang=lang, classes=", ".join(map(written, lost))) if lost else ""],
                              lang)
    margin = chance_margin(n_test)
    if margin >= SMALL_SAMPLE_MARGIN:
        sentence += " " + t("story.small_sample", lang=lang, n_test=n_test, margin=f"{margin:.0f}")
    return sentence


# Run-health states (dapt_core.engine.run_health) that the sentence leads with, as a warning.
HEALTH_WARNINGS = ("collapsed", "at_chance", "no_gain")
# What the collapse safeguard (dapt_core.engine.safeguard) may have done instead of the asked method.
SAFEGUARD_ACTIONS = ("switched_method", "zero_shot")


def run_warnings(metrics: dict, *, lang: str | None = None) -> list[str]:
    """What a reader must know before any number: the safeguard replaced the asked run, or the run is
    no better than zero-shot or chance (empty for a healthy run)."""
    warnings = []
    guard = metrics.get("safeguard") or {}
    if guard.get("action") in SAFEGUARD_ACTIONS:
        tried = [row["method"] for row in guard.get("runs") or [] if row.get("outcome") != "kept"]
        warnings.append(t(f"safeguard.{guard['action']}", lang=lang,
                          asked=t(f"method.{guard.get('requested_method', 'dapt')}.name", lang=lang),
                          tried=", ".join(t(f"method.{m}.name", lang=lang) for m in tried),
                          method=t(f"method.{guard.get('method', 'coop')}.name", lang=lang)))
    status = (metrics.get("health") or {}).get("status")
    if status in HEALTH_WARNINGS:
        warnings.append(t(f"health.{status}", lang=lang))
    return warnings


# Below this many test photos an accuracy can move by SMALL_SAMPLE_MARGIN points or more by chance
# (about 380 photos): the sentence then says so.
SMALL_SAMPLE_MARGIN = 5.0


def chance_margin(n: int) -> float:
    """Half-width in percentage points of a 95% interval of an accuracy measured on `n` photos,
    at its widest (an accuracy of 50%): 1.96 x sqrt(0.25 / n)."""
    return 100 * 1.96 * math.sqrt(0.25 / n) if n else math.inf


def _test_count(run_data: dict, class_name: str) -> int:
    """How many test photos of `class_name` the run measured on (a row of its confusion matrix)."""
    classnames = run_data.get("classnames") or run_data["metrics"].get("classnames") or []
    rows = ((run_data["metrics"].get("confusion") or {}).get("after")) or []
    if class_name not in classnames or len(rows) != len(classnames):
        return 0
    return int(sum(rows[classnames.index(class_name)]))


DISPERSION_MEASURES = (
    # key, better when, label key, meaning key
    ("intra", "lower", "disp.intra", "disp.intra_help"),
    ("inter", "higher", "disp.inter", "disp.inter_help"),
    ("ratio", "higher", "disp.ratio", "disp.ratio_help"),
    ("text_inter", "higher", "disp.text_inter", "disp.text_inter_help"),
)


# A measure that moved by less than this share of its value is called unchanged, in the table and in
# the sentence under it: "+0%" next to "worse" read as an alarm about nothing.
UNCHANGED_SHARE = 0.005


def _direction(dispersion: dict, key: str) -> int | None:
    """+1 where the measure rose, -1 where it fell, 0 where it hardly moved, None where it is missing."""
    b, a = (dispersion.get("before") or {}).get(key), (dispersion.get("after") or {}).get(key)
    if b is None or a is None or not (math.isfinite(b) and math.isfinite(a)):
        return None
    if abs(a - b) <= UNCHANGED_SHARE * abs(b):
        return 0
    return 1 if a > b else -1


def dispersion_rows(dispersion: dict, *, lang: str | None = None) -> list[dict]:
    """Rows of the before/after dispersion table, with the change and whether it is better."""
    before, after = dispersion.get("before") or {}, dispersion.get("after") or {}
    rows = []
    for key, better, label, meaning in DISPERSION_MEASURES:
        b, a = before.get(key), after.get(key)
        change, verdict = "–", ""
        direction = _direction(dispersion, key)
        if direction is not None:
            change = f"{(a - b) / abs(b) * 100:+.0f}%" if b else f"{a - b:+.3g}"
            improved = direction == (-1 if better == "lower" else 1)
            verdict = (t("disp.same", lang=lang) if direction == 0 else
                       t("disp.better", lang=lang) if improved else t("disp.worse", lang=lang))
        rows.append({t("disp.col_measure", lang=lang): t(label, lang=lang),
                     t("disp.col_before", lang=lang): num(b), t("disp.col_after", lang=lang): num(a),
                     t("disp.col_change", lang=lang): change, t("disp.col_verdict", lang=lang): verdict,
                     t("disp.col_meaning", lang=lang): t(meaning, lang=lang)})
    return rows


def dispersion_caption(run_data: dict, *, lang: str | None = None) -> str:
    """What the dispersion table measures, and what the run's method does to it: only DAPT has
    losses aimed at these numbers; CoOp leaves the photos where they were (it tunes the text only),
    VPT the class descriptions (it tunes the image side only)."""
    method = run_data.get("method", "dapt")
    key = method if method in ("dapt", "coop", "vpt", "zeroshot") else "other"
    return t(f"disp.caption.{key}", lang=lang, method=t(f"method.{method}.name", lang=lang))


def dispersion_summary(metrics: dict, *, lang: str | None = None) -> str:
    """What the table's changes mean for this run, in plain words: where the photos moved, whether
    that makes the classes easier to tell apart by distance, and that accuracy (and the pass/fail
    numbers) on the held-out photos are the result, the dispersion only a view of how it came about."""
    dispersion = metrics.get("dispersion") or {}
    intra, inter, ratio = (_direction(dispersion, key) for key in ("intra", "inter", "ratio"))
    if intra is None or inter is None:
        return ""
    if intra == 0 and inter == 0:
        sentences = [t("disp.summary.unmoved", lang=lang)]
    else:
        within = {-1: "disp.within.closer", 0: "disp.within.same", 1: "disp.within.spread"}[intra]
        between = {1: "disp.between.apart", 0: "disp.between.same", -1: "disp.between.closer"}[inter]
        sentences = [t("disp.summary.moved", lang=lang, within=t(within, lang=lang), between=t(between, lang=lang))]
        if ratio:
            b, a = dispersion["before"]["ratio"], dispersion["after"]["ratio"]
            sentences.append(t("disp.summary.easier" if ratio > 0 else "disp.summary.harder", lang=lang,
                               change=f"{(a - b) / abs(b) * 100:+.0f}%"))
    before, after = metrics.get("zero_shot_accuracy"), metrics.get("accuracy")
    accuracy_up = before is not None and after is not None and after - before > 0.005
    accuracy_down = before is not None and after is not None and before - after > 0.005
    if ratio == -1 and accuracy_up:
        sentences.append(t("disp.summary.worse_but_accurate", lang=lang, before=pct(before), after=pct(after)))
    elif ratio == 1 and accuracy_down:
        sentences.append(t("disp.summary.better_but_less_accurate", lang=lang, before=pct(before), after=pct(after)))
    sentences.append(t("disp.summary.what_counts", lang=lang))
    return join_sentences(sentences, lang=lang)




def accuracy_rows(metrics: dict, *, lang: str | None = None) -> list[dict]:
    rows = []
    for name, after in (metrics.get("per_class") or {}).items():
        before = (metrics.get("zero_shot_per_class") or {}).get(name)
        change = "–" if before is None or after is None else f"{(after - before) * 100:+.1f}"
        rows.append({t("common.class", lang=lang): name, t("common.zero_shot", lang=lang): pct(before),
                     t("common.tuned", lang=lang): pct(after), t("common.change_points", lang=lang): change})
    return rows


def settings_rows(run_data: dict, *, lang: str | None = None) -> list[tuple[str, str]]:
    metrics = run_data["metrics"]
    config = metrics.get("config") or {}
    backbone = run_data.get("backbone") or {}
    rows = [
        (t("settings.method", lang=lang), t(f"method.{run_data.get('method', 'dapt')}.name", lang=lang)),
        (t("settings.backbone", lang=lang), str(backbone.get("spec"))),
        (t("settings.weights", lang=lang), str(backbone.get("weights"))[:24]),
        (t("settings.shots", lang=lang), str(run_data.get("shots"))),
        (t("settings.epochs", lang=lang), str(metrics.get("epochs"))),
        (t("settings.lr", lang=lang), num(config.get("lr"))),
        (t("settings.augmentation", lang=lang), augmentation_text(config, lang=lang)),
    ]
    if run_data.get("method") in DISPERSION_METHODS:
        rows += [(t("settings.beta_v", lang=lang), num(config.get("beta_v"))),
                 (t("settings.beta_t", lang=lang), num(config.get("beta_t")))]
    rows += [
        (t("settings.n_ctx", lang=lang), str(config.get("n_ctx"))),
        (t("settings.n_vis", lang=lang), str(config.get("n_vis"))),
        (t("settings.seed", lang=lang), str(config.get("seed"))),
        (t("settings.device", lang=lang), device_name(run_data.get("device"), lang=lang)),
        (t("settings.train_time", lang=lang),
         t("common.seconds", lang=lang, s=f"{metrics.get('train_seconds') or 0:.0f}")),
        (t("settings.created", lang=lang), str(run_data.get("created", "")).replace("T", " ")[:19]),
    ]
    return rows


def device_name(device, *, lang: str | None = None) -> str:
    """A run's device key ("cpu", "cuda:0", "mps") as a reader says it ("CPU", "GPU (CUDA)")."""
    kind = str(device or "").split(":")[0]
    return t(f"settings.device.{kind}", lang=lang) if kind in ("cpu", "cuda", "mps") else str(device)


def augmentation_text(config: dict, *, lang: str | None = None) -> str:
    """The run's augmentation preset in words; runs saved before presets existed used the recipe's."""
    preset = t(f"tune.preset.{config.get('preset', 'recipe')}", lang=lang)
    return t("settings.augmentation_turns", lang=lang, preset=preset) if config.get("rotations") else preset


def data_rows(run_data: dict, *, lang: str | None = None) -> list[dict]:
    classnames = run_data.get("classnames") or []
    train = {c: 0 for c in classnames}
    test = {c: 0 for c in classnames}
    for row in run_data.get("train", []):
        train[row["class"]] = train.get(row["class"], 0) + 1
    for row in run_data.get("test", []):
        test[row["class"]] = test.get(row["class"], 0) + 1
    return [{t("common.class", lang=lang): c, t("common.train_images", lang=lang): train[c],
             t("common.test_images", lang=lang): test[c]} for c in classnames]


def mistakes(run_data: dict, predictions_before, predictions_after) -> dict:
    """Test images by what tuning did to them: still wrong, fixed, newly wrong (row indices)."""
    labels = [run_data["classnames"].index(row["class"]) for row in run_data["test"]]
    wrong_after = [i for i, (y, p) in enumerate(zip(labels, predictions_after)) if y != p]
    fixed = [i for i, (y, b, a) in enumerate(zip(labels, predictions_before, predictions_after)) if b != y and a == y]
    broken = [i for i, (y, b, a) in enumerate(zip(labels, predictions_before, predictions_after)) if b == y and a != y]
    return {"wrong_after": wrong_after, "fixed": fixed, "broken": broken}
