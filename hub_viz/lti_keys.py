"""The tool's LTI signing key: an RSA key in the state folder (0600), its key set, signing.

Deep Linking responses are JWTs the platform verifies against the key set the
hub serves at ``hub/lti13/jwks``; the service signs them with the same key file.
The ``kid`` is the key's RFC 7638 thumbprint, so a new key gets a new ``kid``.

Rotation (:func:`rotate`) never breaks a response in flight: the new key is
published at once but signs only after ``publish_delay`` (longer than the key
set's cache time, so platforms have seen it), and the old key stays published
until ``keep_previous`` after that (responses it signed still verify). Beside
the key file ``K.pem``: ``K.previous.pem`` (the old key) and
``K.rotation.json`` (``signs_from``, ``previous_until``: Unix times). With
``immediately`` (a leaked key), the new key signs at once and the old one is
gone from the key set.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .filemodes import ensure_secret_file, make_private

ALGORITHM = "RS256"
JWKS_MAX_AGE = 300  # seconds platforms may cache the key set (its Cache-Control)


def ensure_rsa_key(path: Path) -> Path:
    """Create the RSA key once (PEM, mode 0600); make an existing one private again."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(_new_pem())
    make_private(path)
    return path


def _new_pem(key: rsa.RSAPrivateKey | None = None) -> bytes:
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` at once (a private temporary file, then rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _previous(path: Path) -> Path:
    return path.with_name(path.stem + ".previous.pem")


def _rotation(path: Path) -> Path:
    return path.with_name(path.stem + ".rotation.json")


def _times(path: Path) -> tuple[float, float]:
    """(signs_from, previous_until) of the last rotation; (0, 0) without one."""
    try:
        data = json.loads(_rotation(path).read_text())
        return float(data.get("signs_from", 0)), float(data.get("previous_until", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0.0, 0.0


def rotate(
    path: str | Path,
    *,
    publish_delay: float = 2 * JWKS_MAX_AGE,
    keep_previous: float = 86400,
    immediately: bool = False,
    now: float | None = None,
) -> dict[str, Any]:
    """Make a new signing key; return its ``kid`` and when it signs / the old key goes.

    Raises ValueError while the last rotation's new key does not sign yet (a second
    rotation then would drop the key that signs), unless ``immediately``.
    """
    path = Path(path)
    now = time.time() if now is None else now
    signs_from, _ = _times(path)
    if not path.is_file():
        raise ValueError(f"{path} does not exist: the hub makes it when it starts.")
    if signs_from > now and not immediately:
        raise ValueError(
            "The last rotation's key does not sign yet (it signs in "
            f"{int(signs_from - now) + 1} seconds); rotate again after that, or "
            "rotate immediately (for a leaked key)."
        )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = _new_pem(key)
    if immediately:
        _write_private(_rotation(path), json.dumps({"signs_from": now}).encode())
        _previous(path).unlink(missing_ok=True)
        _write_private(path, pem)
        times = {"signs_from": now, "previous_until": now}
    else:
        # the old key first: until the new one is in place, both files hold the old key
        _write_private(_previous(path), path.read_bytes())
        times = {
            "signs_from": now + publish_delay,
            "previous_until": now + publish_delay + keep_previous,
        }
        _write_private(_rotation(path), json.dumps(times).encode())
        _write_private(path, pem)
    return {"kid": public_jwk(key)["kid"], **times}


def _published(path: Path, now: float) -> list[tuple[rsa.RSAPrivateKey, bool]]:
    """The keys the key set serves, each with whether it signs now."""
    signs_from, previous_until = _times(path)
    current = _load(path)
    previous = None
    if now < previous_until:
        try:
            previous = _load(_previous(path))
        except FileNotFoundError:
            previous = None
    waiting = previous is not None and now < signs_from
    keys = [(current, not waiting)]
    if previous is not None:
        keys.append((previous, waiting))
    return keys


def _load(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA private key.")
    return key


def public_jwk(key: rsa.RSAPrivateKey) -> dict[str, str]:
    """The public half as a JWK with ``kid`` (its thumbprint), ``alg`` and ``use``."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    members = json.dumps(
        {k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True
    )
    kid = base64.urlsafe_b64encode(hashlib.sha256(members.encode()).digest()).rstrip(b"=")
    return {
        "kty": "RSA",
        "n": jwk["n"],
        "e": jwk["e"],
        "kid": kid.decode(),
        "alg": ALGORITHM,
        "use": "sig",
    }


def key_set(path: str | Path | None, now: float | None = None) -> dict[str, Any]:
    """The JWKS document: the signing key and, after a rotation, the other published
    one; no keys without a key file."""
    if not path or not Path(path).is_file():
        return {"keys": []}
    keys = [public_jwk(k) for k, _ in _published(Path(path), now or time.time())]
    return {"keys": list({k["kid"]: k for k in keys}.values())}


def key_status(path: str | Path, now: float | None = None) -> dict[str, Any]:
    """For admins: the published keys' ``kid``, which one signs, and the rotation's times."""
    now = now or time.time()
    signs_from, previous_until = _times(Path(path))
    published = _published(Path(path), now)
    return {
        "keys": [{"kid": public_jwk(k)["kid"], "signs": signs} for k, signs in published],
        "signs_from": signs_from,
        "previous_until": previous_until if len(published) > 1 else 0,
    }


def sign(claims: dict[str, Any], path: str | Path, now: float | None = None) -> str:
    """``claims`` as a JWT signed with the key that signs now, its ``kid`` in the header."""
    key = next(k for k, signs in _published(Path(path), now or time.time()) if signs)
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": public_jwk(key)["kid"]})


def ensure_secret(path: Path) -> Path:
    """The secret the hub shows the service when asking about a deep link (created once, 0600)."""
    return ensure_secret_file(path, lambda: secrets.token_urlsafe(32))


__all__ = [
    "ALGORITHM",
    "JWKS_MAX_AGE",
    "ensure_rsa_key",
    "ensure_secret",
    "key_set",
    "key_status",
    "public_jwk",
    "rotate",
    "sign",
]
