"""Push webhooks of git hosts: who may tell the service that a followed branch moved.

Each dashboard that follows a branch may have a webhook: a URL with an
opaque id (``hooks/git/<id>``, which names no dashboard) and a secret the
author pastes into GitHub or GitLab. The store keeps only the id; the secret
is derived from it with the service's own key (HMAC-SHA256 with a key in a
0600 file), so a copy of the database alone gives no secret, and a new id
(the author asks again) revokes the old secret.

A request passes when it carries, for that id's secret, either GitHub's
``X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>`` or GitLab's
``X-Gitlab-Token: <secret>``; both compared in constant time. Anything else,
and an id no dashboard has, gets the same refusal.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from pathlib import Path
from typing import Any

from ..filemodes import ensure_secret_file

REFUSED = (
    "The webhook's signature is missing or does not match: set the secret hub_viz showed "
    "when the webhook was made (GitHub: content type application/json and the secret; "
    "GitLab: the secret token)."
)
# Pushes may carry large payloads (many commits); the service reads at most this much.
MAX_PAYLOAD = 1_000_000


class HookKeys:
    """Derives and checks webhook secrets with the service's key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the webhook key is too short")
        self._key = key

    @classmethod
    def from_file(cls, path: Path) -> HookKeys:
        made = ensure_secret_file(path, lambda: secrets.token_hex(32))
        return cls(made.read_text().strip().encode())

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(24)

    def secret(self, hook_id: str) -> str:
        mac = hmac.new(self._key, b"hub-viz-webhook\0" + hook_id.encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")

    def verify(self, hook_id: str, body: bytes, headers: Any) -> bool:
        """Does the request carry a valid GitHub signature or GitLab token for ``hook_id``?"""
        secret = self.secret(hook_id).encode()
        signature = headers.get("X-Hub-Signature-256") or ""
        if signature:
            algo, _, given = signature.partition("=")
            expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
            return algo == "sha256" and hmac.compare_digest(given.strip().lower(), expected)
        token = headers.get("X-Gitlab-Token") or ""
        if token:
            return hmac.compare_digest(token.encode(), secret)
        return False


def pushed_branch(headers: Any, body: bytes) -> tuple[str, str] | None:
    """(event, branch) of a push payload: event "push" or "ping"; None if unreadable.

    GitHub says the event in ``X-GitHub-Event``, GitLab in ``X-Gitlab-Event``
    ("Push Hook"); both carry ``ref`` (``refs/heads/<branch>``) in the body.
    """
    event = (headers.get("X-GitHub-Event") or headers.get("X-Gitlab-Event") or "").lower()
    if event == "ping":
        return "ping", ""
    if event not in ("push", "push hook"):
        return None
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    ref = payload.get("ref") if isinstance(payload, dict) else None
    if not isinstance(ref, str) or not ref.startswith("refs/heads/"):
        return "push", ""
    return "push", ref.removeprefix("refs/heads/")
