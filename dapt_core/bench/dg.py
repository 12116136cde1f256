"""`dapt bench dg`: prompts tuned on 16-shot ImageNet, scored on ImageNet-V2, -Sketch, -A and -R."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from .. import atomic
from ..errors import ConfigError, DataError
from .distributed import Distributed, distributed
from .results import (
    DG_SOURCE,
    DOMAIN_GENERALISATION,
    RESULT_KIND,
    RESULT_VERSION,
    BenchProgress,
    Session,
    pct,
    per_class_lists,
    prompt_path,
    read_result,
    result_path,
    utc_now,
)
from .runner import unique_in_order, worker_count


def cmd_dg(args) -> int:
    """`dapt bench dg`: prompts tuned on K-shot ImageNet, scored on ImageNet-V2, -Sketch, -A and -R."""
    out = Path(args.out).expanduser()
    targets = _targets(args.targets)
    methods, seeds, shots = unique_in_order(args.method), unique_in_order(args.seeds), args.shots
    sources = _source_prompt_files(args, out, methods, seeds, shots)
    with distributed(args.device) as ctx:
        scorer = _Scorer(Session(ctx, out, args.data_root, worker_count(args.workers, ctx)), args.backbone,
                         args.eval_batch_size)
        for target in targets:
            todo = _pending(scorer.session, target, methods, seeds, shots)
            if not todo:
                continue
            data = _Target.read(scorer.session, target)
            for method, seed in todo:
                scorer.score(data, _DgRun(target, method, shots, seed, sources[(method, seed)]))
    return 0


def _targets(requested: list[str] | None) -> list[str]:
    from ..data.datasets import DOMAIN_SHIFT_TARGETS, canonical_name

    targets = unique_in_order([canonical_name(t) for t in (requested or DOMAIN_SHIFT_TARGETS)])
    wrong = [t for t in targets if t not in DOMAIN_SHIFT_TARGETS]
    if wrong:
        raise ConfigError(f"{', '.join(wrong)} is not a domain-generalisation target; choose from "
                          f"{', '.join(DOMAIN_SHIFT_TARGETS)}.")
    return targets


def _source_prompt_files(args, out: Path, methods: list[str], seeds: list[int], shots: int) -> dict:
    """The ImageNet prompt file of every (method, seed), or the command that makes a missing one."""
    sources = {}
    for method in methods:
        for seed in seeds:
            path = prompt_path(out, DG_SOURCE, method, shots, seed)
            if not path.is_file():
                raise DataError(
                    f"{path} is missing: tune on ImageNet first with dapt bench --data-root {args.data_root} "
                    f"--dataset ImageNet --shots {shots} --seeds {seed} --method {method} --out {args.out}")
            sources[(method, seed)] = path
    return sources


def _pending(session: Session, target: str, methods: list[str], seeds: list[int], shots: int) -> list[tuple]:
    """The (method, seed) pairs without a result on `target` yet (rank 0 decides for every rank)."""
    every = [(m, s) for m in methods for s in seeds]
    todo = every
    if session.ctx.main:
        todo = [(m, s) for m, s in every if read_result(result_path(session.out, target, m, shots, s)) is None]
    todo = session.ctx.share(todo)
    for method, seed in [pair for pair in every if pair not in todo]:
        session.say(f"{target} {method} seed {seed}: finished earlier, skipped: "
                    f"{result_path(session.out, target, method, shots, seed)}")
    return todo


@dataclass(frozen=True)
class _DgRun:
    """One prompt file scored on one target."""

    target: str
    method: str
    shots: int
    seed: int
    source: Path  # the ImageNet prompt file

    @property
    def label(self) -> str:
        return f"{self.target} {self.method} seed {self.seed}"

    def result_file(self, out: Path) -> Path:
        return result_path(out, self.target, self.method, self.shots, self.seed)


@dataclass
class _Target:
    """A target's test images, its classes as ImageNet labels, and its frozen image features (the same for
    every prompt file without a visual prompt, so computed once)."""

    name: str
    split: object
    label_map: list[int]
    unprompted: tuple | None = None

    @classmethod
    def read(cls, session: Session, name: str) -> _Target:
        from ..data.datasets import imagenet_label_map, read_dataset

        split = read_dataset(name, session.data_root)
        for note in split.notes:
            session.say(f"note: {name}: {note}")
        return cls(name, split, imagenet_label_map(name, session.data_root))


class _Scorer:
    """Scores prompt files on targets; the backbone is loaded with the first file, and the zero-shot class
    embeddings are made once per template set."""

    def __init__(self, session: Session, backbone_spec: str | None, eval_batch_size: int | None):
        self.session = session
        self.backbone_spec = backbone_spec
        self.eval_batch_size = eval_batch_size
        self.zero_shot: dict = {}

    def score(self, target: _Target, run: _DgRun) -> None:
        from ..engine import prompt_file
        from ..engine.backbone import load_backbone

        session = self.session
        started = time.perf_counter()
        file = prompt_file.load(run.source)
        if session.backbone is None:
            session.use_backbone(load_backbone(self.backbone_spec or file.backbone_spec, session.ctx.device))
        _check_class_map(file, target.split.classnames, target.label_map, target.name, run.source)
        before, after = self._before_after(target, run, file)
        if session.ctx.main:
            _write_dg_result(session, run, target, file, before, after, time.perf_counter() - started)
        session.ctx.barrier()

    def _before_after(self, target: _Target, run: _DgRun, file):
        import torch

        from ..engine.evaluation import encode_images, score
        from ..engine.inference import prompted_model

        session, test = self.session, target.split.test
        model = prompted_model(file, session.backbone, target.label_map)
        config = file.header["config"]
        batch_size = self.eval_batch_size or int(config.get("eval_batch_size", 100))
        zero_shot = self._zero_shot(file, config.get("templates", "auto"))[torch.tensor(target.label_map)]
        progress = BenchProgress(run.label) if session.ctx.main else None

        def features(prompted: bool):
            what = "prompted features" if prompted else "frozen features"
            hook = progress.batches(_batch_count(test, batch_size, session.ctx), what) if progress else None
            return encode_images(model, test, prompted=prompted, batch_size=batch_size,
                                 num_workers=session.workers, on_batch=hook)

        try:
            if target.unprompted is None:
                target.unprompted = features(prompted=False)
            before = score(model, test, *target.unprompted, zero_shot)
            after_features = target.unprompted if model.visual_prompt is None else features(prompted=True)
            after = score(model, test, *after_features, model.text_features())
        finally:
            if progress:
                progress.close()
        return before, after

    def _zero_shot(self, file, templates: str):
        from ..engine.zeroshot import zero_shot_text_features

        if templates not in self.zero_shot:
            self.zero_shot[templates] = zero_shot_text_features(self.session.backbone, file.classnames, templates)
        return self.zero_shot[templates]


def _batch_count(items, batch_size: int, ctx: Distributed) -> int:
    batches = math.ceil(len(items) / batch_size)
    return len(range(ctx.rank, batches, ctx.world))


def _check_class_map(file, classnames: list[str], label_map: list[int], target: str, path: Path) -> None:
    names = file.classnames
    if max(label_map, default=-1) >= len(names):
        raise DataError(f"{path} holds {len(names)} classes but {target} uses ImageNet labels up to "
                        f"{max(label_map)}; it was not tuned on ImageNet's classes.")
    mapped = [names[i] for i in label_map]
    if mapped != list(classnames):
        first = next(i for i, (a, b) in enumerate(zip(mapped, classnames)) if a != b)
        raise DataError(f"{path} was tuned on other class names than {target} uses (label {first}: "
                        f"'{mapped[first]}' in the prompt file, '{classnames[first]}' in {target}); use the "
                        f"classnames.txt the ImageNet run used.")


def _write_dg_result(session: Session, run: _DgRun, target: _Target, file, before, after, seconds: float) -> None:
    from ..engine.evaluation import comparison_metrics
    from ..engine.metrics import json_safe

    header, split, label_map = file.header, target.split, target.label_map
    metrics = comparison_metrics(before, after)
    metrics.pop("confusion")  # up to 1000 x 1000; the per-class lists below are kept
    record = json_safe({
        "kind": RESULT_KIND, "version": RESULT_VERSION, "protocol": DOMAIN_GENERALISATION,
        "dataset": run.target, "source_dataset": DG_SOURCE, "method": run.method, "shots": run.shots,
        "seed": run.seed, "backbone": header["backbone"]["spec"], "backbone_weights": header["backbone"].get("weights"),
        "n_classes": len(split.classnames), "classnames": list(split.classnames),
        **metrics, **per_class_lists(before, after),
        "eval_seconds": seconds, "total_seconds": seconds,
        "source_prompt_file": os.path.relpath(run.source, run.result_file(session.out).parent),
        "notes": split.notes,
        "skipped": [{"path": s.path, "reason": s.reason} for s in split.skipped + after.skipped],
        "finished": utc_now(),
        "settings": {
            "dataset": run.target, "source_dataset": DG_SOURCE, "method": run.method, "shots": run.shots,
            "seed": run.seed, "config": header["config"],
            "class_map": "ImageNet labels of the target's classes (by wnid)",
            "imagenet_labels": label_map if len(label_map) != len(file.classnames) else "all",
            **session.environment, "num_workers": session.workers, "data_root": session.data_root_recorded,
        },
    })
    written = atomic.write_json(run.result_file(session.out), record)
    print(f"{run.label}: {pct(record['accuracy'])} (zero-shot {pct(record['zero_shot_accuracy'])}) -> {written}",
          flush=True)
