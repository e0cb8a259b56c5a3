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

Signing (the service) uses PyJWT and ``cryptography``, imported when a key is
made or used. Verifying (every launcher, the spawner) needs only PyNaCl
(libsodium): ``cryptography`` costs a dashboard instance about 8 MB of memory,
PyNaCl about 1 MB. A token is a compact JWS (``EdDSA``, RFC 8037).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from .errors import HubVizError
from .filemodes import make_private

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
LEEWAY = 5  # seconds of clock difference allowed on exp, iat and nbf
# DER of an Ed25519 SubjectPublicKeyInfo (RFC 8410) before its 32 key bytes
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


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
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

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
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


class Signer:
    """Signs spawn specs and open grants with the service's private key."""

    def __init__(self, private_pem: str):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        key = serialization.load_pem_private_key(private_pem.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise HubVizError(f"The signing key must be an Ed25519 key ({ALGORITHM}).")
        self._key = key

    def _sign(self, audience: str, claims: dict[str, Any], lifetime: float | None) -> str:
        import jwt

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


class TokenRefused(ValueError):
    """Why a token does not verify (for the log only)."""


def ed25519_public_key(public_pem: str) -> bytes:
    """The 32 key bytes of an Ed25519 public key in PEM (SubjectPublicKeyInfo)."""
    lines = [line.strip() for line in public_pem.strip().splitlines()]
    if len(lines) < 3 or lines[0] != "-----BEGIN PUBLIC KEY-----":
        raise ValueError("not a PEM public key")
    if lines[-1] != "-----END PUBLIC KEY-----":
        raise ValueError("not a PEM public key")
    der = base64.b64decode("".join(lines[1:-1]), validate=True)
    if len(der) != 44 or not der.startswith(ED25519_SPKI_PREFIX):
        raise ValueError("not an Ed25519 public key")
    return der[len(ED25519_SPKI_PREFIX) :]


def _b64url(part: str) -> bytes:
    """Unpadded base64url (RFC 7515), strictly."""
    if "=" in part:
        raise TokenRefused("a part is padded")
    try:
        return base64.b64decode(part + "=" * (-len(part) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise TokenRefused("a part is not base64url") from None


def _number(claims: dict[str, Any], name: str) -> float:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TokenRefused(f"the {name} claim is not a number")
    return float(value)


def check_claims(claims: dict[str, Any], audience: str, require_exp: bool, now: float) -> None:
    """The registered claims as PyJWT checks them: issuer, audience, times (with leeway)."""
    for name in ("iss", "aud", "iat", *(("exp",) if require_exp else ())):
        if name not in claims:
            raise TokenRefused(f"the token has no {name} claim")
    if claims["iss"] != ISSUER:
        raise TokenRefused("the issuer is not hub-viz")
    aud = claims["aud"]
    if not (aud == audience or isinstance(aud, list) and audience in aud):
        raise TokenRefused("the token is for another audience")
    if _number(claims, "iat") > now + LEEWAY:
        raise TokenRefused("the token is not yet valid (iat)")
    if "nbf" in claims and _number(claims, "nbf") > now + LEEWAY:
        raise TokenRefused("the token is not yet valid (nbf)")
    if "exp" in claims and _number(claims, "exp") <= now - LEEWAY:
        raise TokenRefused("the token has expired")


class Verifier:
    """Checks tokens with the service's public key (PyNaCl; see the module's note)."""

    def __init__(self, public_pem: str):
        from nacl.signing import VerifyKey

        self._key = VerifyKey(ed25519_public_key(public_pem))

    def claims(self, token: str) -> dict[str, Any]:
        """The claims of a compact JWS signed with this key (``EdDSA``), unchecked."""
        from nacl.exceptions import BadSignatureError

        parts = token.split(".")
        if len(parts) != 3:
            raise TokenRefused("not a compact JWS")
        try:
            header = json.loads(_b64url(parts[0]))
            payload = _b64url(parts[1])
        except (ValueError, UnicodeDecodeError):
            raise TokenRefused("the header is not JSON") from None
        if not isinstance(header, dict) or header.get("alg") != ALGORITHM or "crit" in header:
            raise TokenRefused("the algorithm is not EdDSA")
        signature = _b64url(parts[2])
        if len(signature) != 64:
            raise TokenRefused("the signature is malformed")
        try:
            self._key.verify(f"{parts[0]}.{parts[1]}".encode(), signature)
        except BadSignatureError:
            raise TokenRefused("the signature does not verify") from None
        try:
            claims = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            raise TokenRefused("the payload is not JSON") from None
        if not isinstance(claims, dict):
            raise TokenRefused("the payload is not an object")
        return claims

    def _verify(self, token: str, audience: str, require_exp: bool) -> dict[str, Any]:
        try:
            claims = self.claims(token)
            check_claims(claims, audience, require_exp, time.time())
        except TokenRefused as e:
            raise SignatureError(
                "The link is invalid or has expired.", log_message=f"token refused: {e}"
            ) from None
        return claims

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
