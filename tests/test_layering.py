"""The layering of dapt_core, read from the source with `ast` (nothing is imported or run).

Each subpackage imports only from its own layer and the layers below it, lowest first:

    base     dapt_core itself (the version), errors, atomic, bundled (where the shipped files lie)
    data     labelled images, folders, few-shot draws, benchmark readers
    engine   backbone, prompts, training, evaluation, the prompt file, Classifier
    deploy   calibration, pass/fail, prediction sets, heatmaps, CSV, the ONNX export and runner, latency
    demo     the demo task and its renderer
    bench    the paper's benchmark protocol
    studio   the app's backend
    cli      the `dapt` command and `dapt app` (app_launcher); the app itself sits above, outside dapt_core

Imports inside functions count as much as those at the top of a module, and so do imports under
`if TYPE_CHECKING:`: a lazy import is still a dependency.

One exception, stated in DECISION_MODULES below. README.md's Layout section states the same rule.
Within a layer, no modules import each other, directly or through others (here an import under
`if TYPE_CHECKING:`, which never runs, does not count; one inside a function does).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "dapt_core"

LAYERS = ("base", "data", "engine", "deploy", "demo", "bench", "studio", "cli")
# The modules at dapt_core's top level, by layer (a subpackage is its own layer).
TOP_LEVEL = {"errors": "base", "atomic": "base", "bundled": "base", "cli": "cli", "app_launcher": "cli"}

# The exception: the engine's experiment fits the calibration (and places the pass threshold), and its
# Classifier answers through these deploy modules: the decision arithmetic on logits and novelty
# scores, which must stay free of torch because the ONNX runner on a line PC uses the same modules
# without the engine. The engine may import them; so that this edge can never close a cycle, they
# import from deploy only each other and from the engine only DECISION_SHARED_ENGINE (the photo's rule
# over tiles, torch-free for the same reason), which in turn imports nothing above the base layer.
DECISION_MODULES = frozenset(f"{PACKAGE}.deploy.{name}" for name in
                             ("calibration", "conformal", "pass_fail", "prediction", "heatmaps"))
DECISION_SHARED_ENGINE = frozenset({f"{PACKAGE}.engine.tiling"})


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports(source: str, module: str, is_package: bool = False,
            type_checking: bool = True) -> list[tuple[int, str]]:
    """(line, imported dapt_core module) for every import in `source`, wherever it stands (but under
    `if TYPE_CHECKING:` only with `type_checking`)."""
    package = module if is_package else module.rpartition(".")[0]
    tree = ast.parse(source)
    if not type_checking:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
                node.body = []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            for alias in node.names:
                # `from package import module` imports that module; `from module import name` the module.
                candidate = f"{origin}.{alias.name}"
                found.append((node.lineno, candidate if is_module(candidate) else origin))
    return [(line, name) for line, name in found if name == PACKAGE or name.startswith(PACKAGE + ".")]


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "base"  # dapt_core itself: its __version__ (its public names are imported lazily, by name)
    layer = TOP_LEVEL.get(parts[1], parts[1])
    if layer not in LAYERS:
        raise AssertionError(f"{module} is in no layer: add it to TOP_LEVEL (a module) or LAYERS (a subpackage) "
                             f"in tests/test_layering.py, and to README.md's Layout")
    return layer


def violations(source: str, module: str, where: str, is_package: bool = False) -> list[str]:
    """What in `source` (the text of `module`, at `where`) imports against the layering."""
    found = []
    own = layer_of(module)
    for line, target in imports(source, module, is_package):
        theirs = layer_of(target)
        if module in DECISION_MODULES and theirs in ("engine", "deploy") and not (
                target in DECISION_SHARED_ENGINE or target in DECISION_MODULES):
            found.append(f"{where}:{line}: {module} imports {target}; a decision module the engine uses may "
                         f"import from engine and deploy only {sorted(DECISION_SHARED_ENGINE | DECISION_MODULES)}")
        elif module in DECISION_SHARED_ENGINE and theirs != "base":
            found.append(f"{where}:{line}: {module} imports {target}; deploy's decision modules import it, so "
                         f"it may import only the base layer")
        elif LAYERS.index(theirs) > LAYERS.index(own) and not (own == "engine" and target in DECISION_MODULES):
            found.append(f"{where}:{line}: {module} ({own}) imports {target} ({theirs}), a layer above it; "
                         f"the order is {' <- '.join(LAYERS)}")
    return found


def test_every_import_in_dapt_core_follows_the_layering():
    found = []
    files = sorted((ROOT / PACKAGE).rglob("*.py"))
    assert len(files) > 50  # the walk found the package
    for path in files:
        found += violations(path.read_text(encoding="utf-8"), module_name(path), str(path.relative_to(ROOT)),
                            is_package=path.name == "__init__.py")
    assert not found, "imports against the layering (tests/test_layering.py, README.md's Layout):\n" + "\n".join(found)


def cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One cycle of `graph` (module -> {imported module: line}) as the modules along it, or None."""
    done: set[str] = set()
    for start in sorted(graph):
        path, on_path = [], set()
        stack = [(start, iter(sorted(graph[start])))]
        path.append(start)
        on_path.add(start)
        while stack:
            node, following = stack[-1]
            step = next(following, None)
            if step is None:
                stack.pop()
                path.pop()
                on_path.discard(node)
                done.add(node)
            elif step in on_path:
                return path[path.index(step):] + [step]
            elif step not in done and step in graph:
                stack.append((step, iter(sorted(graph[step]))))
                path.append(step)
                on_path.add(step)
    return None


def test_no_modules_import_each_other():
    graph: dict[str, dict[str, int]] = {}
    paths = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        module = module_name(path)
        paths[module] = path.relative_to(ROOT)
        graph[module] = {target: line for line, target in imports(path.read_text(encoding="utf-8"), module,
                                                                  path.name == "__init__.py", type_checking=False)
                         if target != module}
    found = cycle(graph)
    assert found is None, "modules that import each other (imports inside functions count):\n" + "\n".join(
        f"{paths[a]}:{graph[a][b]}: {a} imports {b}" for a, b in zip(found, found[1:]))


def test_a_cycle_is_found():
    assert cycle({"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {"a": 4}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b": 1}, "b": {}, "c": {"a": 2, "b": 3}}) is None


@pytest.mark.parametrize("module, source, expected", [
    # A lazy import inside a function counts.
    ("dapt_core.engine.training", "def f():\n    from ..studio import jobs\n", "dapt_core.studio.jobs"),
    ("dapt_core.data.folders", "import dapt_core.engine.backbone\n", "dapt_core.engine.backbone"),
    ("dapt_core.engine.inference", "from ..deploy.batch_predict import write_csv\n", "dapt_core.deploy.batch_predict"),
    ("dapt_core.deploy.pass_fail", "from ..engine.inference import Classifier\n", "dapt_core.engine.inference"),
    ("dapt_core.engine.tiling", "from ..deploy import conformal\n", "dapt_core.deploy.conformal"),
    ("dapt_core.bench.runner", "if True:\n    from ..studio.workspace import Workspace\n",
     "dapt_core.studio.workspace"),
])
def test_an_import_against_the_layering_is_named_with_its_file_and_line(module, source, expected):
    where = module.replace(".", "/") + ".py"
    found = violations(source, module, where)
    assert len(found) == 1 and found[0].startswith(f"{where}:") and expected in found[0]


@pytest.mark.parametrize("module, source", [
    ("dapt_core.studio.jobs", "from ..engine.experiment import run_experiment\n"),
    ("dapt_core.engine.inference", "from ..deploy.prediction import Decision\n"),  # the stated exception
    ("dapt_core.deploy.heatmaps", "from ..engine.tiling import peak\n"),
    ("dapt_core.deploy.onnx_export", "from ..engine.inference import Classifier\n"),
    ("dapt_core.data.fewshot", "from .. import atomic\nfrom ..errors import DataError\n"),
    ("dapt_core.cli", "def f():\n    from .studio import jobs\n"),
])
def test_imports_down_the_layers_pass(module, source):
    assert violations(source, module, "x.py") == []
