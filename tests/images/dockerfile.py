"""Read a Dockerfile's instructions (enough of the format for the images in images/)."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "images"


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    value: str  # the rest, continuation lines joined

    def words(self) -> list[str]:
        """Arguments in exec (JSON) or shell form."""
        if self.value.startswith("["):
            return list(json.loads(self.value))
        return shlex.split(self.value)


def instructions(path: Path) -> list[Instruction]:
    out: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, value = line.partition(" ")
        out.append(Instruction(keyword.upper(), " ".join(value.split())))
    assert not pending, f"{path}: the last instruction ends with a continuation"
    return out


def copies(path: Path) -> list[tuple[list[str], str]]:
    """(sources relative to the build context, destination) of every COPY."""
    out = []
    for ins in instructions(path):
        if ins.keyword == "COPY":
            words = [w for w in ins.words() if not w.startswith("--")]
            out.append((words[:-1], words[-1]))
    return out


def image(path: Path) -> tuple[str, str]:
    """(name, tag) of the one FROM."""
    [ref] = [ins.value.split()[0] for ins in instructions(path) if ins.keyword == "FROM"]
    name, _, tag = ref.rpartition(":")
    return name, tag


def final_user(path: Path) -> str:
    users = [ins.value for ins in instructions(path) if ins.keyword == "USER"]
    return users[-1] if users else "root"


def run_steps(path: Path) -> list[str]:
    """The commands of every RUN, split at ``&&``."""
    return [
        step.strip()
        for ins in instructions(path)
        if ins.keyword == "RUN"
        for step in ins.value.split("&&")
    ]
