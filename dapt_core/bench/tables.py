"""`dapt bench report`: the Markdown and CSV tables of mean ± std accuracy over seeds."""

from __future__ import annotations

import csv
import io
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import atomic
from ..engine.methods import METHOD_TITLES, METHODS
from ..errors import DataError
from .results import DG_SOURCE, DOMAIN_GENERALISATION, FEW_SHOT, read_result


# ------------------------------------------------------------------------------------------- report
@dataclass
class Cell:
    seeds: list[int]
    values: list[float]  # accuracy per seed, in percent

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None


def collect_results(results_dir: Path) -> list[dict]:
    """Every bench result JSON under `results_dir` (few-shot cache files and others are ignored)."""
    found = []
    for path in sorted(Path(results_dir).rglob("*.json")):
        data = read_result(path)
        if data is not None and data.get("accuracy") is not None:
            data["_path"] = str(path)
            found.append(data)
    return found


def build_report(results: list[dict]) -> tuple[str, list[dict]]:
    """The Markdown report and the CSV rows of a set of bench results."""
    from ..data.datasets import DOMAIN_SHIFT_TARGETS, FEW_SHOT_BENCHMARKS

    by_backbone: dict[tuple, list[dict]] = {}
    for r in results:
        settings = r.get("settings", {})
        key = (settings.get("backbone") or r.get("backbone"),
               settings.get("backbone_weights") or r.get("backbone_weights"))
        by_backbone.setdefault(key, []).append(r)
    lines = ["# DAPT benchmark report", "",
             f"{len(results)} runs. Top-1 test accuracy in %: mean ± sample standard deviation over seeds "
             "(n - 1 in the denominator); (n=K) marks a cell with fewer seeds than the most in its table. "
             "Average: mean over data sets, and ± the standard deviation over seeds of the per-seed averages; "
             "† where a method lacks some data sets of the table (then the mean of its data sets only).", ""]
    rows: list[dict] = []
    order = {name: i for i, name in enumerate(FEW_SHOT_BENCHMARKS + DOMAIN_SHIFT_TARGETS)}
    for (spec, weights), group in by_backbone.items():
        cells: dict[tuple, Cell] = {}
        for r in sorted(group, key=lambda r: r["seed"]):
            key = (r.get("protocol", FEW_SHOT), r["dataset"], r["shots"], r["method"])
            cell = cells.setdefault(key, Cell([], []))
            cell.seeds.append(r["seed"])
            cell.values.append(100.0 * r["accuracy"])
        lines += [f"## Backbone {spec} ({weights})", ""]
        overridden: dict[str, set[str]] = {}
        for r in group:
            applied = r.get("settings", {}).get("overrides")
            if applied:
                text = ", ".join(f"{k} {v}" for k, v in sorted(applied.items()))
                overridden.setdefault(r["method"], set()).add(text)
        if overridden:
            described = "; ".join(f"{METHOD_TITLES.get(m, m)}: {' | '.join(sorted(t))}"
                                  for m, t in sorted(overridden.items(), key=lambda item: _method_key(item[0])))
            lines += [f"Overrides of the recipe's presets (not the paper's protocol): {described}.", ""]
        few = {k: c for k, c in cells.items() if k[0] == FEW_SHOT}
        for shots in sorted({k[2] for k in few}):
            table = {(d, m): c for (_, d, k, m), c in few.items() if k == shots}
            datasets = sorted({d for d, _ in table}, key=lambda d: (order.get(d, 99), d))
            methods = sorted({m for _, m in table}, key=_method_key)
            lines += [f"### Few-shot classification, {shots} shot{'s' if shots != 1 else ''}", ""]
            lines += _markdown_table(table, datasets, methods, "Data set", by_row="dataset")
            lines.append("")
            rows += _csv_rows(table, datasets, methods, FEW_SHOT, spec, shots, "Average")
        dg = {k: c for k, c in cells.items() if k[0] == DOMAIN_GENERALISATION}
        for shots in sorted({k[2] for k in dg}):
            targets = sorted({d for (_, d, k, _) in dg if k == shots}, key=lambda d: (order.get(d, 99), d))
            methods = sorted({m for (_, _, k, m) in dg if k == shots}, key=_method_key)
            table = {(d, m): c for (_, d, k, m), c in dg.items() if k == shots}
            source = {(DG_SOURCE, m): c for (_, d, k, m), c in few.items() if k == shots and d == DG_SOURCE}
            lines += [f"### Domain generalisation: prompts tuned on {shots}-shot {DG_SOURCE}, no tuning on the "
                      f"targets", ""]
            source = {(f"{DG_SOURCE} (source)", m): c for (_, m), c in source.items()}
            lines += _markdown_table({**table, **source}, ([f"{DG_SOURCE} (source)"] if source else []) + targets,
                                     methods,
                                     "Method", by_row="method", average_over=targets,
                                     average_title="Average (targets)")
            lines.append("")
            rows += _csv_rows(table, targets, methods, DOMAIN_GENERALISATION, spec, shots, "Average (targets)")
    return "\n".join(lines).rstrip() + "\n", rows


def _method_key(method: str):
    return (METHODS.index(method) if method in METHODS else len(METHODS), method)


def _average(table: dict, datasets: list[str], method: str) -> tuple[Cell | None, bool]:
    """(per-seed averages over the data sets, complete?) for one method."""
    have = [d for d in datasets if (d, method) in table]
    if not have:
        return None, False
    complete = len(have) == len(datasets)
    common = set.intersection(*(set(table[(d, method)].seeds) for d in have))
    seeds = sorted(common)
    same_seeds = all(set(table[(d, method)].seeds) == common for d in have)
    if seeds and same_seeds:
        values = [statistics.fmean(table[(d, method)].values[table[(d, method)].seeds.index(s)] for d in have)
                  for s in seeds]
        return Cell(seeds, values), complete
    means = statistics.fmean(table[(d, method)].mean for d in have)
    return Cell([], [means]), complete  # seeds differ between data sets: a mean of means, no deviation


def _format(cell: Cell | None, most: int, complete: bool = True) -> str:
    if cell is None:
        return "–"
    text = f"{cell.mean:.2f}" + (f" ± {cell.std:.2f}" if cell.std is not None else "")
    if cell.seeds and len(cell.seeds) < most:
        text += f" (n={len(cell.seeds)})"
    return text + ("" if complete else " †")


def _markdown_table(table: dict, datasets: list[str], methods: list[str], corner: str, *, by_row: str,
                    average_over: list[str] | None = None, average_title: str = "Average") -> list[str]:
    average_over = datasets if average_over is None else average_over
    most = max((len(c.seeds) for c in table.values()), default=0)
    averages = {m: _average(table, average_over, m) for m in methods}
    titles = {m: METHOD_TITLES.get(m, m) for m in methods}
    if by_row == "dataset":
        header = [corner] + [titles[m] for m in methods]
        body = [[d] + [_format(table.get((d, m)), most) for m in methods] for d in datasets]
        count = len(average_over)
        body.append([f"**{average_title}** ({count} data set{'s' if count != 1 else ''})"] +
                    [_format(averages[m][0], most, averages[m][1]) for m in methods])
    else:
        header = [corner] + datasets + [average_title]
        body = [[titles[m]] + [_format(table.get((d, m)), most) for d in datasets] +
                [_format(averages[m][0], most, averages[m][1])] for m in methods]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + [":---:"] * (len(header) - 1)) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in body]
    return out


CSV_FIELDS = ("protocol", "backbone", "shots", "dataset", "method", "n_seeds", "seeds", "accuracy_mean",
              "accuracy_std")


def _csv_rows(table, datasets, methods, protocol, backbone, shots, average_title) -> list[dict]:
    rows = []
    for method in methods:
        entries = [(d, table.get((d, method))) for d in datasets]
        average, complete = _average(table, datasets, method)
        entries.append((average_title + ("" if complete else " (incomplete)"), average))
        for dataset, cell in entries:
            if cell is None:
                continue
            rows.append({"protocol": protocol, "backbone": backbone, "shots": shots, "dataset": dataset,
                         "method": method, "n_seeds": len(cell.seeds),
                         "seeds": " ".join(str(s) for s in cell.seeds),
                         "accuracy_mean": f"{cell.mean:.4f}",
                         "accuracy_std": "" if cell.std is None else f"{cell.std:.4f}"})
    return rows


def cmd_report(args) -> int:
    """`dapt bench report DIR`: DIR/report.md and DIR/report.csv from every result under DIR."""
    directory = Path(args.results_dir).expanduser()
    if not directory.is_dir():
        raise DataError(f"{directory} is not a folder of benchmark results (the --out of dapt bench).")
    results = collect_results(directory)
    if not results:
        raise DataError(f"{directory} holds no benchmark results yet; run dapt bench ... --out {directory} first.")
    markdown, rows = build_report(results)
    md_path = Path(args.markdown).expanduser() if args.markdown else directory / "report.md"
    csv_path = Path(args.csv).expanduser() if args.csv else directory / "report.csv"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    for path, text in ((md_path, markdown), (csv_path, buffer.getvalue())):
        atomic.write_text(path, text)
    print(markdown, end="")
    print(f"\nwrote {md_path} and {csv_path}", file=sys.stderr)
    return 0
