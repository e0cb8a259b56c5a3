"""Dashboard frameworks, declared as data.

Each :class:`Framework` record says how to recognise an app, the argv that
serves it on a localhost port under the server's URL prefix, which path
answers once it is ready, and what it needs behind a proxy. Adding a
framework is adding a record: nothing outside :func:`build_command` looks at
a framework's fields to decide how to run it.

Templates may use these placeholders:

``{entry}``      the entry file or folder, relative to the working directory
``{port}``       the localhost port the app must listen on
``{prefix}``     the URL prefix the app is served under (``/user/a/b/``)
``{app_name}``   the entry's name without suffix (Bokeh/Panel route name)
``{python}``     the Python interpreter running the launcher
``{warm_kernels}`` how many kernels to keep preheated (``warm_kernel_flags`` only)
``{max_warm_kernels}`` the most the hub allows one dashboard (``warm_kernel_flags`` only)
``{warm_burst}`` kernels to add while a class arrives (``warm_kernel_flags`` only)

:func:`build_command` (run by the launcher) also points Jupyter-based apps at
hub_viz's own Jupyter folder where the launcher runs (:func:`jupyter_settings`):
a record names no path, so a hub and its instances may run different hub_viz
versions.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import FrameworkError

# labconfig/ for viewers' JupyterLab and voila/templates/hub-viz (see jupyter_settings).
JUPYTER_DIR = Path(__file__).parent / "launcher" / "jupyter"
VOILA_TEMPLATE = "hub-viz"

SHARED = "shared"
PER_VIEWER = "per-viewer"
MODES = (SHARED, PER_VIEWER)

# Frameworks authors may use unless the operator says otherwise ('custom' is opt-in).
DEFAULT_FRAMEWORKS = [
    "voila",
    "dash",
    "bokeh",
    "panel",
    "streamlit",
    "notebook",
    "gradio",
    "shiny",
    "marimo",
    "solara",
    "nicegui",
]

# What of a Jupyter server viewers may reach through the launcher
# (hub_viz/launcher/kernel_filter.py, RULES_BY_KIND): "none" (no Jupyter server runs:
# every path the app serves passes, as bare), "jupyter-server" (an operator's framework
# that runs one: its API is refused, the app's own routes pass), "voila" (the
# dashboard's own routes; widget messages only on the kernel websocket), "jupyterlab"
# (unfiltered for the owner of a per-viewer server only, the API refused to anyone
# else), "marimo" (a marimo app's page, assets and UI element updates only: none of
# its editing, running, file or export routes), "solara" (a Solara app's pages and
# files; widget messages only on its kernel websocket).
JUPYTER_API_KINDS = ("none", "jupyter-server", "voila", "jupyterlab", "marimo", "solara")

# Where a request may name a framework's session (Framework.session_binding):
# "query:<parameter>", "header:<name>", "subprotocol:<position>" (1-based, in
# Sec-WebSocket-Protocol), "path:<regex>" (group 1 of a regex searched in the
# decoded path below the prefix), "json:<key>" (a top-level key of a JSON body,
# which the launcher then holds before the app sees it), and "issued:<regex>" (group 1
# of a regex searched in the first messages the app sends on a websocket: an id the
# app hands out, bound to that socket's viewer as it is issued).
SESSION_ID_PLACES = ("query", "header", "subprotocol", "path", "json", "issued")

# File types a Voilà viewer may download (images only): never notebooks or code.
VOILA_FILE_ALLOWLIST = r"['.*\.(png|jpe?g|gif|svg|webp)$']"


@dataclass(frozen=True)
class Framework:
    """How one dashboard framework is detected, started and probed."""

    name: str
    display_name: str
    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    # Path under the prefix that answers (any status below 500) once the app is up.
    ready_path: str = ""
    # Path under the prefix where a viewer lands; "" is the prefix itself.
    page_path: str = ""
    websockets: bool = True
    # Modes the framework may run in; `notebook` runs viewer code, so per-viewer only.
    modes: tuple[str, ...] = MODES
    # Detection: file suffixes, modules a .py entry imports, directory apps.
    suffixes: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()
    directory_app: bool = False
    # Lower wins when several frameworks match one entry (panel imports bokeh).
    detect_priority: int = 50
    # argv items placed before app arguments; None: the framework takes no arguments.
    args_separator: tuple[str, ...] | None = None
    # The launcher gives the app a private token and sends it upstream.
    needs_app_token: bool = False
    # One of JUPYTER_API_KINDS: what of a Jupyter server viewers may reach.
    jupyter_api: str = "none"
    # argv items added when a spec asks for preheated kernels ({warm_kernels} of them):
    # each new viewer then gets a kernel that already ran the notebook.
    warm_kernel_flags: tuple[str, ...] = ()
    # The gallery card's screenshot (hub_viz/service/capture.py; the service's alone:
    # SERVICE_ONLY_FIELDS): a JavaScript expression, true once the app's page shows
    # the app (not its loading screen).
    rendered_check: str = "document.readyState === 'complete'"
    # A query string the capture adds to the page so that it runs on an instance of
    # its own, never one kept for viewers (Voilà: not a preheated kernel).
    capture_query: str = ""
    # Why an embed of this framework's dashboards may not work in another site's frame
    # ("" when it does): the manage page shows it beside the embed form and the
    # publish form beside the framework (SERVICE_ONLY_FIELDS).
    embed_note: str = ""
    # Where a request names the app's per-tab session, for frameworks whose session id
    # is a bearer (whoever names it drives the session): "query:<param>" or
    # "header:<name>". The launcher binds each id to the viewer who first named it
    # and refuses it to anyone else (hub_viz/launcher/sessions.py).
    session_binding: tuple[str, ...] = ()
    # Path under the prefix where the app tells its preheated pool's state (JSON), which
    # the launcher passes to the service with its probe (Voilà: hub_viz/runners/voila_pool.py).
    pool_status_path: str = ""
    # What a local hub's launcher fork server imports for this framework's apps
    # ("module" or "module:function" that imports it): a command `{python} -m <module>`
    # of one of these modules then runs as a fork of a process that has them imported
    # (hub_viz/launcher/appfork.py) instead of a new interpreter importing them again.
    # Only code of the hub's environment (never an author's); the hub reads it alone.
    preload: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for where in self.session_binding:
            _check_session_place(self.name, where)
        for spec in self.preload:
            if not PRELOAD_SPEC.fullmatch(spec):
                raise FrameworkError(
                    f"Framework {self.name!r}: preload item {spec!r} is not a module name "
                    "or 'module:function'."
                )
        if self.jupyter_api not in JUPYTER_API_KINDS:
            raise FrameworkError(
                f"Framework {self.name!r}: jupyter_api must be one of "
                f"{', '.join(JUPYTER_API_KINDS)}, not {self.jupyter_api!r}."
            )
        if self.jupyter_api == "jupyterlab" and tuple(self.modes) != (PER_VIEWER,):
            raise FrameworkError(
                f"Framework {self.name!r} runs viewer code (jupyter_api 'jupyterlab'): "
                f"its modes must be exactly ['{PER_VIEWER}']; a shared dashboard never runs it."
            )

    def format_argv(self, values: Mapping[str, str], args: Iterable[str] = ()) -> list[str]:
        """Fill the command template; ``args`` go after ``args_separator``."""
        argv = [_fill(item, values, self.name) for item in self.command]
        args = list(args)
        if args:
            if self.args_separator is None:
                raise FrameworkError(
                    f"The {self.display_name} framework takes no app arguments; "
                    "remove 'args' from the dashboard spec."
                )
            argv += list(self.args_separator) + args
        return argv

    def format_env(self, values: Mapping[str, str]) -> dict[str, str]:
        """Fill the environment templates."""
        return {key: _fill(value, values, self.name) for key, value in self.env.items()}

    def format_path(self, template: str, values: Mapping[str, str]) -> str:
        """Fill a path template (ready or page path) relative to the prefix."""
        return _fill(template, values, self.name).lstrip("/")


def _check_session_place(framework: str, where: str) -> None:
    """One ``session_binding`` item is well formed (see :data:`SESSION_ID_PLACES`)."""
    kind, _, name = where.partition(":")
    problem = ""
    if kind not in SESSION_ID_PLACES or not name:
        problem = "its place is unknown"
    elif kind == "subprotocol" and not (name.isdigit() and int(name) >= 1):
        problem = "a subprotocol position is a number from 1"
    elif kind in ("path", "issued"):
        try:
            groups = re.compile(name).groups
        except re.error as e:
            groups, problem = 1, f"its regex does not compile ({e})"
        if groups != 1:
            problem = "its regex needs exactly one group (the id)"
    if problem:
        raise FrameworkError(
            f"Framework {framework!r}: session_binding item {where!r}: {problem}. Each item "
            "is 'query:<parameter>', 'header:<name>', 'subprotocol:<position>', "
            "'path:<regex>', 'json:<key>' or 'issued:<regex>'."
        )


# Fields the service reads and launchers never do: kept out of the record a launcher gets.
SERVICE_ONLY_FIELDS = ("rendered_check", "capture_query", "embed_note")
# Read by the hub's spawner alone: also kept out of a launcher's record.
HUB_ONLY_FIELDS = ("preload",)

PRELOAD_SPEC = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*)?")

_PLACEHOLDER = re.compile(r"{(\w+)}")


def _fill(template: str, values: Mapping[str, str], framework: str) -> str:
    """Replace ``{name}`` placeholders; an unknown name is a configuration error."""

    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            allowed = ", ".join(sorted("{%s}" % k for k in values))
            raise FrameworkError(
                f"Framework {framework!r} uses unknown placeholder {{{key}}}; allowed: {allowed}"
            )
        return values[key]

    return _PLACEHOLDER.sub(sub, template)


def with_command(framework: Framework, command: Iterable[str]) -> Framework:
    """Return ``framework`` with a spec-supplied argv template (the `custom` framework)."""
    command = tuple(command)
    if not command or not all(isinstance(item, str) and item for item in command):
        raise FrameworkError(
            "A custom dashboard needs 'command': a list of non-empty strings, "
            'e.g. ["python", "app.py", "--port={port}", "--prefix={prefix}"].'
        )
    if not any("{port}" in item for item in command):
        raise FrameworkError(
            "A custom command must contain {port}: the app has to listen on the port "
            "the launcher gives it."
        )
    return replace(framework, command=command)


def merge_frameworks(
    builtins: Mapping[str, Framework], overrides: Mapping[str, Mapping[str, Any] | Framework]
) -> dict[str, Framework]:
    """Merge operator overrides per key over ``builtins``.

    An override for a known name replaces only the fields it gives; an
    unknown name must give at least ``command`` and is added.
    """
    merged = dict(builtins)
    known = {f.name for f in Framework.__dataclass_fields__.values()} - {"name"}
    for name, override in overrides.items():
        if isinstance(override, Framework):
            merged[name] = override
            continue
        unknown = set(override) - known
        if unknown:
            raise FrameworkError(
                f"Framework {name!r} has unknown field(s) {sorted(unknown)}; "
                f"allowed: {sorted(known)}"
            )
        values: dict[str, Any] = {
            k: (tuple(v) if isinstance(v, list) else v) for k, v in override.items()
        }
        if name in merged:
            merged[name] = replace(merged[name], **values)
        else:
            if "command" not in values:
                raise FrameworkError(f"New framework {name!r} needs a 'command' template.")
            values.setdefault("display_name", name)
            merged[name] = Framework(name=name, **values)
    return merged


_IMPORT = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", re.MULTILINE)


def imported_modules(source: str) -> set[str]:
    """Top-level module names that ``source`` imports (a regex scan if it does not parse)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set(_IMPORT.findall(source))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module.split(".")[0])
    return modules


def detect(entry: Path, frameworks: Mapping[str, Framework]) -> str:
    """Name of the framework that serves ``entry`` (a file or an app folder).

    ``.ipynb`` files are Voilà dashboards; a ``.py`` file is claimed by the
    first framework (by priority) whose module it imports; a folder with a
    ``main.py`` is a Bokeh/Panel directory app. ``frameworks``: those allowed (e.g.
    :data:`hub_viz.builtin_frameworks.BUILTIN_FRAMEWORKS`).
    """
    candidates = sorted(frameworks.values(), key=lambda f: f.detect_priority)
    if entry.is_dir():
        main = entry / "main.py"
        if not main.is_file():
            raise FrameworkError(
                f"Folder {entry.name!r} is not a directory app: it has no main.py."
            )
        modules = imported_modules(main.read_text(errors="replace"))
        for fw in candidates:
            if fw.directory_app and modules & set(fw.imports):
                return fw.name
        raise FrameworkError(
            f"Cannot tell which framework serves folder {entry.name!r}: its main.py "
            "imports neither bokeh nor panel. Name the framework in the spec."
        )
    suffix = entry.suffix.lower()
    modules = imported_modules(entry.read_text(errors="replace")) if suffix == ".py" else set()
    for fw in candidates:
        if suffix not in fw.suffixes:
            continue
        if not fw.imports or modules & set(fw.imports):
            return fw.name
    names = ", ".join(f.name for f in candidates if f.suffixes)
    raise FrameworkError(
        f"Cannot tell which framework serves {entry.name!r}. Name one of: {names}."
    )


def jupyter_settings(framework: Framework) -> tuple[tuple[str, ...], dict[str, str]]:
    """argv items and environment that point a Jupyter-based app at ``JUPYTER_DIR``.

    Voilà (``jupyter_api`` "voila") gets the ``hub-viz`` template, Voilà's lab
    template without links to CDNs, unless its command names a template itself;
    JupyterLab ("jupyterlab") gets the page config that turns off the build
    prompt, the news and the extension manager.
    """
    if framework.jupyter_api == "voila":
        own = any("template=" in item for item in framework.command)
        flags = () if own else (f"--VoilaConfiguration.template={VOILA_TEMPLATE}",)
        return flags, {"JUPYTER_PATH": str(JUPYTER_DIR)}
    if framework.jupyter_api == "jupyterlab":
        return (), {"JUPYTER_CONFIG_PATH": str(JUPYTER_DIR)}
    return (), {}


@dataclass(frozen=True)
class AppCommand:
    """What the launcher runs and probes for one dashboard."""

    argv: list[str]
    env: dict[str, str]
    ready_path: str
    page_path: str
    websockets: bool


def build_command(
    framework: Framework,
    *,
    entry: str,
    port: int,
    prefix: str,
    args: Iterable[str] = (),
    app_token: str = "",
    python: str = sys.executable,
    warm_kernels: int = 0,
    max_warm_kernels: int = 100,
    warm_burst: int = 0,
) -> AppCommand:
    """Build the argv, environment and probe paths that serve ``entry``.

    ``warm_kernels`` above 0 adds the framework's ``warm_kernel_flags``; the pool
    they keep grows with demand up to ``max_warm_kernels`` (the hub's setting), and
    keeps ``warm_burst`` more while a class arrives.
    """
    if not framework.command:
        raise FrameworkError(
            f"Framework {framework.name!r} has no command; a custom dashboard must give one."
        )
    flags, jupyter_env = jupyter_settings(framework)
    if flags:
        framework = replace(framework, command=framework.command + flags)
    if warm_kernels:
        if not framework.warm_kernel_flags:
            raise FrameworkError(
                f"The {framework.display_name} framework has no preheated kernels; "
                "'warm_kernels' is for Voilà dashboards."
            )
        framework = replace(framework, command=framework.command + framework.warm_kernel_flags)
    values = {
        "entry": entry,
        "port": str(port),
        "prefix": prefix,
        "app_name": Path(entry).stem if not entry.endswith("/") else Path(entry).name,
        "python": python,
        "app_token": app_token,
        "warm_kernels": str(int(warm_kernels)),
        "max_warm_kernels": str(max(int(warm_kernels), int(max_warm_kernels))),
        "warm_burst": str(max(0, int(warm_burst))),
    }
    return AppCommand(
        argv=framework.format_argv(values, args),
        env={**jupyter_env, **framework.format_env(values)},
        ready_path=framework.format_path(framework.ready_path, values),
        page_path=framework.format_path(framework.page_path, values),
        websockets=framework.websockets,
    )
