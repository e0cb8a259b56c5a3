"""The service's REST API fuzzed with schemathesis against ``openapi.yaml``.

A hub of its own (nothing here disturbs the session hub) with a few
dashboards published at start-up. Every operation of the description is
called with generated inputs, valid and (schemathesis's negative mode)
invalid, plus its coverage phase's boundary values and undeclared methods:
once as an ordinary user with a hub API token, once anonymously, and
``api/lti/can-view`` once more the way the hub's LTI login calls it (directly,
with the shared secret). Generated path parameters are now and then swapped
for the seeded dashboards and embed link, and publish bodies for ones that
name a real entry, so the fuzzer gets past the 404s and 400s into the
handlers behind them.

Every response must be below 500, with a documented status code, content
type, headers and body schema; undeclared methods answer 405 with ``Allow``;
operations that need a login refuse without one; and every error is JSON
``{status, message}`` with a sentence a person understands.

Deterministic (derandomized, fixed seed, no example database) and bounded
for CI: ``MAX_EXAMPLES`` generated cases per operation and pass, about 3,200
requests and 80 s for the whole module on 2 cores. ``HUB_VIZ_FUZZ_EXAMPLES=200``
fuzzes deeper locally (about 9,000 requests, 3 minutes). The counts are
printed at the end (``-s``). Bodies over the size limits are checked below.
"""

from __future__ import annotations

import collections
import json
import os
import re
import socket
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from hub_viz.service.base import MAX_BODY, MAX_READ
from hub_viz.service.dashboards import PUBLIC

from ..conftest import BROWSER_UA, SERVICE, Hub, start_hub, stop_hub
from .test_api import assert_error, assert_sentence

pytestmark = pytest.mark.hub

SPEC = Path(__file__).resolve().parents[2] / "hub_viz" / "service" / "openapi.yaml"
MAX_EXAMPLES = int(os.environ.get("HUB_VIZ_FUZZ_EXAMPLES", "40"))
SEED = 20261122
CAN_VIEW = "/api/lti/can-view"

AUTHOR = "fuzz-author"  # publishes what the fuzzer may see (or not)
FUZZER = "fuzz-user"  # the ordinary user the fuzzer calls as; owns one dashboard
DASH = {"framework": "dash", "entry": "dash/app.py"}
SEEDS = [
    {
        "owner": AUTHOR,
        "slug": "board-all",
        "title": "Every user's board",
        "visibility": "all",
        **DASH,
    },
    {
        "owner": AUTHOR,
        "slug": "board-public",
        "title": "Public board",
        "visibility": PUBLIC,
        **DASH,
    },
    {"owner": AUTHOR, "slug": "board-private", "title": "Private board", **DASH},
    {
        "owner": AUTHOR,
        "slug": "board-pv",
        "title": "Per-viewer board",
        "visibility": "all",
        "mode": "per-viewer",
        **DASH,
    },
    {"owner": FUZZER, "slug": "mine", "title": "The fuzzer's own board", **DASH},
]
# Path parameters drawn besides generated ones (the embed link's id is added at start).
KNOWN: dict[str, list[Any]] = {"dashboard": [(s["owner"], s["slug"]) for s in SEEDS], "id": []}
# Requests per pass: "requests" in all, and per operation label.
FIGURES: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)

schema = schemathesis.openapi.from_path(
    SPEC,
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {
                "mode": "all",
                "deterministic": True,
                # the tests send the credentials themselves: a user's token, or none
                "with-security-parameters": False,
            },
        }
    ),
)


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    """Now and then a seeded dashboard (and the embed link) instead of generated names."""
    if not path_parameters or "owner" not in path_parameters:
        return st.just(path_parameters)

    def known(pair: tuple[str, str], grant: Any) -> dict[str, Any]:
        swapped = {**path_parameters, "owner": pair[0], "slug": pair[1]}
        if "id" in swapped and grant is not None:
            swapped["id"] = grant
        return swapped

    grants = st.sampled_from(KNOWN["id"]) if KNOWN["id"] else st.none()
    return st.one_of(
        st.just(path_parameters), st.builds(known, st.sampled_from(KNOWN["dashboard"]), grants)
    )


@schema.hook
def flatmap_body(context: Any, body: Any) -> Any:
    """Publish and update bodies now and then name a real entry, so that some get through."""
    label = context.operation.label if context.operation else ""
    if not isinstance(body, dict) or label not in (
        "POST /api/dashboards",
        "PATCH /api/dashboards/{owner}/{slug}",
    ):
        return st.just(body)
    local = {k: v for k, v in body.items() if k != "git"}
    plain = {k: v for k, v in body.items() if k in ("slug", "description", "visibility", "mode")}
    return st.sampled_from([body, {**local, **DASH}, {"title": "Fuzzed board", **plain, **DASH}])


@pytest.fixture(scope="module")
def fuzz_hub(tmp_path_factory: pytest.TempPathFactory) -> Hub:
    # LTI 1.1 login on, so that the service answers api/lti/can-view to the hub;
    # the test config keeps the password login for everything else.
    lti = {"version": "1.1", "consumers": {"fuzz-key": "fuzz-secret"}, "auth_state": False}
    hub = start_hub(
        tmp_path_factory.mktemp("fuzz-hub"), publish=SEEDS, configure_kwargs={"lti": lti}
    )
    for name in (AUTHOR, FUZZER):
        hub.ensure_user(name)
    r = hub.svc(
        "POST",
        f"dashboards/{FUZZER}/mine/embeds",
        FUZZER,
        json={"origins": ["https://lms.example.edu"]},
    )
    assert r.status_code == 201, r.text
    KNOWN["id"] = [r.json()["id"]]
    yield hub
    stop_hub(hub)
    report = {
        who: {"operations": len(counts) - 1, "requests": counts["requests"]}
        for who, counts in sorted(FIGURES.items())
    }
    print("\nfuzz figures:", json.dumps(report))


def readable_error(ctx: Any, response: Any, case: Any) -> None:
    """Every error is JSON ``{status, message}`` and the message is a sentence."""
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), (
        f"{response.status_code} answered {content_type or 'no content type'}, not JSON"
    )
    body = json.loads(response.content)
    assert set(body) == {"status", "message"}, body
    assert body["status"] == response.status_code, body
    assert_sentence(body["message"])


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    unsupported_method,
    ignored_auth,
]


def call(case: Any, who: str, base_url: str, headers: dict[str, str]) -> Any:
    response = case.call(base_url=base_url, headers=headers, timeout=60, allow_redirects=False)
    FIGURES[who]["requests"] += 1
    FIGURES[who][case.operation.label] += 1
    case.validate_response(response, checks=CHECKS, additional_checks=[readable_error])
    return response


def fuzz(hub: Hub, case: Any, who: str) -> None:
    if who == "hub":
        fuzz_as_hub(hub, case)
        return
    headers = {"User-Agent": BROWSER_UA}
    if who == "user":
        headers["Authorization"] = f"token {hub.user_token(FUZZER)}"
    response = call(case, who, hub.service_url.rstrip("/"), headers)
    if case.method == "DELETE" and response.status_code == 204:
        restore(hub, case)


def restore(hub: Hub, case: Any) -> None:
    """Re-publish a seeded dashboard the fuzzer unpublished (later cases need it)."""
    owner, slug = case.path_parameters.get("owner"), case.path_parameters.get("slug")
    for seed in SEEDS:
        if (seed["owner"], seed["slug"]) == (owner, slug):
            body = {k: v for k, v in seed.items() if k != "owner"}
            r = hub.svc("POST", "dashboards", owner, json=body)
            assert r.status_code in (201, 409), r.text


FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@schema.parametrize()
@FUZZ
def test_fuzz_as_user(case: Any, fuzz_hub: Hub) -> None:
    fuzz(fuzz_hub, case, "user")


@schema.parametrize()
@FUZZ
def test_fuzz_anonymous(case: Any, fuzz_hub: Hub) -> None:
    fuzz(fuzz_hub, case, "anonymous")


def direct(hub: Hub) -> tuple[int, str]:
    """The service's own port (the hub calls it there, not through the proxy) and LTI secret."""
    state = hub.log.parent
    port = re.search(r"service_port=(\d+)", (state / "jupyterhub_config.py").read_text())[1]
    return int(port), (state / "hub_viz_lti_secret").read_text().strip()


def fuzz_as_hub(hub: Hub, case: Any) -> None:
    """The LTI login's question, straight to the service with the shared secret."""
    port, secret = direct(hub)
    call(
        case,
        "hub",
        f"http://127.0.0.1:{port}{SERVICE.rstrip('/')}",
        {"Authorization": f"Bearer {secret}"},
    )


AS_THE_HUB = schema.include(path=CAN_VIEW)


@AS_THE_HUB.parametrize()
@FUZZ
def test_fuzz_can_view_as_the_hub(case: Any, fuzz_hub: Hub) -> None:
    fuzz_as_hub(fuzz_hub, case)


def test_bodies_over_the_limit_answer_413(fuzz_hub: Hub) -> None:
    """Every operation that reads a body refuses one over 256 KB, as its description says."""
    big = {"title": "x" * MAX_BODY}
    for method, path, label in (
        ("POST", "dashboards", "/api/dashboards"),
        ("PATCH", f"dashboards/{FUZZER}/mine", "/api/dashboards/{owner}/{slug}"),
        ("POST", f"dashboards/{FUZZER}/mine/embeds", "/api/dashboards/{owner}/{slug}/embeds"),
    ):
        assert_error(fuzz_hub.svc(method, path, FUZZER, json=big), 413, "256 KB")
        assert "413" in schema.raw_schema["paths"][label][method.lower()]["responses"]
    port, secret = direct(fuzz_hub)
    r = requests.post(
        f"http://127.0.0.1:{port}{SERVICE}api/lti/can-view",
        json=big,
        headers={"Authorization": f"Bearer {secret}"},
        timeout=30,
    )
    assert_error(r, 413, "256 KB")
    assert "413" in schema.raw_schema["paths"][CAN_VIEW]["post"]["responses"]


def test_the_service_never_reads_a_body_over_a_megabyte(fuzz_hub: Hub) -> None:
    """Announcing a bigger body ends the connection before any of it is read (not 100 MB)."""
    port, _ = direct(fuzz_hub)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(
            f"POST {SERVICE}api/dashboards HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {MAX_READ + 1}\r\n\r\n".encode()
        )
        answer = conn.recv(4096)  # sent at once: the body is never awaited
        assert answer.startswith(b"HTTP/1.1 400"), answer
        assert conn.recv(4096) == b""  # and the connection is closed
    assert fuzz_hub.svc("GET", "openapi.yaml", None).status_code == 200


def short_pass(hub: Hub, who: str) -> None:
    """One generated case per operation, as ``who``: the pass of a test run without the
    fuzz passes before it."""
    for result in (AS_THE_HUB if who == "hub" else schema).get_all_operations():

        @settings(FUZZ, max_examples=1, phases=[Phase.generate])
        @given(case=result.ok().as_strategy())
        def one(case: Any) -> None:
            fuzz(hub, case, who)

        one()


def test_every_operation_was_fuzzed(fuzz_hub: Hub) -> None:
    """Each fuzz pass (the ones above, or run alone a short one of its own) reached
    every operation of the description."""
    operations = {
        f"{method.upper()} {path}"
        for path, item in schema.raw_schema["paths"].items()
        for method in item
        if method != "parameters"
    }
    expected = {"user": operations, "anonymous": operations, "hub": {f"POST {CAN_VIEW}"}}
    for who, reached in expected.items():
        if not FIGURES.get(who):
            short_pass(fuzz_hub, who)
        assert set(FIGURES[who]) - {"requests"} == reached, who
