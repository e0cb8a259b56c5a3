"""A dashboard's declared Python requirements: found beside its entry, checked, normalised.

An author declares what a dashboard runs in with a ``requirements.txt`` beside
the entry (or inside a folder app), or else the ``[project] dependencies`` of a
``pyproject.toml`` there. Authors are untrusted: a requirement file may only
name packages (PEP 508, with versions and markers). Lines that would choose
where packages come from (``pkg @ https://…``, ``--index-url``,
``--find-links``, ``-e``) are refused unless the operator allows URLs, and
lines that read other files (``-r``, ``-c``) always are: the operator's index
settings decide where packages come from. An ``environment.yml`` (conda's,
common in Binder repositories) is read too, for what pip can install: its
conda packages by the same name on the package index (``pandas=1.5`` is
``pandas==1.5.*``), its ``pip:`` list as requirement lines; the hub has no
conda, so a ``python`` the hub's Python does not satisfy, or a package only
conda has, fails with a readable reason (the resolver names the package).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from .errors import SpecError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    tomllib = None

REQUIREMENTS_TXT = "requirements.txt"
PYPROJECT = "pyproject.toml"
ENVIRONMENT_YML = ("environment.yml", "environment.yaml")
# conda packages that are the environment itself, not a package to install
CONDA_TOOLING = frozenset({"pip", "setuptools", "wheel", "conda"})
# The most a requirement file may hold (bytes), and the most lines it may name.
MAX_FILE_BYTES = 64 * 1024
MAX_REQUIREMENTS = 500
# Options that pick a package source: allowed only with ``allow_urls``.
SOURCE_OPTIONS = (
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "-e",
    "--editable",
    "--no-index",
    "--trusted-host",
)
# Options that read other files on the machine that resolves: never allowed.
FILE_OPTIONS = ("-r", "--requirement", "-c", "--constraint")


class RequirementsError(SpecError):
    """A requirement file this hub does not accept (400, with the line at fault)."""


@dataclass(frozen=True)
class Requirements:
    """The checked requirements of one dashboard: ``source`` names the file they came from."""

    source: str
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        """The normalised requirement lines, one per line (the resolver's input)."""
        return "".join(line + "\n" for line in self.lines)

    def digest(self, *settings: str) -> str:
        """A hash of the requirements with the settings that change their resolution."""
        h = hashlib.sha256(self.text.encode())
        for item in settings:
            h.update(b"\0" + item.encode())
        return h.hexdigest()


def requirement_folders(cwd: Path, entry: str) -> list[Path]:
    """Where a dashboard's requirement file may be: a folder app's own folder, then the
    folder its entry is in (``cwd``)."""
    if (cwd / entry).is_dir():
        return [cwd / entry, cwd]
    return [cwd]


def find_requirements(
    folders: list[Path], *, allow_urls: bool = False, within: Path | None = None
) -> Requirements | None:
    """The first requirement file in ``folders`` (checked), or None: the shared environment.
    With ``within``, a file that turns out to live elsewhere (a folder swapped for a link
    after the spec was checked) is refused."""
    for folder in folders:
        txt = folder / REQUIREMENTS_TXT
        if os.path.lexists(txt):
            return check_requirements(
                _read(txt, within), source=REQUIREMENTS_TXT, allow_urls=allow_urls
            )
        project = folder / PYPROJECT
        if os.path.lexists(project):
            found = pyproject_requirements(_read(project, within), allow_urls=allow_urls)
            if found is not None:
                return found
        for name in ENVIRONMENT_YML:
            if os.path.lexists(folder / name):
                return conda_requirements(
                    _read(folder / name, within), source=name, allow_urls=allow_urls
                )
    return None


def _read(path: Path, within: Path | None = None) -> str:
    """The file's text, read as the hub: a link is refused (it could point at a file
    the author may not read), and so is anything but a regular file or one whose real
    place is not inside ``within``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise RequirementsError(
                f"{path.name} is a link; put the file itself beside the dashboard."
            ) from None
        raise
    with os.fdopen(fd, "rb") as f:
        if within is not None and not _opened_inside(f.fileno(), within):
            raise RequirementsError(
                f"{path.name} is not inside the dashboards folder; put the file itself "
                "beside the dashboard."
            )
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise RequirementsError(f"{path.name} must be a plain file.")
        if info.st_size > MAX_FILE_BYTES:
            raise RequirementsError(
                f"{path.name} is larger than {MAX_FILE_BYTES // 1024} KB; list only the "
                "packages the dashboard imports."
            )
        return f.read(MAX_FILE_BYTES).decode("utf-8", "replace")


def _opened_inside(fd: int, folder: Path) -> bool:
    """Is the open file really inside ``folder``? (Linux: its path in /proc.)"""
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # no /proc: the checks of the spec stand alone
        return True
    return real.startswith(os.path.realpath(folder).rstrip(os.sep) + os.sep)


def pyproject_requirements(text: str, *, allow_urls: bool = False) -> Requirements | None:
    """``[project] dependencies`` of a ``pyproject.toml`` (None if it declares none;
    on Python 3.10, without ``tomllib``, pyproject files are not read)."""
    if tomllib is None:
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RequirementsError(f"{PYPROJECT} is not valid TOML: {e}.") from None
    project = data.get("project")
    if not isinstance(project, dict) or "dependencies" not in project:
        return None
    deps = project["dependencies"]
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise RequirementsError(f"[project] dependencies in {PYPROJECT} must be a list of text.")
    return check_requirements("\n".join(deps), source=PYPROJECT, allow_urls=allow_urls)


def conda_requirements(text: str, *, source: str, allow_urls: bool = False) -> Requirements:
    """What pip can install of a conda ``environment.yml``: each conda package by its
    name (conda's ``name=1.5`` matches 1.5.*, a build string is dropped), the ``pip:``
    list as requirement lines. Channels are ignored; ``python`` must match the hub's."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise RequirementsError(f"{source} is not valid YAML: {e}") from None
    deps = data.get("dependencies") if isinstance(data, dict) else None
    if deps is None:
        deps = []
    if not isinstance(deps, list):
        raise RequirementsError(f"'dependencies' in {source} must be a list.")
    lines: list[str] = []
    for number, dep in enumerate(deps, 1):
        where = f"Dependency {number} of {source}"
        if isinstance(dep, dict) and set(dep) == {"pip"} and isinstance(dep["pip"], list):
            # text only: str() of nested lists (YAML aliases can nest them deep) is refused
            if not all(isinstance(item, str) for item in dep["pip"]):
                raise RequirementsError(f"{where}: each 'pip:' entry must be a line of text.")
            pip = list(dep["pip"])
            lines.extend(
                check_requirements(
                    "\n".join(pip), source=f"{source} (pip)", allow_urls=allow_urls
                ).lines
            )
            continue
        if not isinstance(dep, str | int | float):
            raise RequirementsError(f"{where} is not a package name.")
        line = conda_line(str(dep).strip(), where)
        if line:
            lines.append(line)
    return check_requirements("\n".join(lines), source=source, allow_urls=allow_urls)


def conda_line(spec: str, where: str) -> str:
    """A conda package spec as a requirement line ('' for conda's own tooling)."""
    import re

    spec = spec.split("::", 1)[-1]  # channel::name
    found = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(.*)", spec)
    if not found:
        raise RequirementsError(f"{where}: {spec[:80]!r} is not a conda package spec.")
    name, rest = found[1], found[2].replace(" ", "")
    if name.lower() in CONDA_TOOLING:
        return ""
    if rest[:1].isdigit():  # "pandas 1.5.*": conda's fuzzy match, as "="
        rest = "=" + rest
    if rest.startswith("=") and not rest.startswith("=="):
        version = rest[1:].split("=", 1)[0].rstrip("*").rstrip(".")  # =1.5=build: conda's
        rest = f"=={version}.*" if version else ""
    if name.lower() == "python":
        check_python(rest, where)
        return ""
    line = f"{name}{rest}"
    try:
        Requirement(line)
    except InvalidRequirement:
        raise RequirementsError(
            f"{where}: {spec[:80]!r} is not a package this hub can read; use a name with "
            "an optional version, e.g. 'pandas=1.5' or 'pandas>=1.5'."
        ) from None
    return line


def check_python(spec: str, where: str) -> None:
    """A ``python`` dependency the hub's Python must satisfy (the hub has no other)."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    running = ".".join(str(n) for n in sys.version_info[:3])
    try:
        ok = not spec or SpecifierSet(spec).contains(running)
    except InvalidSpecifier:
        raise RequirementsError(
            f"{where}: 'python{spec}' is not a version this hub reads."
        ) from None
    if not ok:
        raise RequirementsError(
            f"{where}: the dashboard asks for python{spec}; this hub runs Python {running} "
            "and cannot install another (it has no conda). Remove the python line or "
            "make it match."
        )


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) without comments and blank lines, continuations joined."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].split("\t#", 1)[0]
        if line.lstrip().startswith("#"):
            line = ""
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            out.append((start, line))
    if pending.strip():
        out.append((start, pending.strip()))
    return out


def check_requirements(text: str, *, source: str, allow_urls: bool = False) -> Requirements:
    """Check every line of a requirement file; raises :class:`RequirementsError`."""
    lines: list[str] = []
    for number, line in _logical_lines(text):
        where = f"Line {number} of {source}"
        if line.startswith("-"):
            option = line.split("=", 1)[0].split()[0]
            if option in FILE_OPTIONS:
                raise RequirementsError(
                    f"{where}: '{option}' reads another file; list the packages themselves."
                )
            if option in SOURCE_OPTIONS and allow_urls:
                lines.append(line)
                continue
            raise RequirementsError(
                f"{where}: '{option}' is not allowed on this hub; the hub's administrator "
                "chooses where packages come from. List package names and versions only, "
                "e.g. 'pandas<2'."
            )
        try:
            req = Requirement(line)
        except InvalidRequirement as e:
            raise RequirementsError(
                f"{where}: {line[:80]!r} is not a package requirement ({e}). Use a name "
                "with an optional version, e.g. 'pandas<2'; paths and URLs are not accepted."
            ) from None
        if req.url and not allow_urls:
            raise RequirementsError(
                f"{where}: '{req.name} @ …' installs from a URL, which this hub does not "
                "allow; name a version from the hub's package index instead."
            )
        lines.append(str(req))
    if len(lines) > MAX_REQUIREMENTS:
        raise RequirementsError(f"{source} names more than {MAX_REQUIREMENTS} requirements.")
    return Requirements(source=source, lines=tuple(lines))
