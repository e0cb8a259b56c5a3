"""The kubelet half of the Kubernetes test double: pods run as local processes.

Not a container runtime: no images, namespaces, users or resource limits. For
each created pod, in the order a real cluster would:

1. **Scheduling.** While a ``persistentVolumeClaim`` the pod uses does not exist,
   the pod stays Pending with a Warning ``FailedScheduling`` event. Then
   ``spec.nodeName: node-double`` and a ``Scheduled`` event "Successfully assigned
   ns/pod to node-double" (from default-scheduler, timestamped in ``eventTime``
   like a real scheduler; kubelet events set ``firstTimestamp``/``lastTimestamp``
   and repeats bump ``count``).
2. **Network.** Each pod gets its own address from ``pod_cidr`` (Linux routes all
   of 127.0.0.0/8 to loopback), so every pod can listen on the same port.
   ``hostIP`` is 127.0.0.1. Services are stored but route nothing; no DNS.
3. **Volumes, by path translation** (there are no mount namespaces). Each volume
   is a host directory: ``emptyDir`` → ``<pod dir>/volumes/<name>``;
   ``persistentVolumeClaim`` → ``<root>/pvcs/<namespace>/<claimName>`` (made when
   the PVC is created, removed when it is deleted); ``hostPath`` → that path;
   ``subPath`` → a subdirectory. In a container's command, args, env values and
   workingDir, a string that *is* a mountPath or starts with ``mountPath/``
   (longest mountPath first), or an option ``--name=<such a path>``, has that
   prefix replaced by the host directory. Nothing else is translated, and
   ``readOnly`` is not enforced. Other volume types leave the pod Pending with a
   Warning ``FailedMount`` event. A workingDir or HOME that is not under a mount
   and does not exist on the host is created under ``<pod dir>/rootfs``.
4. **Images.** None: ``Pulling``/``Pulled`` events the first time this double
   sees an image (or every start with ``imagePullPolicy: Always``), later
   ``Pulled`` "already present on machine". Every image acts as if its ENTRYPOINT
   were empty: the process is ``command + args`` (KubeSpawner puts the whole
   command in ``args``); with neither, the container waits forever in
   CreateContainerConfigError.
5. **Processes.** Each container is a process in its own process group, run as
   the current user, output in ``<pod dir>/logs/<container>.log`` (served at
   ``.../pods/{name}/log``). Its environment: ``PATH`` (the directory of this
   Python first, so the test venv's scripts are found), ``HOME`` (a per-pod
   directory unless the pod sets it), ``HOSTNAME``, the double's own ``PYTHONPATH``
   (the "image" is the test's Python with the code under test) and the container's ``env``
   (``value`` with ``$(VAR)`` references to earlier variables expanded;
   ``valueFrom.fieldRef`` for metadata.name/namespace/uid/labels/annotations,
   spec.nodeName, spec.serviceAccountName, status.podIP/hostIP; any other
   ``valueFrom`` is a CreateContainerConfigError). ``$(VAR)`` in command and args
   is expanded the Kubernetes way (``$$`` escapes, unknown names stay as they are).
6. **Start-up.** initContainers run one at a time to completion, then all
   containers at once (``Created``, ``Started`` events). Phase ``Running`` once
   every container has started. ``ready`` comes from ``readinessProbe``
   (httpGet with User-Agent ``kube-probe/1.33``, tcpSocket or exec, against the
   pod IP, with initialDelaySeconds, periodSeconds — default 10! —,
   timeoutSeconds, successThreshold, failureThreshold); without one a container
   is ready as soon as it started. Liveness and startup probes and lifecycle
   hooks are ignored.
7. **Exits** follow ``restartPolicy`` (KubeSpawner sets OnFailure): a restart
   shows ``state.waiting`` CrashLoopBackOff, ``lastState.terminated``,
   ``restartCount`` + 1 and a Warning ``BackOff`` event, after ``backoff``
   seconds doubling up to 30x (a real kubelet: 10 s up to 5 min). Otherwise
   ``state.terminated`` (exitCode, reason Completed/Error), and the pod is
   ``Succeeded`` once all containers exited 0, ``Failed`` once all exited and one
   failed. A failed init container under Never fails the pod. A command that
   cannot be executed: exit code 128, reason StartError, Warning ``Failed``.
   Like a real kubelet, no event is emitted for an exit that is not restarted.
8. **Deadlines.** A pod's ``activeDeadlineSeconds`` kills its containers once
   it passed: phase Failed, reason DeadlineExceeded, a Warning event.
9. **Deletion.** ``deletionTimestamp`` at once; ``Killing`` events; SIGTERM to each
   process group, SIGKILL after the grace period (at least 1 s); the containers'
   terminated states (MODIFIED), then the pod is removed (DELETED). A container
   whose main process exits has its whole process group killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import os
import re
import secrets
import shutil
import signal
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tornado.httpclient import AsyncHTTPClient

NODE = "node-double"
HOST_IP = "127.0.0.1"
SCRIPTS = str(Path(sys.executable).parent)
log = logging.getLogger("k8s_double.kubelet")


def now(delta: float = 0) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: ``$$`` is ``$``, unknown references stay."""
    return re.sub(
        r"\$\$|\$\(([^)]*)\)", lambda m: "$" if m[0] == "$$" else env.get(m[1], m[0]), text
    )


def signal_group(proc: asyncio.subprocess.Process, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


class ConfigError(Exception):
    """A container the double cannot start (a real kubelet would keep retrying)."""


@dataclass
class PodRun:
    pod: dict
    dir: Path
    task: asyncio.Task | None = None
    volumes: dict[str, Path] = field(default_factory=dict)
    procs: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    initialized: bool = False
    init_failed: bool = False
    deleting: bool = False


class Kubelet:
    def __init__(
        self, store: Any, root: Path, pod_cidr: str = "127.1.0.0/16", backoff: float = 1.0
    ) -> None:
        self.store, self.root, self.backoff = store, Path(root), backoff
        self.addresses = ipaddress.ip_network(pod_cidr).hosts()
        self.runs: dict[str, PodRun] = {}  # by pod uid
        self.pulled: set[str] = set()
        self.tasks: set[asyncio.Task] = set()

    # -- paths -------------------------------------------------------------

    def pod_dir(self, pod: dict) -> Path:
        meta = pod["metadata"]
        return self.root / "pods" / f"{meta['namespace']}_{meta['name']}_{meta['uid']}"

    def claim_dir(self, namespace: str, claim: str) -> Path:
        return self.root / "pvcs" / namespace / claim

    def remove_claim(self, namespace: str, claim: str) -> None:
        shutil.rmtree(self.claim_dir(namespace, claim), ignore_errors=True)

    def log_path(self, pod: dict, container: str = "") -> Path:
        container = container or pod["spec"]["containers"][0]["name"]
        return self.pod_dir(pod) / "logs" / f"{container}.log"

    # -- the API server's calls --------------------------------------------

    def start(self, pod: dict) -> None:
        run = PodRun(pod, self.pod_dir(pod))
        self.runs[pod["metadata"]["uid"]] = run
        run.task = asyncio.create_task(self._run(run))
        run.task.add_done_callback(self._report)
        deadline = pod["spec"].get("activeDeadlineSeconds")
        if deadline:
            self._spawn(self._deadline(run, float(deadline)))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(self._report)

    async def _deadline(self, run: PodRun, seconds: float) -> None:
        """``activeDeadlineSeconds``: the kubelet kills what still runs, the pod fails."""
        await asyncio.sleep(seconds)
        status = run.pod["status"]
        if run.deleting or status["phase"] in ("Succeeded", "Failed"):
            return
        run.deleting = True
        status.update(
            phase="Failed",
            reason="DeadlineExceeded",
            message="Pod was active on the node longer than the specified deadline",
        )
        self.event(run.pod, "DeadlineExceeded", status["message"], "Warning")
        for proc in list(run.procs.values()):
            signal_group(proc, signal.SIGKILL)
        self.update(run)

    @staticmethod
    def _report(task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception():
            log.error("kubelet failed", exc_info=task.exception())

    def delete(self, pod: dict, grace: int) -> dict:
        meta = pod["metadata"]
        if "deletionTimestamp" not in meta:
            meta.update(deletionTimestamp=now(grace), deletionGracePeriodSeconds=grace)
            self.store.modified("pods", pod)
            task = asyncio.create_task(self._terminate(self.runs[meta["uid"]], max(grace, 1)))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return pod

    async def shutdown(self) -> None:
        for run in self.runs.values():
            run.deleting = True
            for proc in run.procs.values():
                signal_group(proc, signal.SIGKILL)
            if run.task:
                run.task.cancel()
        await asyncio.gather(
            *(r.task for r in self.runs.values() if r.task), *self.tasks, return_exceptions=True
        )

    # -- status and events -------------------------------------------------

    def update(self, run: PodRun) -> None:
        pod = run.pod
        status = pod["status"]
        if status["phase"] not in ("Succeeded", "Failed"):
            status["phase"] = self._phase(run)
        ready = status["phase"] == "Running" and all(
            cs["ready"] for cs in status.get("containerStatuses") or []
        )
        conditions = {c["type"]: c for c in status.get("conditions") or []}
        wanted = {
            "PodScheduled": "nodeName" in pod["spec"],
            "Initialized": run.initialized,
            "ContainersReady": ready,
            "Ready": ready,
        }
        reasons = {"PodScheduled": "Unschedulable", "Initialized": "ContainersNotInitialized"}
        for type_, value in wanted.items():
            value = str(value)
            if conditions.get(type_, {}).get("status") != value:
                conditions[type_] = {
                    "type": type_,
                    "status": value,
                    "lastProbeTime": None,
                    "lastTransitionTime": now(),
                }
                if value == "False":
                    conditions[type_]["reason"] = reasons.get(type_, "ContainersNotReady")
        status["conditions"] = list(conditions.values())
        meta = pod["metadata"]
        if self.store.get("pods", meta["namespace"], meta["name"]) is pod:
            self.store.modified("pods", pod)

    def _phase(self, run: PodRun) -> str:
        if run.init_failed:
            return "Failed"
        statuses = run.pod["status"].get("containerStatuses") or []
        if not run.initialized or not statuses:
            return "Pending"
        states = [cs["state"] for cs in statuses]
        if all("terminated" in s for s in states):
            failed = any(s["terminated"]["exitCode"] for s in states)
            return "Failed" if failed else "Succeeded"
        if all(
            "running" in cs["state"] or cs.get("lastState") or "terminated" in cs["state"]
            for cs in statuses
        ):
            return "Running"
        return "Pending"

    def event(
        self,
        pod: dict,
        reason: str,
        message: str,
        type_: str = "Normal",
        container: str | None = None,
        init: bool = False,
        scheduler: bool = False,
    ) -> None:
        meta = pod["metadata"]
        for ev in self.store.list("events", meta["namespace"]):
            if (ev["involvedObject"]["uid"], ev["reason"], ev["message"]) == (
                meta["uid"],
                reason,
                message,
            ):
                ev["count"] += 1
                if ev["lastTimestamp"]:
                    ev["lastTimestamp"] = now()
                return self.store.modified("events", ev)
        involved = {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
        }
        if container:
            kind = "initContainers" if init else "containers"
            involved["fieldPath"] = f"spec.{kind}{{{container}}}"
        stamp = now()
        component = "default-scheduler" if scheduler else "kubelet"
        self.store.create(
            "events",
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {
                    "name": f"{meta['name']}.{secrets.token_hex(8)}",
                    "namespace": meta["namespace"],
                    "uid": secrets.token_hex(16),
                },
                "involvedObject": involved,
                "reason": reason,
                "message": message,
                "type": type_,
                "count": 1,
                "source": {"component": component} | ({} if scheduler else {"host": NODE}),
                "firstTimestamp": None if scheduler else stamp,
                "lastTimestamp": None if scheduler else stamp,
                "eventTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                if scheduler
                else None,
                "reportingComponent": component,
                "reportingInstance": "" if scheduler else NODE,
            },
        )

    # -- running a pod -----------------------------------------------------

    async def _run(self, run: PodRun) -> None:
        pod = run.pod
        meta, spec, status = pod["metadata"], pod["spec"], pod["status"]
        ns = meta["namespace"]
        claims = [
            v["persistentVolumeClaim"]["claimName"]
            for v in spec.get("volumes") or []
            if "persistentVolumeClaim" in v
        ]
        while missing := [c for c in claims if not self.store.get("persistentvolumeclaims", ns, c)]:
            self.event(
                pod,
                "FailedScheduling",
                f'0/1 nodes are available: persistentvolumeclaim "{missing[0]}" not found.',
                "Warning",
                scheduler=True,
            )
            self.update(run)
            await asyncio.sleep(1)
        spec["nodeName"] = NODE
        self.event(
            pod, "Scheduled", f"Successfully assigned {ns}/{meta['name']} to {NODE}", scheduler=True
        )
        ip = str(next(self.addresses))
        status.update(
            hostIP=HOST_IP,
            hostIPs=[{"ip": HOST_IP}],
            podIP=ip,
            podIPs=[{"ip": ip}],
            startTime=now(),
        )
        inits, containers = spec.get("initContainers") or [], spec["containers"]

        def new(c: dict, reason: str) -> dict:
            return {
                "name": c["name"],
                "image": c["image"],
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "started": False,
                "state": {"waiting": {"reason": reason}},
                "lastState": {},
            }

        if inits:
            status["initContainerStatuses"] = [new(c, "PodInitializing") for c in inits]
        first = "PodInitializing" if inits else "ContainerCreating"
        status["containerStatuses"] = [new(c, first) for c in containers]
        for sub in ("logs", "home", "rootfs"):
            (run.dir / sub).mkdir(parents=True, exist_ok=True)
        self.update(run)
        try:
            self._mount(run)
        except ConfigError as e:
            return self.event(pod, "FailedMount", str(e), "Warning")
        for c, st in zip(inits, status.get("initContainerStatuses", []), strict=True):
            if await self._container(run, c, st, init=True) != 0:
                return
        run.initialized = True
        self.update(run)
        pairs = zip(containers, status["containerStatuses"], strict=True)
        await asyncio.gather(*(self._container(run, c, st) for c, st in pairs))

    def _mount(self, run: PodRun) -> None:
        ns = run.pod["metadata"]["namespace"]
        for v in run.pod["spec"].get("volumes") or []:
            if "emptyDir" in v:
                path = run.dir / "volumes" / v["name"]
            elif "persistentVolumeClaim" in v:
                path = self.claim_dir(ns, v["persistentVolumeClaim"]["claimName"])
            elif "hostPath" in v:
                path = Path(v["hostPath"]["path"])
                if not path.exists() and v["hostPath"].get("type") != "DirectoryOrCreate":
                    raise ConfigError(
                        f'MountVolume.SetUp failed for volume "{v["name"]}": '
                        f"hostPath {path} does not exist"
                    )
            else:
                raise ConfigError(
                    f'MountVolume.SetUp failed for volume "{v["name"]}": the '
                    "k8s test double has only emptyDir, persistentVolumeClaim "
                    "and hostPath volumes"
                )
            path.mkdir(parents=True, exist_ok=True)
            run.volumes[v["name"]] = path

    def _prepare(self, run: PodRun, c: dict) -> tuple[list[str], dict[str, str], str]:
        """argv, environment and working directory of a container, paths translated."""
        pod = run.pod
        mounts = []
        for m in c.get("volumeMounts") or []:
            host = run.volumes[m["name"]] / m.get("subPath", "")
            host.mkdir(parents=True, exist_ok=True)
            mounts.append((m["mountPath"].rstrip("/") or "/", str(host)))
        mounts.sort(key=lambda m: -len(m[0]))

        def translate(text: str) -> str:
            option, path = "", text
            if m := re.fullmatch(r"(--?[\w.-]+=)(/.*)", text):
                option, path = m[1], m[2]
            for mount, host in mounts:
                if path == mount or path.startswith(mount.rstrip("/") + "/"):
                    return option + host + path[len(mount) :]
            return text

        def outside(path: str) -> str:  # a directory the image would have
            new = translate(path)
            if new == path and not Path(path).exists():
                new = str(run.dir / "rootfs" / path.lstrip("/"))
                Path(new).mkdir(parents=True, exist_ok=True)
            return new

        fields = {
            "metadata.name": pod["metadata"]["name"],
            "metadata.uid": pod["metadata"]["uid"],
            "metadata.namespace": pod["metadata"]["namespace"],
            "spec.nodeName": NODE,
            "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
            "status.podIP": pod["status"]["podIP"],
            "status.hostIP": HOST_IP,
        }
        env: dict[str, str] = {}
        for var in c.get("env") or []:
            if "valueFrom" not in var:
                env[var["name"]] = expand(var.get("value") or "", env)
                continue
            path = (var["valueFrom"].get("fieldRef") or {}).get("fieldPath", "")
            if m := re.fullmatch(r"metadata\.(labels|annotations)\['(.*)'\]", path):
                env[var["name"]] = (pod["metadata"].get(m[1]) or {}).get(m[2], "")
            elif path in fields:
                env[var["name"]] = fields[path]
            else:
                raise ConfigError(
                    f"the k8s test double cannot set {var['name']} from {var['valueFrom']}"
                )
        argv = [translate(expand(a, env)) for a in (c.get("command") or []) + (c.get("args") or [])]
        if not argv:
            raise ConfigError(
                "the k8s test double has no images: a container needs a command or args"
            )
        proc_env = {"HOME": str(run.dir / "home"), "HOSTNAME": pod["metadata"]["name"]}
        proc_env |= {k: translate(v) for k, v in env.items()}
        proc_env["HOME"] = outside(proc_env["HOME"])
        proc_env["PATH"] = SCRIPTS + os.pathsep + env.get("PATH", os.environ.get("PATH", ""))
        if os.environ.get("PYTHONPATH") and "PYTHONPATH" not in env:  # the code under test
            proc_env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        cwd = outside(c["workingDir"]) if c.get("workingDir") else str(run.dir / "rootfs")
        Path(cwd).mkdir(parents=True, exist_ok=True)  # a kubelet creates a missing workingDir
        return argv, proc_env, cwd

    def _pull(self, pod: dict, c: dict, init: bool) -> None:
        image, name = c["image"], c["name"]
        if c["imagePullPolicy"] == "Always" or image not in self.pulled:
            self.pulled.add(image)
            self.event(pod, "Pulling", f'Pulling image "{image}"', container=name, init=init)
            self.event(
                pod,
                "Pulled",
                f'Successfully pulled image "{image}" in 0s (0s including '
                "waiting). Image size: 0 bytes.",
                container=name,
                init=init,
            )
        else:
            self.event(
                pod,
                "Pulled",
                f'Container image "{image}" already present on machine',
                container=name,
                init=init,
            )

    async def _container(self, run: PodRun, c: dict, st: dict, init: bool = False) -> int | None:
        """Run one container, restarting it as restartPolicy says; its last exit code."""
        pod, name = run.pod, c["name"]
        policy, delay = pod["spec"]["restartPolicy"], self.backoff
        while not run.deleting:
            self._pull(pod, c, init)
            try:
                argv, env, cwd = self._prepare(run, c)
            except ConfigError as e:
                st["state"] = {
                    "waiting": {"reason": "CreateContainerConfigError", "message": str(e)}
                }
                self.event(pod, "Failed", f"Error: {e}", "Warning", name, init)
                self.update(run)
                return None
            terminated = await self._execute(run, c, st, argv, env, cwd, init)
            code = terminated["exitCode"]
            restart = policy == "Always" and not init or policy != "Never" and code != 0
            if run.deleting or not restart:
                st["state"] = {"terminated": terminated}
                st["ready"] = init and code == 0
                run.init_failed |= init and code != 0
                self.update(run)
                return code
            meta = pod["metadata"]
            who = f"{meta['name']}_{meta['namespace']}({meta['uid']})"
            st["lastState"] = {"terminated": terminated}
            st["state"] = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {delay:g}s restarting failed container={name} pod={who}",
                }
            }
            self.event(
                pod,
                "BackOff",
                f"Back-off restarting failed container {name} in pod {who}",
                "Warning",
                name,
                init,
            )
            self.update(run)
            await asyncio.sleep(delay)
            delay = min(2 * delay, 30 * self.backoff)
            st["restartCount"] += 1
        return None

    async def _execute(
        self,
        run: PodRun,
        c: dict,
        st: dict,
        argv: list[str],
        env: dict[str, str],
        cwd: str,
        init: bool,
    ) -> dict:
        pod, name = run.pod, c["name"]
        self.event(pod, "Created", f"Created container {name}", container=name, init=init)
        started = now()
        out = os.open(run.dir / "logs" / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        except OSError as e:
            message = f'failed to start container "{name}": exec {argv[0]!r}: {e.strerror}'
            self.event(pod, "Failed", f"Error: {message}", "Warning", name, init)
            return {
                "exitCode": 128,
                "reason": "StartError",
                "message": message,
                "startedAt": started,
                "finishedAt": now(),
            }
        finally:
            os.close(out)
        run.procs[name] = proc
        container_id = f"double://{proc.pid}"
        digest = hashlib.sha256(c["image"].encode()).hexdigest()
        st.update(
            containerID=container_id,
            imageID=f"{c['image']}@sha256:{digest}",
            started=True,
            state={"running": {"startedAt": started}},
            ready=not init and "readinessProbe" not in c,
        )
        self.event(pod, "Started", f"Started container {name}", container=name, init=init)
        self.update(run)
        probe = None
        if not init and "readinessProbe" in c:
            probe = asyncio.create_task(self._probe(run, c, st))
        try:
            code = await proc.wait()
        finally:
            if probe:
                probe.cancel()
            run.procs.pop(name, None)
            signal_group(proc, signal.SIGKILL)  # the rest of the "container"
        st.update(ready=False, started=False)
        code = 128 - code if code < 0 else code  # killed by a signal: 128 + signal number
        return {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": started,
            "finishedAt": now(),
            "containerID": container_id,
        }

    async def _probe(self, run: PodRun, c: dict, st: dict) -> None:
        p = c["readinessProbe"]
        await asyncio.sleep(p.get("initialDelaySeconds", 0))
        successes = failures = 0
        while True:
            if await self._check(run, c, p):
                successes, failures = successes + 1, 0
            else:
                successes, failures = 0, failures + 1
            if (
                not st["ready"]
                and successes >= p.get("successThreshold", 1)
                or st["ready"]
                and failures >= p.get("failureThreshold", 3)
            ):
                st["ready"] = not st["ready"]
                self.update(run)
            await asyncio.sleep(p.get("periodSeconds", 10))

    async def _check(self, run: PodRun, c: dict, p: dict) -> bool:
        timeout, ip = p.get("timeoutSeconds", 1), run.pod["status"]["podIP"]
        ports = {port.get("name"): port["containerPort"] for port in c.get("ports") or []}
        try:
            if "httpGet" in p:
                get = p["httpGet"]
                port = ports.get(get["port"], get["port"])
                url = (
                    f"{get.get('scheme', 'HTTP').lower()}://{get.get('host') or ip}:{port}"
                    f"{get.get('path', '/')}"
                )
                headers = {"User-Agent": "kube-probe/1.33"}
                headers |= {h["name"]: h["value"] for h in get.get("httpHeaders") or []}
                response = await AsyncHTTPClient().fetch(
                    url,
                    headers=headers,
                    request_timeout=timeout,
                    follow_redirects=False,
                    raise_error=False,
                    validate_cert=False,
                )
                return 200 <= response.code < 400
            if "tcpSocket" in p:
                port = ports.get(p["tcpSocket"]["port"], p["tcpSocket"]["port"])
                _, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), timeout)
                writer.close()
                return True
            if "exec" in p:
                argv, env, cwd = self._prepare(
                    run, {**c, "command": p["exec"]["command"], "args": []}
                )
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    env=env,
                    cwd=cwd,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
                try:
                    return await asyncio.wait_for(proc.wait(), timeout) == 0
                finally:
                    if proc.returncode is None:
                        proc.kill()
                        await proc.wait()
        except Exception:  # refused, timed out, ...: not ready
            return False
        return False

    async def _terminate(self, run: PodRun, grace: int) -> None:
        run.deleting = True
        procs = list(run.procs.items())
        for name, proc in procs:
            self.event(run.pod, "Killing", f"Stopping container {name}", container=name)
            signal_group(proc, signal.SIGTERM)
        if procs:
            await asyncio.wait([asyncio.ensure_future(p.wait()) for _, p in procs], timeout=grace)
            for _, proc in procs:
                signal_group(proc, signal.SIGKILL)
        if run.task:
            if procs:  # let it record the exits
                await asyncio.wait([run.task], timeout=2)
            run.task.cancel()
            await asyncio.gather(run.task, return_exceptions=True)
        for st in run.pod["status"].get("containerStatuses") or []:
            if "terminated" not in st["state"]:
                st.update(
                    ready=False,
                    started=False,
                    state={"terminated": {"exitCode": 137, "reason": "Error", "finishedAt": now()}},
                )
        self.update(run)
        self.store.remove("pods", run.pod)
        self.runs.pop(run.pod["metadata"]["uid"], None)
        shutil.rmtree(run.dir / "volumes", ignore_errors=True)  # emptyDirs go with the pod
        log.info("pod %s/%s deleted", run.pod["metadata"]["namespace"], run.pod["metadata"]["name"])
