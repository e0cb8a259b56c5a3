"""Embed links and viewer tickets as tokens, and the origins a dashboard may be framed by.

The embed secret signs both kinds of token (HS256 only); a link names its
grant, a ticket names its grant and its viewer. The live origins are those of
grants neither revoked nor expired, read from a real migrated store.
"""

from __future__ import annotations

import datetime as dt
import time

import jwt
import pytest

from hub_viz.service.embeds import (
    ISSUER,
    VIEWER_ISSUER,
    EmbedLoginNeeded,
    EmbedRefused,
    EmbedTokens,
    live_origins,
)
from hub_viz.service.store import Dashboard, EmbedGrant, Store, utcnow

pytestmark = pytest.mark.unit

SECRET = b"s" * 64


@pytest.fixture
def tokens() -> EmbedTokens:
    return EmbedTokens(SECRET)


def grant(gid: int, expires: dt.datetime | None = None) -> EmbedGrant:
    return EmbedGrant(id=gid, dashboard_id=1, origins=["https://lms.example.edu"], expires=expires)


def test_a_link_names_its_grant(tokens: EmbedTokens) -> None:
    assert tokens.grant_id(tokens.encode(grant(7))) == 7
    later = utcnow() + dt.timedelta(days=1)
    assert tokens.grant_id(tokens.encode(grant(8, expires=later))) == 8


def test_an_expired_link_is_refused(tokens: EmbedTokens) -> None:
    token = tokens.encode(grant(7, expires=utcnow() - dt.timedelta(minutes=1)))
    with pytest.raises(EmbedRefused, match="has expired"):
        tokens.grant_id(token)


@pytest.mark.parametrize(
    "key, algorithm",
    [
        (b"x" * 64, "HS256"),  # another hub's secret
        (SECRET, "HS512"),  # the right secret, an algorithm the service does not use
        (SECRET, "HS384"),
    ],
    ids=["another-secret", "hs512", "hs384"],
)
def test_a_link_signed_otherwise_is_refused(
    tokens: EmbedTokens, key: bytes, algorithm: str
) -> None:
    token = jwt.encode({"iss": ISSUER, "gid": 7}, key, algorithm=algorithm)
    with pytest.raises(EmbedRefused, match="not valid"):
        tokens.grant_id(token)


def test_an_unsigned_link_is_refused(tokens: EmbedTokens) -> None:
    token = jwt.encode({"iss": ISSUER, "gid": 7}, None, algorithm="none")
    with pytest.raises(EmbedRefused, match="not valid"):
        tokens.grant_id(token)


def test_a_viewer_ticket_is_not_a_link(tokens: EmbedTokens) -> None:
    with pytest.raises(EmbedRefused, match="not valid"):
        tokens.grant_id(tokens.viewer_ticket(7, "student"))


def test_a_ticket_names_its_viewer_for_its_link_only(tokens: EmbedTokens) -> None:
    ticket = tokens.viewer_ticket(7, "student")
    assert tokens.ticket_viewer(ticket, 7) == "student"
    with pytest.raises(EmbedLoginNeeded, match="Log in to the hub"):
        tokens.ticket_viewer(ticket, 8)


def test_a_link_is_not_a_ticket(tokens: EmbedTokens) -> None:
    with pytest.raises(EmbedLoginNeeded, match="Log in to the hub"):
        tokens.ticket_viewer(tokens.encode(grant(7)), 7)


def test_forged_or_expired_tickets_are_refused(tokens: EmbedTokens) -> None:
    claims = {"iss": VIEWER_ISSUER, "gid": 7, "sub": "student", "exp": int(time.time()) + 600}
    for key, algorithm in ((b"y" * 64, "HS256"), (SECRET, "HS512")):
        with pytest.raises(EmbedLoginNeeded, match="Log in to the hub"):
            tokens.ticket_viewer(jwt.encode(claims, key, algorithm=algorithm), 7)
    expired = jwt.encode({**claims, "exp": int(time.time()) - 60}, SECRET, algorithm="HS256")
    with pytest.raises(EmbedLoginNeeded, match="expired"):
        tokens.ticket_viewer(expired, 7)


def test_only_live_grants_give_their_origins(store: Store) -> None:
    now = utcnow()
    with store.session() as db:
        d = Dashboard(owner="alice", slug="lab", title="Lab", framework="dash", entry="app.py")
        db.add(d)
        db.commit()
        for origin, expires, revoked in (
            ("https://live.example.edu", None, None),
            ("https://later.example.edu", now + dt.timedelta(days=1), None),
            ("https://expired.example.edu", now - dt.timedelta(seconds=1), None),
            ("https://revoked.example.edu", None, now),
        ):
            db.add(
                EmbedGrant(dashboard_id=d.id, origins=[origin], expires=expires, revoked=revoked)
            )
        db.commit()
        assert live_origins(db, d.id) == ["https://later.example.edu", "https://live.example.edu"]
        assert live_origins(db, d.id + 1) == []
