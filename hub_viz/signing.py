"""Signed tokens between the service, the spawner and the launchers.

The service holds an Ed25519 private key; spawners and launchers get only
the public key, so code running inside a dashboard can read what it is given
and still cannot mint anything. Two kinds of token, told apart by audience:

- **spawn specs** (``hub-viz:spawn:<owner>/<server>``): the service's word
  that a server may run a dashboard whose source belongs to someone else
  (per-viewer instances) or comes from git;
- **open grants** (``hub-viz:open:<owner>/<server>``): short-lived, one
  viewer, one server; the launcher trades one for a cookie of its own. This
  is how "every hub user" and "public" dashboards open without one hub
  share per viewer.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import HubVizError
from .filemodes import make_private

if TYPE_CHECKING:
    from jwt.types import Options  # PyJWT 2.10+

ALGORITHM = "EdDSA"
# The scheme of ``Authorization: HubVizGrant <grant>``: the service shows a launcher a
# grant naming the dashboard's owner (its status probe, the author's log tail).
GRANT_HEADER_SCHEME = "HubVizGrant"
ISSUER = "hub-viz"
GRANT_SECONDS = 60
# A spawn spec is checked when the server starts, right after the service signs it.
# Expiring it means a stored spec cannot restart a server later (after the author
# made the dashboard private, say) without going through the service again.
SPEC_SECONDS = 600


class SignatureError(HubVizError):
    """A token that does not verify: wrong key, audience, expired or malformed."""


def spawn_audience(owner: str, server: str) -> str:
    return f"hub-viz:spawn:{owner}/{server}"


def open_audience(owner: str, server: str) -> str:
    return f"hub-viz:open:{owner}/{server}"


def ensure_key_pair(private_path: Path) -> tuple[Path, Path]:
    """Create the service's key pair once (private key mode 0600); return both paths."""
    private_path = Path(private_path)
    public_path = private_path.with_suffix(".pub")
    if not private_path.exists():
        private_path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
    make_private(private_path)  # one copied in with a looser mode is made private again
    if not public_path.exists():
        public_path.write_text(public_key_pem(private_path.read_text()))
    return private_path, public_path


def public_key_pem(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


class Signer:
    """Signs spawn specs and open grants with the service's private key."""

    def __init__(self, private_pem: str):
        key = serialization.load_pem_private_key(private_pem.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise HubVizError(f"The signing key must be an Ed25519 key ({ALGORITHM}).")
        self._key = key

    def _sign(self, audience: str, claims: dict[str, Any], lifetime: float | None) -> str:
        now = int(time.time())
        payload = {**claims, "iss": ISSUER, "aud": audience, "iat": now}
        if lifetime is not None:
            payload["exp"] = now + int(lifetime)
        return jwt.encode(payload, self._key, algorithm=ALGORITHM)

    def sign_spec(
        self, owner: str, server: str, spec: dict[str, Any], lifetime: float = SPEC_SECONDS
    ) -> str:
        return self._sign(spawn_audience(owner, server), {"spec": spec}, lifetime)

    def grant(
        self,
        owner: str,
        server: str,
        viewer: str | None,
        lifetime: float = GRANT_SECONDS,
        embed: bool = False,
        page: bool = False,
    ) -> str:
        """A one-time pass for ``viewer`` (None: anonymous) to open ``owner/server``.

        ``embed`` marks a grant used inside another site's frame: the launcher's
        cookie must then be ``SameSite=None; Secure; Partitioned``. ``page`` marks the
        service's card capture: the launcher serves it the dashboard as a tab's page
        instead of sending it to the open page that frames it.
        """
        claims: dict[str, Any] = {"sub": viewer or "", "jti": secrets.token_urlsafe(12)}
        if embed:
            claims["embed"] = True
        if page:
            claims["page"] = True
        return self._sign(open_audience(owner, server), claims, lifetime)


class Verifier:
    """Checks tokens with the service's public key."""

    def __init__(self, public_pem: str):
        key = serialization.load_pem_public_key(public_pem.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise HubVizError(f"The verifying key must be an Ed25519 key ({ALGORITHM}).")
        self._key = key

    def _verify(self, token: str, audience: str, require_exp: bool) -> dict[str, Any]:
        options: Options = {"require": ["iss", "aud", "iat"] + (["exp"] if require_exp else [])}
        try:
            return jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=ISSUER,
                options=options,
                leeway=5,
            )
        except jwt.PyJWTError as e:
            raise SignatureError(
                "The link is invalid or has expired.", log_message=f"token refused: {e}"
            ) from None

    def spec(self, token: str, owner: str, server: str) -> dict[str, Any]:
        try:
            claims = self._verify(token, spawn_audience(owner, server), require_exp=True)
        except SignatureError as e:
            if "expired" in e.log_message:
                raise SignatureError(
                    "This start request has expired: open the dashboard again from the hub.",
                    log_message=e.log_message,
                ) from None
            raise
        spec = claims.get("spec")
        if not isinstance(spec, dict):
            raise SignatureError("The dashboard spec is malformed.")
        return spec

    def grant(self, token: str, owner: str, server: str) -> dict[str, Any]:
        return self._verify(token, open_audience(owner, server), require_exp=True)
