"""What to label next (dapt_core/engine/labelling_order.py) against random choice, on the demo task.

The demo task (carbon-fibre, 5 classes, seed 0 of the renderer: 16 training and 200 test photos per class)
with the bundled demo backbone. A fixed evaluation set: test photos 100-199 of each class (500). The pool
of unlabelled photos: everything else (the 16 training and test photos 0-99 of each class: 580). At each
budget (2, 4, 6, 10, 16 labels per class, i.e. 5x photos in all) and seed (1-3):

- "ranking": the first 5x photos of labelling_order.rank_typical over the whole pool (class-agnostic: the
  ranking never sees a label; a photo's label is revealed once chosen), clustered with the seed;
- "ranking, then doubt": the ranking for the first 2 per class (10 photos), then in rounds of 10 the doubtful
  photos of the rest (labelling_order.rank_uncertain, with the nearest-class-mean probabilities of the photos
  chosen so far standing in for a tuned model);
- "random": 5x photos drawn at random from the pool (the same total, class-agnostic);
- "random, per class": x photos of each class drawn at random (the usual few-shot draw: it needs the labels
  beforehand, so it is a reference, not a choice a user could make from an unlabelled folder).

Accuracy on the evaluation set is first that of a PROXY for tuning, cheap on a CPU: the nearest class mean of
the chosen photos' frozen features (cosine); a class with no chosen photo is never predicted. With `--dapt` the
choices are tuned for real (run_experiment, DAPT, on the same evaluation set) with the epochs the product uses,
the recipe's for the shots (100 up to 4 per class, 200 above; `--epochs N` for a quicker look; at 20 epochs the
ranking had looked better than random at 10 per class, which the recipe's schedule does not bear out). The
DAPT table adds:

- "random, then the tuned model's doubt": a random 4 per class, then two rounds, each tuning DAPT on the photos
  chosen so far and taking the photos it doubts most (labelling_order.rank_uncertain with its probabilities),
  as the app ranks once a project has a tuned run;
- two references that need every label beforehand, so no choice a user could make from an unlabelled folder:
  "random, per class" and "typical, per class" (rank_typical within each class). They tell whether a choice
  loses by its photos or by its balance between classes.

A line's shift is mostly good parts, not balanced. The table "a shift of mostly good parts" keeps every
"no defect" photo of the pool (116) and draws a few of each defect class beside them (2, 4 or 8 of each: 94,
88 or 78 % good), a new draw per seed; among the first 10, 20, 30 and 50 photos the ranking picks, and as many
drawn at random, it counts the defect photos and the defect kinds (of 4) found. No tuning: a kind nobody
labels cannot be tuned at all, so finding each kind is what a choice must do first there. With
`--mostly-good-dapt`, DAPT is then tuned on the first 30 and 50 picks as the app tunes (the classes found, the
same number of photos from each) and scored on the evaluation set as the line counts: the defective parts it
calls "no defect" (escapes) and the good parts it calls a defect (overkill).

    python benchmarks/labelling_order.py --out /tmp/labelling_order_table.md [--dapt] [--mostly-good-dapt]
        [--epochs N] [--seeds 1 2 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dapt_core.data.records import LabeledImage, Split  # noqa: E402
from dapt_core.demo.demo_task import CLASSES, task_counts, write_demo_task  # noqa: E402
from dapt_core.engine import labelling_order as order  # noqa: E402
from dapt_core.engine.backbone import load_backbone  # noqa: E402
from dapt_core.engine.label_review import frozen_features  # noqa: E402

TASK = "carbon-fibre"
BUDGETS = (2, 4, 6, 10, 16)
SEEDS = (1, 2, 3)
EVAL_FROM = 100  # test photos from this index on form the evaluation set
START = 2  # labels per class the "then doubt" strategy takes from the ranking before it turns to doubt
ROUND = 10  # photos per round of doubt
STRATEGIES = ("ranking", "ranking, then doubt", "random", "random, per class")
DOUBT_START = 4  # labels per class drawn at random before the tuned model's doubt takes over
DOUBT_ROUNDS = 2  # tunings, each followed by a round of its most doubtful photos
# The DAPT table: each choice at its budgets (labels per class).
DAPT_ROWS = (("ranking", (4, 10)), ("random", (4, 10, 16)), ("random, then the tuned model's doubt", (10,)),
             ("random, per class", (10,)), ("typical, per class", (10,)))
GOOD = 0  # "no defect" in demo_task.CLASSES
DEFECTS_PER_KIND = (2, 4, 8)  # a shift of mostly good parts: these many photos of each defect class in the pool
PICKS = (10, 20, 30, 50)  # photos labelled from such a shift
MOSTLY_GOOD_DAPT = ((2, 4), (30, 50))  # --mostly-good-dapt: defects per kind, photos labelled


def demo_photos(root: Path) -> tuple[list[LabeledImage], list[LabeledImage]]:
    """The pool and the evaluation set, written once under `root`."""
    counts = task_counts(TASK)
    if not (root / "test" / CLASSES[-1] / f"{counts['test'] - 1:03d}.png").exists():
        write_demo_task(root, seed=0, task=TASK)
    pool, evaluation = [], []
    for c, name in enumerate(CLASSES):
        pool += [LabeledImage(root / "train" / name / f"{i:03d}.png", c) for i in range(counts["train"])]
        for i in range(counts["test"]):
            (evaluation if i >= EVAL_FROM else pool).append(LabeledImage(root / "test" / name / f"{i:03d}.png", c))
    return pool, evaluation


def features_of(backbone, items: list[LabeledImage], cache: Path) -> np.ndarray:
    features, kept, skipped = frozen_features(backbone, items, cache_dir=cache)
    assert not skipped and kept == list(range(len(items))), skipped
    return features / np.linalg.norm(features, axis=1, keepdims=True)


def proxy_accuracy(pool_x, pool_y, chosen, eval_x, eval_y, n_classes: int) -> float:
    """Nearest class mean (cosine) of the chosen photos, on the evaluation set."""
    chosen = np.asarray(chosen)
    means = np.zeros((n_classes, pool_x.shape[1]))
    np.add.at(means, pool_y[chosen], pool_x[chosen])
    norms = np.linalg.norm(means, axis=1)
    similarity = eval_x @ (means / np.clip(norms, 1e-12, None)[:, None]).T
    similarity[:, norms <= 1e-12] = -np.inf
    return float(np.mean(similarity.argmax(1) == eval_y))


def choose(strategy: str, pool_x, pool_y, total: int, seed: int, n_classes: int, tuned=None) -> list[int]:
    """The `total` photos `strategy` labels. `tuned(chosen, seed)` gives a tuned model's (N, C) probabilities on
    the pool, for the strategy that asks one."""
    rng = np.random.default_rng([seed, total])
    if strategy == "random":
        return rng.choice(len(pool_x), total, replace=False).tolist()
    per = total // n_classes
    if strategy == "random, per class":
        return [int(i) for c in range(n_classes) for i in rng.choice(np.flatnonzero(pool_y == c), per, replace=False)]
    if strategy == "typical, per class":
        chosen = []
        for c in range(n_classes):
            members = np.flatnonzero(pool_y == c)
            chosen += [int(members[p.index]) for p in order.rank_typical(pool_x[members], count=per, seed=seed)[:per]]
        return chosen
    if strategy == "random, then the tuned model's doubt":
        chosen = rng.choice(len(pool_x), min(total, DOUBT_START * n_classes), replace=False).tolist()
        for rounds_left in range(DOUBT_ROUNDS, 0, -1):
            if len(chosen) >= total:
                break
            rest = np.setdiff1d(np.arange(len(pool_x)), chosen)
            step = -(-(total - len(chosen)) // rounds_left)
            probabilities = tuned(chosen, seed)[rest]
            picks = order.rank_uncertain(pool_x[rest], probabilities, list(CLASSES), count=step, seed=seed)
            chosen += [int(rest[p.index]) for p in picks[:step]]
        return chosen
    if strategy == "ranking" or total <= START * n_classes:
        return [p.index for p in order.rank_typical(pool_x, count=total, seed=seed)[:total]]
    chosen = [p.index for p in order.rank_typical(pool_x, count=START * n_classes, seed=seed)[:START * n_classes]]
    while len(chosen) < total:
        rest = np.setdiff1d(np.arange(len(pool_x)), chosen)
        step = min(ROUND, total - len(chosen))
        probabilities = order.class_mean_probabilities(pool_x[rest], pool_x[chosen], pool_y[chosen], n_classes)
        picks = order.rank_uncertain(pool_x[rest], probabilities, list(CLASSES), count=step, seed=seed)
        chosen += [int(rest[p.index]) for p in picks[:step]]
    return chosen


def covered(pool_y, chosen, n_classes: int) -> int:
    return len(np.unique(pool_y[np.asarray(chosen)]))


def mostly_good_choices(pool_x, pool_y, seed: int, per_kind: int) -> dict:
    """A shift of mostly good parts drawn from the pool (every good photo, `per_kind` of each defect class) and
    the photos each choice labels from it: {(choice, photos labelled): pool indices}, for PICKS."""
    good = np.flatnonzero(pool_y == GOOD)
    kinds = [np.flatnonzero(pool_y == c) for c in np.unique(pool_y) if c != GOOD]
    rng = np.random.default_rng([seed, per_kind])
    subset = np.concatenate([good] + [rng.choice(members, per_kind, replace=False) for members in kinds])
    choices = {}
    for total in PICKS:
        choices["random", total] = subset[rng.choice(len(subset), total, replace=False)]
        ranked = order.rank_typical(pool_x[subset], count=total, seed=seed)[:total]
        choices["ranking", total] = subset[[p.index for p in ranked]]
    return choices


def good_share(pool_y, per_kind: int) -> float:
    good = int((pool_y == GOOD).sum())
    return good / (good + per_kind * (len(np.unique(pool_y)) - 1))


def mostly_good_table(pool_x, pool_y, seeds) -> list[str]:
    """Defect photos and defect kinds among the first picks of the ranking and of a random choice, from pools of
    every good photo and a few of each defect class (drawn anew per seed)."""
    kinds = len(np.unique(pool_y)) - 1
    lines = ["A shift of mostly good parts: every 'no defect' photo of the pool and a few of each of the "
             f"{kinds} defect classes; defect photos and defect kinds among the first photos picked, mean of "
             f"seeds {', '.join(map(str, seeds))} (a new draw of the defects per seed); 'all kinds' counts the seeds "
             "where every defect kind was found.", "",
             "| defects per kind (good share) | photos labelled | random: defects, kinds, all kinds | "
             "ranking: defects, kinds, all kinds |", "|---|---:|---:|---:|"]
    for per_kind in DEFECTS_PER_KIND:
        found = {}
        for seed in seeds:
            for key, chosen in mostly_good_choices(pool_x, pool_y, seed, per_kind).items():
                labels = pool_y[chosen]
                defects = labels[labels != GOOD]
                found.setdefault(key, []).append((len(defects), len(set(defects.tolist()))))
        for total in PICKS:
            cells = []
            for name in ("random", "ranking"):
                counts = np.array(found[name, total])
                cells.append(f"{counts[:, 0].mean():.1f}, {counts[:, 1].mean():.1f}, "
                             f"{int((counts[:, 1] == kinds).sum())} of {len(seeds)}")
            lines.append(f"| {per_kind} ({good_share(pool_y, per_kind):.0%}) | {total} | " + " | ".join(cells) + " |")
    return lines


def mostly_good_dapt_table(backbone, pool, pool_x, pool_y, evaluation, cache: Path, seeds, epochs) -> list[str]:
    """DAPT tuned on what each choice labelled from a shift of mostly good parts, as the app tunes: the classes it
    found (a kind never labelled cannot be a class), the same number of photos from each (as many as the class
    with the fewest has, the first picked). Scored as the line scores it, on the whole evaluation set: the share
    of defective parts it passes as good (escapes) and of good parts it flags (overkill), at the likeliest
    class."""
    eval_y = np.array([item.label for item in evaluation])
    lines = ["DAPT tuned on those choices as the app tunes (the classes each found, as many photos from each as the "
             "class with the fewest has; the recipe's epochs for those shots unless --epochs), on the 500 evaluation "
             "photos (400 defective): escapes = defective parts called 'no defect', overkill = good parts called a "
             "defect, at the likeliest class; mean of the seeds (min-max).", "",
             "| defects per kind (good share) | photos labelled | choice | kinds labelled | shots | escapes | "
             "overkill |", "|---|---:|---|---:|---:|---:|---:|"]
    for per_kind in MOSTLY_GOOD_DAPT[0]:
        rows = {}
        for seed in seeds:
            choices = mostly_good_choices(pool_x, pool_y, seed, per_kind)
            for total in MOSTLY_GOOD_DAPT[1]:
                for name in ("random", "ranking"):
                    chosen = choices[name, total]
                    present = sorted(set(pool_y[chosen].tolist()))
                    if GOOD not in present or len(present) < 2:  # nothing to tell good from defective by
                        rows.setdefault((total, name), []).append(None)
                        continue
                    shots = min(int((pool_y[chosen] == c).sum()) for c in present)
                    train = [LabeledImage(pool[i].path, present.index(c)) for c in present
                             for i in [i for i in chosen if pool_y[i] == c][:shots]]
                    # The test labels only feed the accuracy, unused here; a kind never labelled goes under the
                    # first defect class found (any defect class counts as "defective" below).
                    stand_in = next(c for c in present if c != GOOD)
                    test = [LabeledImage(item.path, present.index(item.label if item.label in present else stand_in))
                            for item in evaluation]
                    result = tune_split(backbone, Split([CLASSES[c] for c in present], train, test), cache, seed,
                                        epochs, shots)
                    called_good = result.after.logits.argmax(1).numpy() == present.index(GOOD)
                    escapes = float(called_good[eval_y != GOOD].mean())
                    overkill = float((~called_good)[eval_y == GOOD].mean())
                    rows.setdefault((total, name), []).append((len(present) - 1, shots, escapes, overkill))
                    print(f"mostly good {per_kind} {total} {name} seed {seed}: kinds {len(present) - 1}, shots "
                          f"{shots}, escapes {escapes:.3f}, overkill {overkill:.3f}", file=sys.stderr, flush=True)
        for total in MOSTLY_GOOD_DAPT[1]:
            for name in ("random", "ranking"):
                tuned = [r for r in rows[total, name] if r is not None]
                untunable = len(rows[total, name]) - len(tuned)
                if not tuned:
                    cells = ["-", "-", "-", "-"]
                else:
                    values = np.array(tuned)
                    spread = [f"{v.mean():.3f} ({v.min():.3f}-{v.max():.3f})" for v in (values[:, 2], values[:, 3])]
                    cells = [f"{values[:, 0].mean():.1f}", f"{values[:, 1].mean():.1f}", *spread]
                note = f" ({untunable} seed(s) found no defect: nothing to tune)" if untunable else ""
                lines.append(f"| {per_kind} ({good_share(pool_y, per_kind):.0%}) | {total} | {name}{note} | "
                             + " | ".join(cells) + " |")
    return lines


def tune(backbone, pool, chosen, test, cache: Path, seed: int, epochs: int | None):
    """DAPT tuned on the chosen photos (the recipe's epochs for their shots unless `epochs`), scored on `test`."""
    return tune_split(backbone, Split(list(CLASSES), [pool[i] for i in chosen], test), cache, seed, epochs)


def tune_split(backbone, split: Split, cache: Path, seed: int, epochs: int | None, shots: int | None = None):
    """DAPT tuned on `split` (the recipe's epochs for its shots unless `epochs`), without the safeguard."""
    from dapt_core.engine.experiment import run_experiment
    from dapt_core.engine.methods import TuningConfig

    return run_experiment(backbone, split, TuningConfig(method="dapt", epochs=epochs, seed=seed), shots=shots,
                          cache_dir=cache, safeguard=False)


def tuned_probabilities(backbone, pool, cache: Path, epochs: int | None):
    """chosen, seed -> (N, C) probabilities of DAPT tuned on the chosen photos, for every photo of the pool."""
    def probabilities(chosen, seed):
        evaluation = tune(backbone, pool, chosen, pool, cache, seed, epochs).after
        assert [str(p) for p in evaluation.paths] == [str(item.path) for item in pool]
        logits = evaluation.logits.double().numpy()
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)
    return probabilities


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="/tmp/labelling_order_table.md")
    parser.add_argument("--data", default=str(Path(tempfile.gettempdir()) / "dapt-labelling-order-demo"))
    parser.add_argument("--dapt", action="store_true", help="tune the choices with DAPT for real (minutes)")
    parser.add_argument("--epochs", type=int, help="DAPT's epochs (default: the recipe's for the shots, as the app)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="seeds (default: 1 2 3)")
    parser.add_argument("--mostly-good-dapt", action="store_true",
                        help="tune DAPT on the choices from shifts of mostly good parts and count escapes (minutes)")
    args = parser.parse_args()
    seeds = tuple(args.seeds)
    started = time.perf_counter()
    root = Path(args.data)
    cache = root / "cache"
    backbone = load_backbone("demo", "cpu")
    pool, evaluation = demo_photos(root)
    pool_x, eval_x = features_of(backbone, pool, cache), features_of(backbone, evaluation, cache)
    pool_y = np.array([i.label for i in pool])
    eval_y = np.array([i.label for i in evaluation])
    n_classes = len(CLASSES)

    results: dict = {}
    for budget in BUDGETS:
        for strategy in STRATEGIES:
            accs, cover = [], []
            for seed in seeds:
                chosen = choose(strategy, pool_x, pool_y, budget * n_classes, seed, n_classes)
                assert len(set(chosen)) == budget * n_classes
                accs.append(proxy_accuracy(pool_x, pool_y, chosen, eval_x, eval_y, n_classes))
                cover.append(covered(pool_y, chosen, n_classes))
            results[budget, strategy] = (accs, cover)

    lines = [f"Demo task ({TASK}, 5 classes), demo backbone; pool {len(pool)} photos, evaluation set "
             f"{len(evaluation)}; accuracy of the PROXY (nearest class mean of the chosen photos' frozen features), "
             f"mean of seeds {', '.join(map(str, seeds))} (min-max); chance 20 %.", "",
             "| labels per class (total) | " + " | ".join(STRATEGIES) + " |",
             "|---|" + "---:|" * len(STRATEGIES)]
    for budget in BUDGETS:
        cells = []
        for strategy in STRATEGIES:
            accs, cover = results[budget, strategy]
            cells.append(f"{np.mean(accs):.3f} ({min(accs):.3f}-{max(accs):.3f})"
                         + ("" if min(cover) == n_classes else f", {min(cover)}-{max(cover)} classes seen"))
        lines.append(f"| {budget} ({budget * n_classes}) | " + " | ".join(cells) + " |")
    target = np.mean(results[16, "random"][0])
    lines.append("")
    for strategy in ("ranking", "ranking, then doubt"):
        reached = [b for b in BUDGETS if np.mean(results[b, strategy][0]) >= target]
        met = bool(reached) and reached[0] <= 10
        lines.append(f"Target (random's accuracy with 16 per class, {target:.3f}, reached with at most 10 per class): "
                     f"{strategy}: {'met' if met else 'not met'}"
                     + (f", first at {reached[0]} per class" if reached else ", not reached at any budget") + ".")

    lines += [""] + mostly_good_table(pool_x, pool_y, seeds)
    if args.mostly_good_dapt:
        lines += [""] + mostly_good_dapt_table(backbone, pool, pool_x, pool_y, evaluation, cache, seeds, args.epochs)

    if args.dapt:
        schedule = f"epochs: {args.epochs}" if args.epochs else "the recipe's epochs for the shots, as the app tunes"
        lines += ["", f"Tuned with DAPT for real (run_experiment, {schedule}; accuracy on the same evaluation set, "
                  "mean of the seeds (min-max); a seed whose choice misses a class is left out, as tuning needs "
                  "every class):", "", "| choice | labels per class | seeds | DAPT accuracy | proxy accuracy |",
                  "|---|---:|---|---:|---:|"]
        tuned = tuned_probabilities(backbone, pool, cache, args.epochs)
        measured = {}
        for strategy, budgets in DAPT_ROWS:
            for budget in budgets:
                accs, proxies = [], []
                for seed in seeds:
                    chosen = choose(strategy, pool_x, pool_y, budget * n_classes, seed, n_classes, tuned)
                    if covered(pool_y, chosen, n_classes) < n_classes:
                        continue
                    result = tune(backbone, pool, chosen, evaluation, cache, seed, args.epochs)
                    accs.append(float(result.after.accuracy))
                    proxies.append(proxy_accuracy(pool_x, pool_y, chosen, eval_x, eval_y, n_classes))
                    print(f"dapt {strategy} {budget} seed {seed}: {accs[-1]:.3f}", file=sys.stderr, flush=True)
                measured[strategy, budget] = accs
                lines.append(f"| {strategy} | {budget} | {len(accs)} | "
                             + (f"{np.mean(accs):.3f} ({min(accs):.3f}-{max(accs):.3f})" if accs else "-") + " | "
                             + (f"{np.mean(proxies):.3f}" if proxies else "-") + " |")
        target = np.mean(measured["random", 16])
        lines.append("")
        for strategy in ("ranking", "random, then the tuned model's doubt"):
            reached = np.mean(measured[strategy, 10]) >= target
            lines.append(f"Under DAPT, random's accuracy with 16 per class ({target:.3f}) with 10 per class: "
                         f"{strategy}: {'met' if reached else 'not met'} ({np.mean(measured[strategy, 10]):.3f}).")
    lines += ["", f"({time.perf_counter() - started:.0f} s)"]
    text = "\n".join(lines)
    print(text)
    Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
