"""`dapt app`: serve the DAPT Studio app with Streamlit, from wherever it lies (see bundled.py).

    dapt app                                   # as `make app` does: `streamlit run app.py`
    dapt app --port 8600 --workspace ~/inspection
    dapt app -- --server.headless true         # anything after -- goes to `streamlit run` as it is

It runs `streamlit run <app.py>` in this process. Streamlit reads the app's own .streamlit/config.toml beside
app.py, so the installed app keeps the settings of the checkout; where it listens is left to that file and to
Streamlit unless --port or --address say otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from .bundled import APP_REQUIREMENT, app_script
from .errors import ConfigError, DaptError
from .studio.accounts import Accounts
from .studio.sign_in_policy import DEFAULT_SECRETS_FILES, identity_provider_configured, serving_on_network
from .studio.storage import WORKSPACE_ENV
from .studio.workspace import Workspace

# What the app imports beyond the library (pyproject's `app` extra): module name, distribution name.
APP_MODULES = (("streamlit", "streamlit"), ("plotly", "plotly"), ("umap", "umap-learn"))


def register(commands, common: argparse.ArgumentParser) -> None:
    """Add `dapt app` to the command line's subcommands."""
    app = commands.add_parser(
        "app", parents=[common], help="serve the DAPT Studio app in the browser (needs the app extra)",
        description="Serve the DAPT Studio app with Streamlit (`streamlit run app.py`), from the repository "
                    f"checkout or from the installed package. Needs pip install \"{APP_REQUIREMENT}\".")
    app.add_argument("--port", type=int,
                     help="port to serve on (default: the app's .streamlit/config.toml, else Streamlit's 8501)")
    app.add_argument("--address",
                     help="address to listen on (default: the app's .streamlit/config.toml, else Streamlit's)")
    app.add_argument("--workspace", metavar="DIR",
                     help=f"folder of the app's projects (default: ${WORKSPACE_ENV}, else ./workspace)")
    app.add_argument("streamlit_options", nargs=argparse.REMAINDER, metavar="-- STREAMLIT_OPTIONS",
                     help="more options of `streamlit run`, after --, e.g. -- --server.headless true")
    app.set_defaults(handler=cmd_app)


def streamlit_argv(args) -> list[str]:
    """The `streamlit run` command line for the parsed `dapt app` arguments."""
    argv = ["streamlit", "run", str(app_script())]
    if args.port is not None:
        argv += ["--server.port", str(args.port)]
    if args.address is not None:
        argv += ["--server.address", args.address]
    extra = list(args.streamlit_options or [])
    if extra[:1] == ["--"]:
        extra = extra[1:]
    return argv + extra


def secrets_files(args) -> list[Path]:
    """The secrets files Streamlit will read: those a `--secrets.files` option names, else its defaults."""
    extra = list(args.streamlit_options or [])
    for index, option in enumerate(extra):
        if option.startswith("--secrets.files="):
            return [Path(option.split("=", 1)[1])]
        if option == "--secrets.files" and index + 1 < len(extra):
            return [Path(extra[index + 1])]
    return list(DEFAULT_SECRETS_FILES)


def refuse_network_without_sign_in(args) -> None:
    """Served on a network address, anyone on the network would reach every project: refuse to start until local
    accounts or an identity provider exist (the app shows the same advice if started another way)."""
    if args.address is None or not serving_on_network(args.address):
        return  # 127.0.0.1 from the app's .streamlit/config.toml, or a loopback address given here
    if Accounts(Workspace(None).root).exist() or identity_provider_configured(secrets_files(args)):
        return
    raise ConfigError(
        f"Not starting on {args.address}: anyone on the network could open every project, and no one can sign in "
        "yet. Create an account for each person first (dapt users add NAME), or set up sign-in through your "
        "identity provider in .streamlit/secrets.toml (README, 'Sharing on a network'); or leave out --address "
        "to serve this machine only.")


def cmd_app(args) -> int:
    missing = [dist for module, dist in APP_MODULES if importlib.util.find_spec(module) is None]
    if missing:
        raise DaptError(f"`dapt app` needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                        f"not installed here. Install the app's extras: pip install \"{APP_REQUIREMENT}\" "
                        "(from a checkout of the repository: pip install \".[app]\").")
    script = app_script()
    if not script.is_file():
        raise DaptError(f"The app's files are not installed (looked for {script}). Reinstall the package: "
                        f"pip install --force-reinstall \"{APP_REQUIREMENT}\".")
    if args.workspace:
        os.environ[WORKSPACE_ENV] = str(Path(args.workspace).expanduser().resolve())
    refuse_network_without_sign_in(args)
    from streamlit.web import cli as streamlit_cli

    sys.argv = streamlit_argv(args)  # Streamlit reads its own command line from sys.argv as well
    streamlit_cli.main(prog_name="streamlit")  # serves until stopped, then exits with Streamlit's status
    return 0
