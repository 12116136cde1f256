"""`pip install .` the normal way, not editable: the wheel must carry the library, the app and the demo model.

The slow test builds the wheel from a copy of the checkout, installs it into a fresh virtual environment and
runs the installed `dapt` from a folder outside the repository: `dapt demo-data`, a short `dapt tune --backbone
demo`, the installed app's first page, and `dapt app` up to Streamlit's health check.

The fresh environment holds nothing but the wheel. Its dependencies (torch, open_clip, streamlit, ...) are the
ones of the environment running the tests, put on its sys.path by a .pth file: a folder named in a .pth file is
appended after the environment's own site-packages, and the .pth files inside it are not run, so the editable
install of the checkout (a .pth hook in .venv) stays out. What runs is the installed copy; the test checks so.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from streamlit_server import STARTUP_SECONDS, free_port

from dapt_core import app_launcher, cli

ROOT = Path(__file__).resolve().parents[1]
# Not copied into the build: version control, environments, caches and what earlier builds and runs left.
NOT_SOURCES_AT_TOP = {".git", ".venv", "venv", "build", "dist", "workspace", "runs", "out", ".pytest_cache",
                      ".ruff_cache"}
COMMAND_SECONDS = 300
# The app's folders beside app.py; every file in them must be in the wheel (under dapt_studio/).
STUDIO_FOLDERS = ("app_pages", "ui", "assets")


# ------------------------------------------------------------------------------ fast checks, no build


def test_every_subpackage_of_dapt_core_is_listed_in_pyproject():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "dapt_core").rglob("__init__.py")}
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"


def test_dapt_app_without_streamlit_says_what_to_install(monkeypatch, capsys):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "streamlit" else real_find_spec(name, *args))
    assert cli.main(["app"]) == cli.EXIT_USER_ERROR
    error = capsys.readouterr().err
    assert "streamlit" in error and 'pip install "dapt-studio[app]"' in error


def test_dapt_app_passes_options_through_and_leaves_the_address_alone():
    parser = cli.build_parser()
    plain = app_launcher.streamlit_argv(parser.parse_args(["app"]))
    assert plain == ["streamlit", "run", str(ROOT / "app.py")]  # from a checkout: its own app.py, as `make app`
    argv = app_launcher.streamlit_argv(parser.parse_args(
        ["app", "--port", "8600", "--address", "127.0.0.1", "--", "--server.headless", "true"]))
    assert argv[3:] == ["--server.port", "8600", "--server.address", "127.0.0.1", "--server.headless", "true"]


# ------------------------------------------------------------------------------ the installed wheel


def _run(command: list, cwd: Path, env: dict, timeout: float = COMMAND_SECONDS) -> str:
    done = subprocess.run([str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, (f"{command} exited with {done.returncode}:\n"
                                  f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from a copy of the checkout, installed alone into a fresh venv: (venv, wheel, run dir)."""
    base = tmp_path_factory.mktemp("wheel")
    assert not base.resolve().is_relative_to(ROOT)
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=_not_sources)
    # Offline and with this environment's setuptools where it has one; else pip fetches the build requirement
    # as `pip install -e .` in scripts/setup.sh did.
    isolation = ["--no-build-isolation", "--no-index"] if importlib.util.find_spec("setuptools") else []
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", *isolation,
          "-w", base / "dist", source], base, os.environ)
    wheel = next((base / "dist").glob("dapt_studio-*.whl"))

    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], base, os.environ)
    python = venv / "bin" / "python"
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], base,
                        os.environ).strip())
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (purelib / "dapt-test-dependencies.pth").write_text("".join(f"{folder}\n" for folder in ours))
    # This environment's pip, run by the fresh interpreter, installs into the fresh environment.
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--disable-pip-version-check", wheel],
         base, _env())
    work = base / "elsewhere"
    work.mkdir()
    return venv, wheel, work


def _not_sources(folder: str, names: list[str]) -> set[str]:
    junk = {name for name in names if name == "__pycache__" or name.endswith((".egg-info", ".pyc"))}
    return junk | (NOT_SOURCES_AT_TOP & set(names) if Path(folder) == ROOT else set())


def _env(**extra) -> dict:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    return {**env, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **extra}


def test_the_wheel_carries_the_library_the_app_and_the_demo_model(installed):
    _, wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {path.relative_to(ROOT).as_posix() for path in (ROOT / "dapt_core").rglob("*.py")}
    for folder in STUDIO_FOLDERS:
        assert (ROOT / folder).is_dir(), f"{folder}/ is gone: update STUDIO_FOLDERS and pyproject.toml's packages"
    studio = [ROOT / "app.py", ROOT / ".streamlit" / "config.toml",
              *(path for folder in STUDIO_FOLDERS for path in (ROOT / folder).rglob("*")
                if path.is_file() and "__pycache__" not in path.parts)]
    expected |= {"dapt_studio/" + path.relative_to(ROOT).as_posix() for path in studio}
    assert not expected - names, f"missing from the wheel (see pyproject.toml): {sorted(expected - names)}"
    # The app's folders only inside dapt_studio/, never as top-level packages of site-packages.
    top_level = {name.split("/")[0] for name in names}
    assert {name for name in top_level if not name.endswith(".dist-info")} == {"dapt_core", "dapt_studio"}


def test_the_installed_dapt_tunes_on_the_demo_model_and_serves_the_app(installed):
    venv, _, work = installed
    bin_dir = venv / "bin"
    env = _env(DAPT_WORKSPACE=str(work / "workspace"))

    where = json.loads(_run([bin_dir / "python", "-c",
                             "import json, dapt_core, dapt_core.bundled as b; print(json.dumps("
                             "[dapt_core.__file__, str(b.app_script()), str(b.demo_model_dir())]))"], work, env))
    for path in map(Path, where):
        assert path.resolve().is_relative_to(venv.resolve()) and not path.resolve().is_relative_to(ROOT), path

    _run([bin_dir / "dapt", "demo-data", "demo"], work, env)
    _run([bin_dir / "dapt", "tune", "demo", "--backbone", "demo", "--shots", "2", "--epochs", "2",
          "--out", "prompts.safetensors", "--json", "metrics.json"], work, env)
    metrics = json.loads((work / "metrics.json").read_text())
    weights = ROOT / "assets" / "demo_clip" / "open_clip_model.safetensors"
    assert metrics["backbone"] == "demo"
    assert metrics["backbone_weights"] == "sha256:" + hashlib.sha256(weights.read_bytes()).hexdigest()
    assert (work / "prompts.safetensors").is_file()

    # The installed app's first page, as `streamlit run` runs it (the script's folder first on sys.path).
    page = ("from streamlit.testing.v1 import AppTest\n"
            "import dapt_core.bundled as b\n"
            "at = AppTest.from_file(str(b.app_script()), default_timeout=120).run()\n"
            "assert not at.exception, at.exception\n"
            "print('rendered')\n")
    studio_root = Path(where[1]).parent
    assert "rendered" in _run([bin_dir / "python", "-c", page], work, {**env, "PYTHONPATH": str(studio_root)})

    port = free_port()
    log_path = work / "app.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen([bin_dir / "dapt", "app", "--port", str(port), "--address", "127.0.0.1",
                                   "--", "--server.headless", "true"], cwd=work, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
        try:
            assert _healthy(server, f"http://127.0.0.1:{port}/_stcore/health"), log_path.read_text(errors="replace")
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)


def _healthy(server: subprocess.Popen, url: str) -> bool:
    deadline = time.time() + STARTUP_SECONDS
    while time.time() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.read().strip() == b"ok":
                    return True
        except OSError:
            time.sleep(0.5)
    return False
