"""The API half of the Kubernetes test double: an in-memory object store and its HTTP API.

Serves ``/api/v1/namespaces/{ns}/{plural}[/{name}]`` for pods, services and
persistentvolumeclaims (create, read, delete, list, watch) and events (read,
list, watch), ``/api/v1/{plural}`` (all namespaces, list and watch) and
``GET .../pods/{name}/log?container=``. Any namespace exists. Replies are JSON
as a real API server writes them: typed objects with ``metadata.uid``,
``resourceVersion`` (one global counter) and ``creationTimestamp``; lists
``{kind: PodList, metadata: {resourceVersion}, items}`` whose items carry no
kind/apiVersion; errors as ``Status`` objects (404 NotFound, 409 AlreadyExists,
422 Invalid, 400 BadRequest, 405 MethodNotAllowed).

Creates are validated like an API server would: the JSON schema of the
Kubernetes version in :data:`K8S_VERSION` (kubernetes-validate; an unknown
field only adds a ``Warning`` header, as with ``fieldValidation=Warn``), object
and container names, label keys and values (63 characters!). Defaults are filled
in (``restartPolicy: Always``, ``terminationGracePeriodSeconds: 30``,
``imagePullPolicy``, a service's ``clusterIP``); a PVC is ``Bound`` at once.

Watches (``watch=true``) stream ``{"type", "object"}`` lines: with no
``resourceVersion`` or ``"0"``, ADDED for every matching object first; then every
change after it (the whole history is kept in memory, so any version is recent
enough until ``POST /_double/compact``; an older one then gets an ERROR event
with a 410 ``Expired`` Status); the stream ends after ``timeoutSeconds``
(default 1800). Label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``,
``a in (x,y)``, ``a notin (x)``; field selectors ``path=value``/``!=`` on the
fields Kubernetes allows for the kind (see :data:`FIELDS`).
"""

from __future__ import annotations

import asyncio
import bisect
import copy
import json
import re
import secrets
import uuid
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.iostream import StreamClosedError
from tornado.netutil import bind_sockets

from .kubelet import Kubelet, now

K8S_VERSION = "1.33"
KINDS = {
    "pods": "Pod",
    "services": "Service",
    "persistentvolumeclaims": "PersistentVolumeClaim",
    "events": "Event",
}
CREATABLE = ("pods", "services", "persistentvolumeclaims")
_META = ("metadata.name", "metadata.namespace")
FIELDS = {
    "pods": (
        *_META,
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.phase",
        "status.podIP",
    ),
    "events": (
        *_META,
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "type",
    ),
    "services": _META,
    "persistentvolumeclaims": _META,
}
DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
LABEL_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"


class ApiError(web.HTTPError):
    """An error reply: a Kubernetes ``Status`` object."""

    def __init__(self, code: int, reason: str, message: str, **details: Any) -> None:
        super().__init__(code)
        self.status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "details": details,
            "code": code,
        }


def not_found(plural: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{plural} "{name}" not found', name=name, kind=plural)


@dataclass
class Change:
    rv: int
    plural: str
    namespace: str
    type: str
    object: dict


class Store:
    """Objects by (plural, namespace, name), and every change to them, in order."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.history: list[Change] = []
        self.rv = 0
        self.compacted = 0
        self.manifests: list[dict] = []  # every POSTed body, as received
        self.changed = asyncio.Event()  # replaced after each change; watchers wait on it

    def get(self, plural: str, namespace: str, name: str) -> dict | None:
        return self.objects.get((plural, namespace, name))

    def list(self, plural: str, namespace: str | None, labels: str = "", fields: str = "") -> list:
        match = selector(plural, labels, fields)
        return [
            obj
            for (p, ns, _), obj in self.objects.items()
            if p == plural and namespace in (None, ns) and match(obj)
        ]

    def create(self, plural: str, obj: dict) -> None:
        meta = obj["metadata"]
        key = (plural, meta["namespace"], meta["name"])
        if key in self.objects:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{plural} "{meta["name"]}" already exists',
                name=meta["name"],
                kind=plural,
            )
        meta["creationTimestamp"] = now()
        self.objects[key] = obj
        self._record(plural, "ADDED", obj)

    def modified(self, plural: str, obj: dict) -> None:
        self._record(plural, "MODIFIED", obj)

    def remove(self, plural: str, obj: dict) -> None:
        del self.objects[(plural, obj["metadata"]["namespace"], obj["metadata"]["name"])]
        self._record(plural, "DELETED", obj)

    def _record(self, plural: str, type_: str, obj: dict) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        ns = obj["metadata"]["namespace"]
        self.history.append(Change(self.rv, plural, ns, type_, copy.deepcopy(obj)))
        self.notify()

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def since(self, rv: int) -> list[Change]:
        return self.history[bisect.bisect_right(self.history, rv, key=lambda c: c.rv) :]

    def compact(self) -> None:
        self.compacted, self.history = self.rv, []


def selector(plural: str, labels: str, fields: str):
    """A predicate for objects from a labelSelector and a fieldSelector string."""
    tests = []
    for term in filter(str.strip, re.split(r",(?![^(]*\))", labels)):
        key = r"([-\w./]+)"
        if m := re.fullmatch(rf"\s*{key}\s*(==|=|!=)\s*([-\w.]*)\s*", term):
            tests.append((m[1], m[2].replace("==", "="), {m[3]}))
        elif m := re.fullmatch(rf"\s*{key}\s+(in|notin)\s+\(([^)]*)\)\s*", term):
            tests.append((m[1], m[2], {v.strip() for v in m[3].split(",")}))
        elif m := re.fullmatch(rf"\s*(!?){key}\s*", term):
            tests.append((m[2], m[1] or "exists", set()))
        else:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {term!r}")
    paths = []
    for term in filter(None, fields.split(",")):
        m = re.fullmatch(r"([\w.]+)(==|=|!=)(.*)", term)
        if not m or m[1] not in FIELDS[plural]:
            raise ApiError(400, "BadRequest", f'"{term}" is not a known field selector')
        paths.append((m[1].split("."), m[2] == "!=", m[3]))

    def match(obj: dict) -> bool:
        have = obj["metadata"].get("labels") or {}
        for key, op, values in tests:
            ok = {
                "=": have.get(key) in values,
                "!=": have.get(key) not in values,
                "in": have.get(key) in values,
                "notin": have.get(key) not in values,
                "exists": key in have,
                "!": key not in have,
            }[op]
            if not ok:
                return False
        for path, negate, value in paths:
            found = reduce(lambda d, k: d.get(k) if isinstance(d, dict) else None, path, obj)
            if (str(found if found is not None else "") == value) == negate:
                return False
        return True

    return match


def invalid(plural: str, body: dict) -> list[str]:
    """What a real API server would refuse in a create (a useful subset)."""
    errors = []
    meta = body["metadata"]
    name = meta.get("name") or ""
    if plural == "services":
        ok = len(name) <= 63 and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name)
    else:
        ok = len(name) <= 253 and re.fullmatch(rf"{DNS_LABEL}(\.{DNS_LABEL})*", name)
    if not ok:
        errors.append(f'metadata.name: Invalid value: "{name}": must be a lowercase DNS name')

    def bad_key(key: str) -> bool:
        prefix, _, rest = key.rpartition("/")
        return not (
            len(rest) <= 63
            and re.fullmatch(LABEL_NAME, rest)
            and (not prefix or re.fullmatch(rf"{DNS_LABEL}(\.{DNS_LABEL})*", prefix))
        )

    for key, value in (meta.get("labels") or {}).items():
        if bad_key(key) or not (
            isinstance(value, str) and len(value) <= 63 and re.fullmatch(f"({LABEL_NAME})?", value)
        ):
            errors.append(
                f'metadata.labels: Invalid value: "{key}: {value}": a label key and '
                "value must be at most 63 characters of [A-Za-z0-9._-]"
            )
    errors += [
        f'metadata.annotations: Invalid value: "{key}"'
        for key in meta.get("annotations") or {}
        if bad_key(key)
    ]
    spec = body.get("spec") or {}
    if plural == "pods":
        containers = (spec.get("initContainers") or []) + (spec.get("containers") or [])
        volumes = {v.get("name") for v in spec.get("volumes") or []}
        names = [c.get("name") or "" for c in containers]
        errors += [
            f'spec.containers: Invalid value: "{n}": must be a unique DNS label'
            for i, n in enumerate(names)
            if n in names[:i] or not (len(n) <= 63 and re.fullmatch(DNS_LABEL, n))
        ]
        errors += [
            f'spec.containers.volumeMounts.name: Not found: "{m.get("name")}"'
            for c in containers
            for m in c.get("volumeMounts") or []
            if m.get("name") not in volumes
        ]
    try:
        kubernetes_validate.validate(body, K8S_VERSION)
    except kubernetes_validate.ValidationError as e:
        errors.append(f"{'.'.join(map(str, e.path))}: {e.message}")
    return errors


def set_defaults(plural: str, body: dict, store: Store) -> None:
    spec = body.setdefault("spec", {})
    if plural == "pods":
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        for c in (spec.get("initContainers") or []) + spec["containers"]:
            latest = ":" not in c["image"].rsplit("/", 1)[-1] or c["image"].endswith(":latest")
            c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        body["status"] = {"phase": "Pending"}
    elif plural == "services":
        spec.setdefault("type", "ClusterIP")
        n = sum(p == "services" for p, _, _ in store.objects) + 10
        spec.setdefault("clusterIP", f"10.96.{n // 250}.{n % 250 + 1}")
        spec["clusterIPs"] = [spec["clusterIP"]]
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
        body["status"] = {"loadBalancer": {}}
    elif plural == "persistentvolumeclaims":
        spec.setdefault("storageClassName", "standard")
        spec.setdefault("volumeMode", "Filesystem")
        spec["volumeName"] = "pvc-" + body["metadata"]["uid"]
        storage = (spec.get("resources") or {}).get("requests", {}).get("storage", "1Gi")
        body["status"] = {
            "phase": "Bound",
            "accessModes": spec.get("accessModes", []),
            "capacity": {"storage": storage},
        }


class ApiHandler(web.RequestHandler):
    def initialize(self, store: Store, kubelet: Kubelet) -> None:
        self.store, self.kubelet, self.closed = store, kubelet, False

    def send(self, obj: Any, code: int = 200) -> None:
        self.set_status(code)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(obj))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        if not isinstance(error, ApiError):
            error = ApiError(status_code, "InternalError", self._reason)
        self.send(error.status, status_code)

    def kind(self, plural: str, sub: str | None = None) -> str:
        if plural not in KINDS or (sub and (plural, sub) != ("pods", "log")):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return KINDS[plural]

    def on_connection_close(self) -> None:
        self.closed = True
        self.store.notify()  # wakes a waiting watch, which then ends

    async def get(
        self, plural: str, ns: str | None = None, name: str | None = None, sub: str | None = None
    ) -> None:
        kind = self.kind(plural, sub)
        if name is None:
            labels = self.get_argument("labelSelector", "")
            fields = self.get_argument("fieldSelector", "")
            if self.get_argument("watch", "").lower() in ("true", "1"):
                return await self.watch(plural, ns, selector(plural, labels, fields))
            items = [
                {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
                for obj in self.store.list(plural, ns, labels, fields)
            ]
            meta = {"resourceVersion": str(self.store.rv)}
            return self.send(
                {"kind": f"{kind}List", "apiVersion": "v1", "metadata": meta, "items": items}
            )
        if ns is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        obj = self.store.get(plural, ns, name)
        if obj is None:
            raise not_found(plural, name)
        if sub == "log":
            path = self.kubelet.log_path(obj, self.get_argument("container", ""))
            self.set_header("Content-Type", "text/plain")
            return self.finish(path.read_bytes() if path.exists() else b"")
        self.send(obj)

    async def watch(self, plural: str, ns: str | None, match) -> None:
        store = self.store
        rv = self.get_argument("resourceVersion", "")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(self.get_argument("timeoutSeconds", "1800"))
        self.set_header("Content-Type", "application/json")
        if rv in ("", "0"):
            lines = [{"type": "ADDED", "object": o} for o in store.list(plural, ns) if match(o)]
            rv = store.rv
        elif not rv.isdigit():
            raise ApiError(400, "BadRequest", f"invalid resource version: {rv}")
        elif int(rv) < store.compacted:
            gone = ApiError(410, "Expired", f"too old resource version: {rv} ({store.compacted})")
            return self.finish(json.dumps({"type": "ERROR", "object": gone.status}) + "\n")
        else:
            lines, rv = [], int(rv)
        try:
            while not self.closed:
                changed = store.changed
                for change in store.since(rv):
                    rv = change.rv
                    if (
                        change.plural == plural
                        and ns in (None, change.namespace)
                        and match(change.object)
                    ):
                        lines.append({"type": change.type, "object": change.object})
                if lines:
                    self.write("".join(json.dumps(line) + "\n" for line in lines))
                    lines = []
                await self.flush()
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    await asyncio.wait_for(changed.wait(), remaining)
                except asyncio.TimeoutError:
                    pass
            if not self.closed:
                self.finish()
        except StreamClosedError:
            pass

    def post(
        self, plural: str, ns: str | None = None, name: str | None = None, sub: str | None = None
    ) -> None:
        kind = self.kind(plural, sub)
        if ns is None or name is not None or plural not in CREATABLE:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method")
        try:
            body = json.loads(self.request.body)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the request body is not a JSON object")
        self.store.manifests.append(
            {"plural": plural, "namespace": ns, "body": copy.deepcopy(body)}
        )
        if (body.setdefault("kind", kind), body.setdefault("apiVersion", "v1")) != (kind, "v1"):
            raise ApiError(400, "BadRequest", f"the body is not a v1 {kind}")
        meta = body.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        if meta.setdefault("namespace", ns) != ns:
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not "
                "match the namespace sent on the request",
            )
        errors = invalid(plural, body)
        if errors:
            raise ApiError(
                422,
                "Invalid",
                f'{kind} "{meta.get("name")}" is invalid: ' + ", ".join(errors),
                name=meta.get("name"),
                kind=plural,
            )
        try:
            kubernetes_validate.validate(body, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            self.set_header("Warning", f'299 - "{".".join(map(str, e.path))}: {e.message}"')
        meta["uid"] = str(uuid.uuid4())
        set_defaults(plural, body, self.store)
        self.store.create(plural, body)
        if plural == "pods":
            self.kubelet.start(body)
        elif plural == "persistentvolumeclaims":
            self.kubelet.claim_dir(ns, meta["name"]).mkdir(parents=True, exist_ok=True)
        self.send(body, 201)

    def delete(
        self, plural: str, ns: str | None = None, name: str | None = None, sub: str | None = None
    ) -> None:
        self.kind(plural, sub)
        if ns is None or name is None or sub or plural not in CREATABLE:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method")
        obj = self.store.get(plural, ns, name)
        if obj is None:
            raise not_found(plural, name)
        if plural == "pods":
            options = json.loads(self.request.body or b"{}")
            grace = self.get_argument("gracePeriodSeconds", None)
            if grace is None:
                grace = options.get("gracePeriodSeconds")
            if grace is None:
                grace = obj["spec"]["terminationGracePeriodSeconds"]
            return self.send(self.kubelet.delete(obj, int(grace)))
        self.store.remove(plural, obj)
        if plural == "persistentvolumeclaims":  # reclaimPolicy: Delete
            self.kubelet.remove_claim(ns, name)
        self.send(obj)


class DoubleHandler(web.RequestHandler):
    """Test-only endpoints: the recorded manifests, and forgetting the watch history."""

    def initialize(self, store: Store) -> None:
        self.store = store

    def get(self, what: str) -> None:
        if what != "manifests":
            raise web.HTTPError(404)
        self.finish({"items": self.store.manifests})

    def post(self, what: str) -> None:
        if what != "compact":
            raise web.HTTPError(404)
        self.store.compact()
        self.finish({"compacted": self.store.compacted})


class NotFoundHandler(ApiHandler):
    def prepare(self) -> None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")


def make_app(store: Store, kubelet: Kubelet) -> web.Application:
    args = {"store": store, "kubelet": kubelet}
    return web.Application(
        [
            (
                r"/api/v1/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?"
                r"(?:/(?P<sub>[^/]+))?/?",
                ApiHandler,
                args,
            ),
            (r"/api/v1/(?P<plural>[^/]+)/?", ApiHandler, args),
            (r"/_double/(manifests|compact)", DoubleHandler, {"store": store}),
            (r".*", NotFoundHandler, args),
        ],
        log_function=lambda handler: None,
    )


def write_kubeconfig(path: Path, url: str, namespace: str = "default") -> Path:
    """A kubeconfig for the double: no TLS, a dummy token, one context."""
    name = "k8s-double"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": name,
        "preferences": {},
        "clusters": [{"name": name, "cluster": {"server": url}}],
        "users": [{"name": name, "user": {"token": "k8s-double-has-no-auth"}}],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}
        ],
    }
    path.write_text(yaml.safe_dump(config))
    return path


async def serve(
    root: Path,
    port: int = 0,
    namespace: str = "default",
    pod_cidr: str = "127.1.0.0/16",
    backoff: float = 1.0,
):
    """Start the double on 127.0.0.1:``port`` (0: any free port) in the running loop.

    Returns ``(server, kubelet, kubeconfig path)``; ``await kubelet.shutdown()`` kills the pods.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    store = Store()
    kubelet = Kubelet(store, root, pod_cidr=pod_cidr, backoff=backoff)
    sockets = bind_sockets(port, "127.0.0.1")
    server = HTTPServer(make_app(store, kubelet))
    server.add_sockets(sockets)
    url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
    return server, kubelet, write_kubeconfig(root / "kubeconfig", url, namespace)
