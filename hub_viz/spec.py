"""Dashboard specs: validate what a user asks for before anything starts.

A spec arrives as a server's ``user_options`` (JSON from the hub API or a
predefined dashboard). :func:`resolve_spec` checks it against the dashboards
folder and the enabled frameworks, and returns what the launcher needs.
Every problem raises :class:`~hub_viz.errors.SpecError` with a message that
says what was wrong and what is allowed, without revealing server paths.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import FrameworkError, SpecError
from .frameworks import MODES, SHARED, Framework, detect, with_command

# 'profile' and 'resources' are the spawner's to check (hub_viz.profiles).
SPEC_KEYS = frozenset(
    {
        "framework",
        "entry",
        "mode",
        "args",
        "command",
        "title",
        "profile",
        "resources",
        "warm_kernels",
        "warm_burst",
    }
)
MAX_WARM_KERNELS = 500  # far above any class; the operator's limit is usually lower
MAX_ARGS = 32
MAX_ARG_LENGTH = 1000
# Path segments: letters, digits and . _ - and spaces, not starting with '-' or '.'.
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_. -]{0,127}$")


@dataclass(frozen=True)
class ResolvedSpec:
    """A checked spec: the framework record and where the app lives."""

    framework: Framework
    entry: str  # file or folder name, relative to `cwd`
    cwd: str  # absolute path of the dashboard's folder
    mode: str
    args: tuple[str, ...]
    title: str
    warm_kernels: int = 0
    warm_burst: int = 0  # kernels to add while a class arrives (the service's estimate)


def check_entry_path(entry: Any) -> PurePosixPath:
    """Syntax of an entry path: relative, no ``..``, no option-like segments."""
    if not isinstance(entry, str) or not entry.strip():
        raise SpecError("The spec needs 'entry': the dashboard's file, e.g. 'sales/app.py'.")
    if "\x00" in entry or "\\" in entry:
        raise SpecError("'entry' contains characters that are not allowed in a path.")
    path = PurePosixPath(entry.strip())
    if not path.parts:
        raise SpecError("'entry' must name a file or folder inside the dashboards folder.")
    if path.is_absolute():
        raise SpecError("'entry' must be relative to the dashboards folder, not absolute.")
    for part in path.parts:
        if part == "..":
            raise SpecError("'entry' must stay inside the dashboards folder ('..' is not allowed).")
        if not _SEGMENT.fullmatch(part):
            raise SpecError(
                f"'entry' segment {part!r} is not allowed: use letters, digits, '.', '_', '-' "
                "and spaces, not starting with '-' or '.'."
            )
    return path


def check_args(args: Any) -> tuple[str, ...]:
    """App arguments: a short list of strings without NUL bytes and without a bare ``--``."""
    if args is None:
        return ()
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise SpecError("'args' must be a list of strings.")
    if len(args) > MAX_ARGS:
        raise SpecError(f"'args' has {len(args)} items; at most {MAX_ARGS} are allowed.")
    for arg in args:
        if len(arg) > MAX_ARG_LENGTH or "\x00" in arg:
            raise SpecError(f"Each of 'args' must be under {MAX_ARG_LENGTH} characters, no NUL.")
        if arg == "--":
            # They already follow the framework's separator; a second one ends Bokeh's and
            # Panel's --args, and the app fails to start with a usage error.
            raise SpecError(
                "'args' may not contain '--' on its own: the app's arguments "
                "already come after the framework's options."
            )
    return tuple(args)


def check_warm_kernels(value: Any, framework: Framework, limit: int = MAX_WARM_KERNELS) -> int:
    """How many preheated kernels: 0 (none) up to ``limit``, for frameworks that have them."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SpecError("'warm_kernels' must be a whole number of kernels, 0 for none.")
    if value > limit:
        raise SpecError(
            f"'warm_kernels' may be at most {limit} on this hub (each kernel holds its "
            "own memory, about 60 MB for a small notebook)."
        )
    if value and not framework.warm_kernel_flags:
        raise SpecError(
            f"The {framework.display_name} framework has no preheated kernels; "
            "'warm_kernels' is for Voilà dashboards."
        )
    return value


def check_warm_burst(value: Any, warm_kernels: int, limit: int = MAX_WARM_KERNELS) -> int:
    """Kernels to add to ``warm_kernels`` while a class arrives: 0 up to what ``limit``
    leaves, and only beside preheated kernels."""
    if value is None or value == 0:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SpecError("'warm_burst' must be a whole number of kernels, 0 for none.")
    if not warm_kernels:
        raise SpecError("'warm_burst' adds to 'warm_kernels', which this spec does not ask for.")
    if warm_kernels + value > limit:
        raise SpecError(
            f"'warm_kernels' and 'warm_burst' together may be at most {limit} on this hub."
        )
    return value


def resolve_spec(
    options: Any,
    *,
    root: Path,
    frameworks: Mapping[str, Framework],
    allowed_frameworks: Iterable[str],
    check_files: bool = True,
    max_warm_kernels: int = MAX_WARM_KERNELS,
) -> ResolvedSpec:
    """Check ``options`` and resolve it inside ``root``.

    With ``check_files`` False (the files live elsewhere, e.g. in a pod),
    the framework must be named and the entry is not looked at.
    """
    if not isinstance(options, Mapping):
        raise SpecError("A dashboard spec must be a JSON object.")
    unknown = set(options) - SPEC_KEYS
    if unknown:
        raise SpecError(f"Unknown spec field(s) {sorted(unknown)}; allowed: {sorted(SPEC_KEYS)}.")
    allowed = [name for name in allowed_frameworks if name in frameworks]
    rel = check_entry_path(options.get("entry"))
    root = root.resolve()
    target = root.joinpath(*rel.parts)
    if check_files:
        resolved = target.resolve()
        if resolved != root and root not in resolved.parents:
            raise SpecError(f"'entry' {str(rel)!r} points outside the dashboards folder.")
        if not resolved.exists():
            raise SpecError(f"The entry file {str(rel)!r} does not exist in the dashboards folder.")

    name = options.get("framework")
    if name is None:
        if not check_files:
            raise SpecError(f"The spec needs 'framework'; one of: {', '.join(allowed)}.")
        try:
            name = detect(target, {n: frameworks[n] for n in allowed})
        except FrameworkError as e:
            raise SpecError(e.message) from None
    if not isinstance(name, str) or name not in frameworks:
        raise SpecError(f"Unknown framework {name!r}; allowed: {', '.join(allowed)}.")
    if name not in allowed:
        raise SpecError(
            f"The {name!r} framework is not enabled on this hub; allowed: {', '.join(allowed)}."
        )
    framework = frameworks[name]

    command = options.get("command")
    if command is not None:
        if name != "custom":
            raise SpecError("'command' is only for the 'custom' framework.")
        if not isinstance(command, list):
            raise SpecError("'command' must be a list of strings.")
        try:
            framework = with_command(framework, command)
        except FrameworkError as e:
            raise SpecError(e.message) from None
    elif not framework.command:
        raise SpecError(f"The {name!r} framework needs 'command' in the spec.")

    mode = options.get("mode", SHARED)
    if mode not in MODES:
        raise SpecError(f"Unknown mode {mode!r}; allowed: {', '.join(MODES)}.")
    if mode not in framework.modes:
        raise SpecError(
            f"The {framework.display_name} framework runs viewer code, so it is allowed "
            f"only in mode(s): {', '.join(framework.modes)}."
        )
    args = check_args(options.get("args"))
    if args and framework.args_separator is None:
        raise SpecError(f"The {framework.display_name} framework takes no 'args'.")
    title = options.get("title") or rel.name
    if not isinstance(title, str) or len(title) > 200:
        raise SpecError("'title' must be a string of at most 200 characters.")

    warm = check_warm_kernels(options.get("warm_kernels"), framework, max_warm_kernels)
    return ResolvedSpec(
        framework=framework,
        entry=rel.name,
        cwd=str(target.parent),
        mode=mode,
        args=args,
        title=title,
        warm_kernels=warm,
        warm_burst=check_warm_burst(options.get("warm_burst"), warm, max_warm_kernels),
    )
