"""Words and tables that explain a run: the one sentence for a manager, the dispersion table,
the settings and the data summary. Shared by the Inspect page, the Export page and the report."""

from __future__ import annotations

import math

from dapt_core.engine.methods import DISPERSION_METHODS
from ui.i18n import t


def pct(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{100 * float(value):.1f}%"


def num(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{float(value):.{digits}g}"


def manager_sentence(run_data: dict, *, lang: str | None = None) -> str:
    """What changed, in one plain sentence: accuracy before and after on held-out photos, and
    the class that gained most (or what to try when tuning did not help)."""
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
    if after - before > 0.005:
        sentence = t("story.up", lang=lang, **params)
        if gains and gains[0][0] > 0.005:
            _, name, old, new = gains[0]
            sentence = t("story.up_best", lang=lang, cls=name, cls_before=pct(old), cls_after=pct(new),
                         cls_n=_test_count(run_data, name), **params)
    elif before - after > 0.005:
        sentence = t("story.down", lang=lang, **params)
    else:
        sentence = t("story.same", lang=lang, **params)
    margin = chance_margin(n_test)
    if margin >= SMALL_SAMPLE_MARGIN:
        sentence += " " + t("story.small_sample", lang=lang, n_test=n_test, margin=f"{margin:.0f}")
    return sentence


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


def dispersion_rows(dispersion: dict, *, lang: str | None = None) -> list[dict]:
    """Rows of the before/after dispersion table, with the change and whether it is better."""
    before, after = dispersion.get("before") or {}, dispersion.get("after") or {}
    rows = []
    for key, better, label, meaning in DISPERSION_MEASURES:
        b, a = before.get(key), after.get(key)
        change, verdict = "–", ""
        if b is not None and a is not None and math.isfinite(b) and math.isfinite(a):
            change = f"{(a - b) / abs(b) * 100:+.0f}%" if b else f"{a - b:+.3g}"
            improved = a < b if better == "lower" else a > b
            verdict = t("disp.better", lang=lang) if improved else (t("disp.worse", lang=lang) if a != b else "")
        rows.append({t("disp.col_measure", lang=lang): t(label, lang=lang),
                     t("disp.col_before", lang=lang): num(b), t("disp.col_after", lang=lang): num(a),
                     t("disp.col_change", lang=lang): change, t("disp.col_verdict", lang=lang): verdict,
                     t("disp.col_meaning", lang=lang): t(meaning, lang=lang)})
    return rows


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
        (t("settings.device", lang=lang), str(run_data.get("device"))),
        (t("settings.train_time", lang=lang),
         t("common.seconds", lang=lang, s=f"{metrics.get('train_seconds') or 0:.0f}")),
        (t("settings.created", lang=lang), str(run_data.get("created", "")).replace("T", " ")[:19]),
    ]
    return rows


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
