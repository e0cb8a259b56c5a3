"""Signed spawn specs and open grants: keys on disk, round trips, and every refusal."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from hub_viz.errors import HubVizError
from hub_viz.signing import (
    ALGORITHM,
    GRANT_SECONDS,
    ISSUER,
    SPEC_SECONDS,
    SignatureError,
    Signer,
    Verifier,
    ensure_key_pair,
    open_audience,
    public_key_pem,
    spawn_audience,
)

pytestmark = pytest.mark.unit

SPEC = {
    "framework": "dash",
    "entry": "sales/app.py",
    "mode": "shared",
    "args": ["--x", "ü"],
    "source_owner": "alice",
    "git": {"url": "https://h.org/r.git", "ref": "main"},
}


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Signer, Verifier]:
    private, public = ensure_key_pair(tmp_path / "keys" / "signing.pem")
    return Signer(private.read_text()), Verifier(public.read_text())


@pytest.fixture
def other_keys(tmp_path: Path) -> tuple[Signer, Verifier]:
    private, public = ensure_key_pair(tmp_path / "other" / "signing.pem")
    return Signer(private.read_text()), Verifier(public.read_text())


# -- keys -------------------------------------------------------------------------------


def test_key_pair_is_created_private_and_once(tmp_path):
    private, public = ensure_key_pair(tmp_path / "state" / "deep" / "signing.pem")
    assert private == tmp_path / "state" / "deep" / "signing.pem"
    assert public == tmp_path / "state" / "deep" / "signing.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    pem = private.read_text()
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert public.read_text() == public_key_pem(pem)
    # a second call keeps both files
    assert ensure_key_pair(private) == (private, public)
    assert private.read_text() == pem


def test_missing_public_key_is_derived_again(tmp_path):
    private, public = ensure_key_pair(tmp_path / "signing.pem")
    text = public.read_text()
    public.unlink()
    ensure_key_pair(private)
    assert public.read_text() == text


def test_each_key_pair_is_new(tmp_path):
    a, _ = ensure_key_pair(tmp_path / "a.pem")
    b, _ = ensure_key_pair(tmp_path / "b.pem")
    assert a.read_text() != b.read_text()


# -- round trips --------------------------------------------------------------------------


def test_spec_round_trip(keys):
    signer, verifier = keys
    token = signer.sign_spec("bob", "sales-1234abcd", SPEC)
    assert verifier.spec(token, "bob", "sales-1234abcd") == SPEC
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (
        claims["aud"]
        == spawn_audience("bob", "sales-1234abcd")
        == "hub-viz:spawn:bob/sales-1234abcd"
    )
    # valid only while the server starts: a stored spec cannot restart it later
    assert claims["iss"] == ISSUER and claims["exp"] == claims["iat"] + SPEC_SECONDS
    assert jwt.get_unverified_header(token)["alg"] == ALGORITHM


def test_grant_round_trip(keys):
    signer, verifier = keys
    token = signer.grant("alice", "sales", "bob")
    claims = verifier.grant(token, "alice", "sales")
    assert claims["sub"] == "bob"
    assert claims["aud"] == open_audience("alice", "sales") == "hub-viz:open:alice/sales"
    assert claims["exp"] - claims["iat"] == GRANT_SECONDS
    assert len(claims["jti"]) >= 16
    anonymous = verifier.grant(signer.grant("alice", "sales", None), "alice", "sales")
    assert anonymous["sub"] == ""
    # every grant is unique, even for the same viewer and server
    assert signer.grant("alice", "sales", "bob") != token


# -- refusals -----------------------------------------------------------------------------


def refused(call, *args) -> SignatureError:
    with pytest.raises(SignatureError) as e:
        call(*args)
    assert isinstance(e.value, HubVizError)
    return e.value


def test_wrong_audience_is_refused(keys):
    signer, verifier = keys
    grant = signer.grant("alice", "sales", "bob")
    spec = signer.sign_spec("alice", "sales", SPEC)
    for owner, server in [("alice", "other"), ("bob", "sales"), ("alice", "sales/x")]:
        err = refused(verifier.grant, grant, owner, server)
        assert err.message == "The link is invalid or has expired."
        assert "token refused" in err.log_message
        refused(verifier.spec, spec, owner, server)
    # a grant is not a spec and a spec is not a grant
    refused(verifier.spec, grant, "alice", "sales")
    refused(verifier.grant, spec, "alice", "sales")


def test_expired_grant_is_refused(keys):
    signer, verifier = keys
    token = signer.grant("alice", "sales", "bob", lifetime=-60)
    err = refused(verifier.grant, token, "alice", "sales")
    assert "expired" in err.log_message.lower()
    # within the leeway of a few seconds it still counts
    assert verifier.grant(signer.grant("alice", "sales", "bob", lifetime=-2), "alice", "sales")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_tampered_tokens_are_refused(keys):
    signer, verifier = keys
    token = signer.sign_spec("bob", "sales", SPEC)
    header, payload, signature = token.split(".")
    claims = json.loads(unb64(payload))
    claims["spec"]["entry"] = "../../etc/passwd"
    forged = ".".join([header, b64(json.dumps(claims).encode()), signature])
    refused(verifier.spec, forged, "bob", "sales")
    # a flipped bit in the signature
    raw = bytearray(unb64(signature))
    raw[0] ^= 1
    refused(verifier.spec, ".".join([header, payload, b64(bytes(raw))]), "bob", "sales")
    # no signature at all, or "none" as the algorithm
    refused(verifier.spec, f"{header}.{payload}.", "bob", "sales")
    unsigned = jwt.encode(
        jwt.decode(token, options={"verify_signature": False}), None, algorithm="none"
    )
    refused(verifier.spec, unsigned, "bob", "sales")
    refused(verifier.spec, "not a token", "bob", "sales")


def test_a_token_of_another_key_is_refused(keys, other_keys):
    _, verifier = keys
    other_signer, other_verifier = other_keys
    spec = other_signer.sign_spec("bob", "sales", SPEC)
    grant = other_signer.grant("alice", "sales", "bob")
    assert other_verifier.spec(spec, "bob", "sales") == SPEC
    refused(verifier.spec, spec, "bob", "sales")
    refused(verifier.grant, grant, "alice", "sales")


def test_a_spec_that_is_not_an_object_is_refused(tmp_path, keys):
    signer, verifier = keys
    private = (tmp_path / "keys" / "signing.pem").read_text()
    key = serialization.load_pem_private_key(private.encode(), password=None)
    token = jwt.encode(
        {"spec": ["x"], "iss": ISSUER, "aud": spawn_audience("bob", "s"), "iat": 0, "exp": 2**40},
        key,
        algorithm=ALGORITHM,
    )
    assert refused(verifier.spec, token, "bob", "s").message == "The dashboard spec is malformed."
    # a token with another issuer, or without one
    for claims in ({"iss": "someone", "iat": 0}, {"iat": 0}):
        token = jwt.encode(
            {"spec": {}, "aud": spawn_audience("bob", "s"), **claims}, key, algorithm=ALGORITHM
        )
        refused(verifier.spec, token, "bob", "s")
    # a grant without an expiry
    token = jwt.encode(
        {"sub": "bob", "iss": ISSUER, "aud": open_audience("bob", "s"), "iat": 0},
        key,
        algorithm=ALGORITHM,
    )
    refused(verifier.grant, token, "bob", "s")


def test_a_spawn_spec_expires_so_a_stored_one_cannot_restart_a_server_later(keys):
    signer, verifier = keys
    stale = signer.sign_spec("bob", "sales", SPEC, lifetime=-30)
    with pytest.raises(SignatureError) as e:
        verifier.spec(stale, "bob", "sales")
    assert e.value.message == (
        "This start request has expired: open the dashboard again from the hub."
    )
    fresh = signer.sign_spec("bob", "sales", SPEC)
    assert verifier.spec(fresh, "bob", "sales") == SPEC


def test_claims_are_checked_as_pyjwt_checks_them(tmp_path, keys):
    """Times that are not numbers, tokens from the future, audiences as a list."""
    _, verifier = keys
    private = (tmp_path / "keys" / "signing.pem").read_text()
    key = serialization.load_pem_private_key(private.encode(), password=None)
    aud = open_audience("bob", "s")

    def token(**claims) -> str:
        return jwt.encode({"iss": ISSUER, "aud": aud, "iat": 0, **claims}, key, algorithm=ALGORITHM)

    assert verifier.grant(token(exp=2**40, aud=["x", aud]), "bob", "s")["exp"] == 2**40
    for bad in (
        {"exp": "2099"},
        {"exp": True},
        {"exp": 2**40, "iat": 2**40},  # issued in the future
        {"exp": 2**40, "nbf": 2**40},
        {"exp": 2**40, "aud": ["x"]},
    ):
        err = refused(verifier.grant, token(**bad), "bob", "s")
        assert err.log_message.startswith("token refused: ")
    # another algorithm's header over a valid EdDSA signature
    header, payload, signature = token(exp=2**40).split(".")
    hs = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    refused(verifier.grant, f"{hs}.{payload}.{signature}", "bob", "s")
    # base64 that is not url-safe, padded, or one part too many
    refused(verifier.grant, f"{header}.{payload}.{signature}==", "bob", "s")
    refused(verifier.grant, f"{header}.{payload}.{signature}.x", "bob", "s")


def test_a_public_key_that_is_not_ed25519_is_refused(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import rsa

    rsa_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    for pem in (rsa_pem, "", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"):
        with pytest.raises(ValueError):
            Verifier(pem)


def test_a_launcher_verifies_grants_without_cryptography_or_pyjwt(keys, tmp_path):
    """The launcher's path (grants) imports PyNaCl only: ``cryptography`` costs ~8 MB."""
    import subprocess
    import sys

    signer, _ = keys
    public = (tmp_path / "keys" / "signing.pub").read_text()
    code = (
        "import sys\n"
        "import hub_viz.launcher.app\n"
        "from hub_viz.launcher.grants import GrantKeeper\n"
        "keeper = GrantKeeper(sys.argv[1], '/user/alice/sales/', 'alice', 'sales')\n"
        "assert keeper.redeem(sys.argv[2])['sub'] == 'bob'\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('cryptography', 'jwt', 'sqlalchemy', 'jupyterhub.services')))\n"
    )
    grant = signer.grant("alice", "sales", "bob")
    out = subprocess.run(
        [sys.executable, "-c", code, public, grant], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout
