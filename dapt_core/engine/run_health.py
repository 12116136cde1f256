"""Did a tuning run learn anything? A verdict from numbers every run already has.

On photos whose frozen features barely tell the classes apart, cross-entropy can pull every class
text embedding onto one point: all classes then get the same logit, the loss sits at ln C (the
loss of a uniform guess) and the model answers one class for everything. Such a run used to be
saved like any other. `assess` looks at the run's history (per-epoch training accuracy and
losses), the class text spread before and after tuning, and the tuned against the zero-shot
accuracy on the held-out photos, and says which of four things happened:

  ok         tuned above zero-shot and above chance
  no_gain    tuned no better than zero-shot (within the noise of the held-out photos)
  at_chance  tuned accuracy within the noise of a uniform guess (1/C)
  collapsed  the class text embeddings fell onto (nearly) one point, or training ended at chance
             with the loss of a uniform guess

It returns codes, not sentences: the app renders them in its languages; MESSAGES holds the English
sentence of each code for the command line (`describe`).
"""

from __future__ import annotations

import math

from .loss_terms import CE

STATUSES = ("ok", "no_gain", "at_chance", "collapsed")

# The tuned class text spread (mean squared distance between classes) below this share of the
# zero-shot one counts as collapsed. Measured (benchmarks/hard_tasks.py, 16 shots, the demo CLIP):
# runs on the demo and ceramic tasks (seeds 1-3) stayed above 4% of it (read every 10th epoch);
# collapsed DAPT runs on the textile tasks fell to 0.00002-0.004 of it within 10 epochs; CoOp runs
# there ended at 0.00002 and 0.0096 (at chance: 0.338, 0.332 on 600 photos) and at 0.017-1.2
# (0.353-0.533). The line sits between 0.0096 and 0.017, close to both: it was placed with these
# runs in view.
COLLAPSE_SPREAD_SHARE = 0.01
# The last share of the epochs whose mean training accuracy and cross-entropy describe how training ended.
FINAL_EPOCHS_SHARE = 0.1
# Cross-entropy within this share of ln C (a uniform guess) counts as "the loss of a uniform guess".
UNIFORM_LOSS_SHARE = 0.03
# Accuracies closer than this many standard errors (binomial, on the held-out photos) count as equal.
NOISE_SIGMAS = 2.0


def assess(history: list[dict], *, n_classes: int, accuracy: float | None, zero_shot_accuracy: float | None,
           n_test: int, text_spread_zero_shot: float | None = None, text_spread_tuned: float | None = None,
           trains: bool = True) -> dict:
    """The run's health, JSON-ready: {"status", "findings": [{"code", "values"}], "advice": [codes]}.

    Args:
        history: per-epoch rows of the tuning run ("train_accuracy", loss_terms.CE, optionally "text_spread");
            empty for a method that does not train.
        n_classes: classes of the task (chance is 1 / n_classes).
        accuracy, zero_shot_accuracy: tuned and zero-shot accuracy on the same held-out photos.
        n_test: how many held-out photos those accuracies were measured on (for their noise).
        text_spread_zero_shot, text_spread_tuned: metrics.text_spread of the zero-shot and the tuned
            class text embeddings (None where the method learns none).
        trains: False for zero-shot: there is no run to judge, only where the classifier stands.
    """
    chance = 1.0 / max(1, n_classes)
    findings: list[dict] = []
    status = "ok"

    def noise(p: float) -> float:
        return NOISE_SIGMAS * math.sqrt(max(p * (1 - p), 1e-6) / max(1, n_test))

    collapsed_text = (trains and text_spread_tuned is not None and text_spread_zero_shot is not None
                      and text_spread_zero_shot > 0
                      and text_spread_tuned < COLLAPSE_SPREAD_SHARE * text_spread_zero_shot)
    if collapsed_text:
        findings.append(_finding("text_embeddings_collapsed", before=text_spread_zero_shot,
                                 after=text_spread_tuned, share=text_spread_tuned / text_spread_zero_shot))
        status = "collapsed"

    final = _final_epochs(history)
    if trains and final:
        train_accuracy = _mean(row.get("train_accuracy") for row in final)
        ce = _mean(row.get(CE) for row in final)
        uniform_loss = math.log(max(2, n_classes))
        train_at_chance = train_accuracy is not None and train_accuracy <= chance + 0.05
        if train_at_chance:
            findings.append(_finding("train_accuracy_at_chance", train_accuracy=train_accuracy, chance=chance))
        if ce is not None and abs(ce - uniform_loss) <= UNIFORM_LOSS_SHARE * uniform_loss:
            findings.append(_finding("loss_of_uniform_guess", ce=ce, uniform=uniform_loss))
            if train_at_chance:
                status = "collapsed"

    if accuracy is not None:
        if accuracy <= chance + noise(chance):
            findings.append(_finding("accuracy_at_chance", accuracy=accuracy, chance=chance, n_test=n_test))
            if status == "ok":
                status = "at_chance"
        if trains and zero_shot_accuracy is not None:
            margin = noise(max(accuracy, zero_shot_accuracy))
            if accuracy < zero_shot_accuracy - margin:
                findings.append(_finding("below_zero_shot", accuracy=accuracy, zero_shot=zero_shot_accuracy,
                                         n_test=n_test))
            elif accuracy <= zero_shot_accuracy + margin:
                findings.append(_finding("no_gain_over_zero_shot", accuracy=accuracy,
                                         zero_shot=zero_shot_accuracy, n_test=n_test))
            if status == "ok" and accuracy <= zero_shot_accuracy + margin:
                status = "no_gain"
    return {"status": status, "findings": findings, "advice": _advice(status, findings, trains)}


def assess_metrics(metrics: dict, trains: bool = True) -> dict:
    """`assess` on the metrics dict of a run (ExperimentResult.metrics() without "health")."""
    dispersion = metrics.get("dispersion") or {}
    return assess(metrics.get("history") or [], n_classes=len(metrics.get("classnames") or []) or 2,
                  accuracy=metrics.get("accuracy"), zero_shot_accuracy=metrics.get("zero_shot_accuracy"),
                  n_test=int(metrics.get("n_test") or 0),
                  text_spread_zero_shot=(dispersion.get("before") or {}).get("text_inter"),
                  text_spread_tuned=(dispersion.get("after") or {}).get("text_inter"), trains=trains)


def _advice(status: str, findings: list[dict], trains: bool) -> list[str]:
    codes = {f["code"] for f in findings}
    if status == "ok":
        return []
    advice = []
    if trains and ("below_zero_shot" in codes or status in ("collapsed", "at_chance")):
        advice.append("keep_zero_shot")
    if status in ("collapsed", "at_chance"):
        # The frozen features do not tell the classes apart: only better pictures or a better model help.
        advice += ["show_the_difference", "stronger_backbone", "more_photos"]
    elif status == "no_gain":
        advice += ["more_photos", "stronger_backbone"]
    return advice


def _finding(code: str, **values) -> dict:
    return {"code": code, "values": {k: (round(v, 6) if isinstance(v, float) else v) for k, v in values.items()}}


def _final_epochs(history: list[dict]) -> list[dict]:
    if not history:
        return []
    return history[-max(1, round(len(history) * FINAL_EPOCHS_SHARE)):]


def _mean(values) -> float | None:
    values = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(values) / len(values) if values else None


# English sentences by code, for the command line (the app has its own, in two languages).
STATUS_MESSAGES = {
    "ok": "the tuned model is better than zero-shot and than chance.",
    "no_gain": "tuning gained nothing over zero-shot on the held-out photos.",
    "at_chance": "the tuned model is no better than a uniform guess on the held-out photos.",
    "collapsed": "tuning collapsed: the classes became indistinguishable to the model.",
}
MESSAGES = {
    "text_embeddings_collapsed": "the class text embeddings fell onto one point (spread {before:.4f} zero-shot, "
                                 "{after:.6f} tuned)",
    "train_accuracy_at_chance": "training ended at chance ({train_accuracy:.0%} correct, chance {chance:.0%})",
    "loss_of_uniform_guess": "the training loss ended at {ce:.3f}, the loss of a uniform guess ({uniform:.3f})",
    "accuracy_at_chance": "{accuracy:.1%} on {n_test} held-out photos is within the noise of chance ({chance:.1%})",
    "below_zero_shot": "{accuracy:.1%} is below zero-shot's {zero_shot:.1%} on {n_test} held-out photos",
    "no_gain_over_zero_shot": "{accuracy:.1%} is within the noise of zero-shot's {zero_shot:.1%} on {n_test} "
                              "held-out photos",
}
ADVICE_MESSAGES = {
    "keep_zero_shot": "use the zero-shot classifier (--method zeroshot) rather than this prompt file",
    "show_the_difference": "take photos where the defect is visible at the model's input size (closer crops, "
                           "higher resolution of the defect area)",
    "stronger_backbone": "use a real CLIP (--backbone ViT-B-16:openai) if the demo model was used",
    "more_photos": "add more training photos per class",
}


def describe(health: dict) -> list[str]:
    """The verdict in English, one line per item: status, findings, advice."""
    lines = [f"run health: {health['status']}: {STATUS_MESSAGES.get(health['status'], '')}"]
    for finding in health.get("findings", []):
        template = MESSAGES.get(finding["code"])
        try:
            text = template.format(**finding["values"]) if template else finding["code"]
        except (KeyError, ValueError, TypeError):
            text = finding["code"]
        lines.append(f"  - {text}")
    for code in health.get("advice", []):
        lines.append(f"  advice: {ADVICE_MESSAGES.get(code, code)}")
    return lines
