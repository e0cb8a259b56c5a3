"""The tool's LTI signing key: an RSA key in the state folder (0600), its key set, signing.

Deep Linking responses are JWTs the platform verifies against the key set the
hub serves at ``hub/lti13/jwks``; the service signs them with the same key file.
The ``kid`` is the key's RFC 7638 thumbprint, so a new key gets a new ``kid``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .filemodes import ensure_secret_file, make_private

ALGORITHM = "RS256"


def ensure_rsa_key(path: Path) -> Path:
    """Create the RSA key once (PEM, mode 0600); make an existing one private again."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
    make_private(path)
    return path


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


def key_set(path: str | Path | None) -> dict[str, Any]:
    """The JWKS document: the key file's public key, or no keys without one."""
    if not path or not Path(path).is_file():
        return {"keys": []}
    return {"keys": [public_jwk(_load(Path(path)))]}


def sign(claims: dict[str, Any], path: str | Path) -> str:
    """``claims`` as a JWT signed with the key file, its ``kid`` in the header."""
    key = _load(Path(path))
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": public_jwk(key)["kid"]})


def ensure_secret(path: Path) -> Path:
    """The secret the hub shows the service when asking about a deep link (created once, 0600)."""
    return ensure_secret_file(path, lambda: secrets.token_urlsafe(32))


__all__ = ["ALGORITHM", "ensure_rsa_key", "ensure_secret", "key_set", "public_jwk", "sign"]
