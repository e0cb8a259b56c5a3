"""Tiny pure-Python wheels written directly (a wheel is a zip file with metadata), so
that environment tests build from a local wheel folder without any index."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def make_wheel(
    folder: Path, name: str, version: str, source: str, requires: tuple[str, ...] = ()
) -> Path:
    """Write ``<name>-<version>-py3-none-any.whl`` with one module ``name`` holding ``source``."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{dist}/__init__.py": source,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: hub-viz-tests\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(path, "w") as z:
        for member, text in files.items():
            data = text.encode()
            z.writestr(member, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{member},sha256={digest.decode()},{len(data)}")
        record.append(f"{info}/RECORD,,")
        z.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return path


def version_package(folder: Path, name: str, versions: tuple[str, ...]) -> None:
    """Wheels of ``name`` in each of ``versions``, each saying its version in a greeting."""
    for version in versions:
        make_wheel(
            folder,
            name,
            version,
            f"__version__ = {version!r}\n\n\ndef greet():\n"
            f"    return 'hello from {name} ' + __version__\n",
        )
