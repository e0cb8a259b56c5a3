"""The Kubernetes spawner: dashboards as pods (Zero-to-JupyterHub).

A module of its own so that hubs without the ``kubernetes`` extra can still
load every other part of hub_viz (JupyterHub loads all spawner entry points).

Each dashboard instance is one pod running ``hub-viz-launch``:

- labels ``hub-viz/owner``, ``hub-viz/dashboard`` (the slug), ``hub-viz/mode``
  and ``hub-viz/framework`` (``kubectl get pods -l hub-viz/mode=shared``), and
  annotations with the unescaped names, the title and the profile;
- CPU and memory from the dashboard's profile and the author's limits, never
  above the operator's ceiling (refused before any pod is created);
- a non-root, unprivileged container without a service account token, a
  readiness probe on the launcher, and no restarts: an app that crashes stops
  its server, as it does on one machine, and its owner restarts it;
- the source read-only at :attr:`DashboardKubeSpawner.source_mount_path`:
  cloned from git by an init container (:mod:`hub_viz.gitfetch`: public hosts
  only, pinned, size-capped) into an ``emptyDir``, or the owner's
  storage (their home PVC) mounted read-only;
- storage for per-viewer instances only as :attr:`viewer_storage` says;
  shared instances never get a PVC, and another author's code never gets
  the viewer's home;
- with :attr:`environments_claim`, the dashboard's own environment: built once
  by a build pod into that shared volume and mounted read-only
  (:mod:`hub_viz.kubeenv`).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException
from kubespawner import KubeSpawner
from kubespawner.slugs import escape_slug, safe_slug
from traitlets import Enum, Unicode, default

from .environments import BUILDING_MESSAGE, redact, shared_builder, touch
from .kubeenv import (
    BUILD_SETTINGS,
    ENV_LABEL,
    build_pod,
    build_pod_name,
    env_mount_parts,
    env_python,
    read_result,
    source_key,
)
from .podparts import (
    LABEL_PREFIX,
    SOURCE_VOLUME,
    Base,
    Source,
    apply_parts,
    as_list,
    container_parts,
    label_parts,
    profile_parts,
    resource_parts,
    source_parts,
    storage_choice,
    volume_parts,
)
from .spawner import DashboardSpawnerMixin, spawn_error

__all__ = ["DashboardKubeSpawner", "pod_labels"]

POD_IP_ENV = "HUB_VIZ_POD_IP"
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")

# Kubernetes events as a student would say them; the rest are not shown.
EVENT_MESSAGES = {
    "TriggeredScaleUp": "Waiting for a free machine: the cluster is adding one…",
    "FailedScheduling": "Waiting for a free machine…",
    "Scheduled": "A machine was found for the dashboard.",
    "Pulling": "Pulling image… (the first start on a machine takes longer)",
    "Pulled": "Image ready.",
    "BackOff": "The dashboard stopped while starting; trying again…",
    "Failed": "The cluster could not start the dashboard.",
    "FailedMount": "Waiting for the dashboard's files…",
}


def label_value(value: str) -> str:
    """A Kubernetes label value for any name: itself when valid, else a safe slug with a hash."""
    if _LABEL_VALUE.fullmatch(value):
        return value
    return safe_slug(value, max_length=63)


def pod_labels(owner: str, dashboard: str, mode: str, framework: str) -> dict[str, str]:
    """``kubectl get pods -l hub-viz/owner=alice,hub-viz/dashboard=sales`` finds its instances."""
    slug = dashboard.rpartition("/")[2]
    return {
        LABEL_PREFIX + "dashboard": label_value(slug),
        LABEL_PREFIX + "owner": label_value(owner),
        LABEL_PREFIX + "mode": mode,
        LABEL_PREFIX + "framework": framework,
    }


class DashboardKubeSpawner(DashboardSpawnerMixin, KubeSpawner):
    """Dashboards as Kubernetes pods running ``hub-viz-launch``."""

    # KubeSpawner's traits this class extends per start (KubeSpawner ships no types)
    volumes: list[Any]
    volume_mounts: list[Any]
    extra_labels: dict[str, str]

    source_mount_path = Unicode(
        "/srv/dashboard",
        config=True,
        help="""Where the dashboard's source is mounted in the pod (read-only).
        A spec's 'entry' is relative to it.""",
    )

    owner_claim_template = Unicode(
        "claim-{owner}",
        config=True,
        help="""Name of the PVC holding a dashboard owner's files (their home storage).

        ``{owner}`` is the owner's name as KubeSpawner's ``slug_scheme`` writes
        it, so the default matches the chart's home volumes. It is mounted
        read-only; where it is ReadWriteOnce, an instance can only run on the
        node that has it attached: prefer git sources or ReadWriteMany storage.
        """,
    )

    viewer_storage = Enum(
        ["none", "scratch", "home"],
        default_value="scratch",
        config=True,
        help="""Storage of a per-viewer instance: 'scratch' (an emptyDir at the home
        folder, gone when it stops), 'home' (the viewer's own home PVC, as the
        chart configures it) or 'none'. Shared instances never get storage, and
        'home' applies only to an author's own instance: another author's code
        gets 'scratch' instead of the viewer's home.""",
    )

    git_image = Unicode(
        "",
        config=True,
        help="""Image of the init container that clones git sources (needs git and
        hub_viz: it runs ``python -m hub_viz.gitfetch``). Empty: the dashboard image.""",
    )

    environments_claim = Unicode(
        "",
        config=True,
        help="""A ReadWriteMany PVC for dashboard environments (``configure(environments=
        {"claim": ...})``). The hub mounts it at ``EnvironmentBuilder.root``; a build pod
        per dashboard source builds into it, instance pods mount their environment from
        it read-only. Empty: dashboards run in their image's environment.""",
    )

    environments_mount_path = Unicode(
        "/opt/hub-viz-envs",
        config=True,
        help="""Where build pods mount :attr:`environments_claim`, and where instance
        pods find their environment (``<path>/envs/<key>``, read-only).""",
    )

    @property
    def check_files(self) -> bool:
        """Never: the sources live in the pod's volumes, not on the hub."""
        return False

    @property
    def dashboards_root(self) -> str:
        """Where the pod mounts the source (``source_mount_path``)."""
        return self.source_mount_path

    @default("viewer_work_root")
    def _default_viewer_work_root(self) -> str:
        # in the per-viewer storage (viewer_storage): with 'scratch', gone with the pod
        return "/home/jovyan/hub-viz-work"

    @default("cmd")
    def _default_cmd(self) -> list[str]:
        return list(self.launcher_command)

    @default("automount_service_account_token")
    def _default_automount(self) -> bool:
        return False

    @default("allow_privilege_escalation")
    def _default_allow_privilege_escalation(self) -> bool:
        return False

    @default("uid")
    def _default_uid(self) -> int:
        return 1000

    @default("container_security_context")
    def _default_container_security_context(self) -> dict[str, Any]:
        return {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }

    @default("pod_name_template")
    def _default_pod_name_template(self) -> str:
        return "dashboard-{user_server}"

    # -- profile and spec ---------------------------------------------------

    async def load_user_options(self) -> None:
        """Profiles come from the (signed) dashboard spec, not KubeSpawner's profile_list."""

    async def dashboard_root(self) -> Path:
        """Every source is mounted at the same place (a git source by the init container)."""
        await super().dashboard_root()
        return Path(self.source_mount_path)

    def git_args(self) -> list[str]:
        """The init container fetches a git source, not the launcher."""
        return []

    # -- the pod ------------------------------------------------------------

    _source_claim = ""

    @property
    def _originals(self) -> dict[str, Any]:
        """The operator's value of each setting a start changed (kept across starts)."""
        if "_hub_viz_originals" not in self.__dict__:
            self.__dict__["_hub_viz_originals"] = {}
        return self.__dict__["_hub_viz_originals"]

    def prepare(self) -> None:
        """Set this start's pod settings from the resolved spec and profile: the parts
        (:mod:`hub_viz.podparts`) built from the operator's settings, applied at once."""
        spec = self._dashboard
        assert spec is not None, "start() resolves the spec first"
        base = Base(self, self._originals)
        signed = self._signed or {}
        owner = signed.get("source_owner") or self.user.name
        dashboard = signed.get("dashboard") or f"{self.user.name}/{self.name}"
        self._source_claim = "" if self._git is not None else self.owner_claim(owner)
        profile = profile_parts(base, self._profile)
        image = profile.get("image", base["image"])
        pull = profile.get("image_pull_policy", base["image_pull_policy"])
        self._build_inputs = (base, profile, image, pull)
        source = Source(
            mount_path=self.source_mount_path,
            claim=self._source_claim,
            git_container=self._git_container(image, pull) if self._git is not None else None,
            git_max_bytes=self.git_max_bytes,
        )
        storage = storage_choice(
            self.viewer_storage,
            others_code=self.runs_others_code(),
            warm_pool=self.user.name == self.warm_pool_user,
        )
        self._source = source
        apply_parts(
            self,
            self._originals,
            {
                **resource_parts(self._resources),
                **profile,
                **label_parts(
                    base,
                    labels=pod_labels(owner, dashboard, spec.mode, spec.framework.name),
                    dashboard=dashboard,
                    owner=owner,
                    title=spec.title,
                    profile=self._profile,
                ),
                **container_parts(base, probe_path=self.server.base_url + "api", port=self.port),
                **volume_parts(base, source=source, mode=spec.mode, storage=storage),
            },
        )

    async def check_before_start(self) -> None:
        """The owner's storage must exist, or the pod would wait for it until the timeout."""
        claim = self._source_claim
        if claim and not await self._check_pvc_exists(claim, self.namespace):
            raise spawn_error(
                f"Cannot start dashboard {self.name!r}: its owner's files are not available "
                "yet (their storage is created when they first start their own server). "
                "Publish it from a git repository, or ask the owner to start their server once.",
                reason="no-source",
                log_message=f"PVC {claim} not found in namespace {self.namespace}",
            )

    # -- the dashboard's environment (hub_viz.kubeenv) -------------------------

    _env_key = ""

    def environment_source_key(self) -> str:
        """The key of this dashboard source's environment (see :func:`source_key`)."""
        spec = self._dashboard
        assert spec is not None
        signed = self._signed or {}
        _, _, image, _ = self._build_inputs
        git = self._git
        source = f"git:{git.url}@{git.ref}" if git is not None else f"claim:{self._source_claim}"
        version = signed.get("version") or signed.get("commit") or ""
        return source_key(
            image=image,
            dashboard=self.dashboard_ref(),
            entry=f"{spec.cwd}\0{spec.entry}",
            source=source,
            version=str(version),
            settings=self._build_settings(),
        )

    def _build_settings(self) -> dict[str, Any]:
        builder = shared_builder(self.config)
        return {name: getattr(builder, name) for name in BUILD_SETTINGS}

    async def prepare_environment(self) -> None:
        """The dashboard's environment from the shared volume: read the build's result,
        or start (or join) the build pod and wait for it; then mount it read-only."""
        self._env_python = self._env_key = ""
        builder = shared_builder(self.config)
        if not self.environments_claim or not builder.enabled or self._dashboard is None:
            return
        key = self.environment_source_key()
        result = read_result(builder.root, key)
        if result.get("state") != "ready":
            self._emit(15, BUILDING_MESSAGE)
            result = await self._build_environment(key)
        env = result.get("env") or ""
        if not env:  # no requirement file: the image's environment
            return
        touch(Path(builder.root) / "envs" / env / ".hub-viz-last-used")
        volume, mount = env_mount_parts(
            claim=self.environments_claim, mount_path=self.environments_mount_path, env=env
        )
        # prepare() set this start's volumes from the operator's: add the environment's
        self.volumes = [*as_list(self.volumes), volume]
        self.volume_mounts = [*as_list(self.volume_mounts), mount]
        self.extra_labels = {**self.extra_labels, ENV_LABEL: env}
        self._env_key = env
        self._env_python = env_python(self.environments_mount_path, env)

    async def collect_environments(self) -> list[str]:
        """Remove environments unused for ``keep_days`` that no pod runs in (the
        ``hub-viz/env`` labels of this namespace's pods); after each build."""
        pods = await self.api.list_namespaced_pod(self.namespace, label_selector=ENV_LABEL)
        in_use = {(p.metadata.labels or {}).get(ENV_LABEL, "") for p in pods.items}
        builder = shared_builder(self.config)
        loop = asyncio.get_running_loop()
        removed = await loop.run_in_executor(None, lambda: builder.collect_garbage(in_use=in_use))
        for key in removed:
            self.log.info("Removed environment %s (unused for %g days)", key, builder.keep_days)
        return removed

    def environment_build_pod(self, key: str) -> dict[str, Any]:
        """The build pod for ``key``: this start's image, source and placement."""
        spec = self._dashboard
        assert spec is not None
        base, profile, image, pull = self._build_inputs
        volumes, _mounts, _fetch = source_parts(base, self._source)
        return build_pod(
            key=key,
            dashboard=self.dashboard_ref(),
            image=image,
            pull_policy=pull,
            claim=self.environments_claim,
            mount_path=self.environments_mount_path,
            source_volume=volumes[0],
            source_mount_path=self.source_mount_path,
            fetch_container=self._source.git_container,
            cwd=spec.cwd,
            entry=spec.entry,
            settings=self._build_settings(),
            timeout=shared_builder(self.config).build_timeout,
            uid=self.uid if isinstance(self.uid, int) else 1000,
            fs_gid=self.fs_gid if isinstance(self.fs_gid, int) else None,
            security_context=dict(self.container_security_context or {}),
            node_selector=profile.get("node_selector", base["node_selector"]),
            tolerations=as_list(profile.get("tolerations", base["tolerations"])),
        )

    async def _build_environment(self, key: str) -> dict[str, Any]:
        """Create the build pod (or join the one running), wait for its result, remove it."""
        builder = shared_builder(self.config)
        name = build_pod_name(key)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + builder.build_timeout + 60
        created = False
        while True:
            pod = await self._read_pod(name)
            phase = pod.status.phase if pod is not None and pod.status else None
            finished = phase in ("Succeeded", "Failed")
            if created and (pod is None or finished):
                result = read_result(builder.root, key)
                if pod is not None:
                    await self._delete_build_pod(name)
                if result.get("state") == "ready":
                    try:
                        await self.collect_environments()
                    except (ApiException, OSError) as e:  # the start goes on; next time
                        self.log.warning("Collecting environments failed: %s", redact(str(e)))
                    return result
                raise self._build_failed(result, pod)
            if not created and (pod is None or finished):
                if pod is not None:  # an earlier build's pod: its result is read, start anew
                    await self._delete_build_pod(name, wait=True)
                try:
                    await self.api.create_namespaced_pod(
                        self.namespace, self.environment_build_pod(key)
                    )
                except ApiException as e:
                    if e.status != 409:
                        raise spawn_error(
                            "This dashboard's environment could not be prepared: the cluster "
                            "refused its build. An administrator can read why in the hub's log.",
                            reason="environment-failed",
                            log_message=redact(
                                f"creating build pod {name}: {e.status} {body_text(e)}"
                            ),
                        ) from None
                created = True
            elif not created:  # another start's build: wait for it like our own
                created = True
            if getattr(self, "_stop_asked", False):
                raise spawn_error(
                    "The dashboard was stopped while its environment was prepared.",
                    reason="stopped",
                )
            if loop.time() > deadline:
                raise spawn_error(
                    "This dashboard's environment took too long to prepare.",
                    reason="environment-failed",
                    log_message=f"build pod {name} still {phase} after the deadline",
                )
            await asyncio.sleep(1)

    def _build_failed(self, result: dict[str, Any], pod: Any) -> Exception:
        """The spawn error of a failed build: the resolver's message for the author,
        a plain one for viewers (as on one machine)."""
        reason = pod.status.reason if pod is not None and pod.status else None
        detail = result.get("message") or ""
        if not detail and reason == "DeadlineExceeded":
            detail = (
                "Building the environment took longer than "
                f"{shared_builder(self.config).build_timeout:g} seconds, the most this hub allows."
            )
        message = (
            "This dashboard's environment could not be built. Its author can read why "
            "in the dashboard's log on its manage page."
        )
        if detail and not self.runs_others_code():
            message += f"\n{detail}"
        return spawn_error(
            message,
            reason="environment-failed",
            log_message=f"build pod: {reason or 'failed'}: {detail[-300:]}",
        )

    async def _read_pod(self, name: str) -> Any:
        try:
            return await self.api.read_namespaced_pod(name, self.namespace)
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    async def _delete_build_pod(self, name: str, wait: bool = False) -> None:
        try:
            await self.api.delete_namespaced_pod(name, self.namespace, grace_period_seconds=0)
        except ApiException as e:
            if e.status != 404:
                raise
        for _ in range(120 if wait else 0):  # gone within a minute (its grace is 0)
            if await self._read_pod(name) is None:
                return
            await asyncio.sleep(0.5)

    def _git_container(self, image: str, pull_policy: str) -> dict[str, Any]:
        """The init container that fetches the git source (in the instance's image
        unless ``git_image`` names one)."""
        git = self._git
        assert git is not None
        return {
            "name": "fetch-source",
            "image": self.git_image or image,
            "imagePullPolicy": pull_policy or "IfNotPresent",
            # the same checked, pinned and capped clone the launcher makes (hub_viz.gitfetch)
            "command": [
                "python",
                "-m",
                "hub_viz.gitfetch",
                f"--schemes={','.join(self.git_schemes)}",
                f"--max-bytes={self.git_max_bytes}",
                f"--timeout={self.git_timeout:g}",
                "--",
                git.url,
                git.ref,
                self.source_mount_path,
            ],
            "volumeMounts": [{"name": SOURCE_VOLUME, "mountPath": self.source_mount_path}],
            "securityContext": dict(self.container_security_context or {})
            | {
                "runAsUser": self.uid if isinstance(self.uid, int) else 1000,
            },
            "resources": {
                "limits": {"cpu": "1", "memory": "512M"},
                "requests": {"cpu": "100m", "memory": "64M"},
            },
        }

    def owner_claim(self, owner: str) -> str:
        slug = (
            escape_slug(owner) if self.slug_scheme == "escape" else safe_slug(owner, max_length=48)
        )
        return self.owner_claim_template.format(owner=slug)

    def get_args(self) -> list[str]:
        # The launcher listens on the pod's own address (Kubernetes expands $(VAR)).
        return [
            f"--ip=$({POD_IP_ENV})" if arg.startswith("--ip=") else arg
            for arg in super().get_args()
        ]

    def get_env(self) -> dict[str, Any]:
        env: dict[str, Any] = super().get_env()  # values may be Kubernetes env sources
        env[POD_IP_ENV] = {"valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
        return env

    # -- progress -----------------------------------------------------------

    async def start(self) -> Any:
        watcher = asyncio.ensure_future(self._relay_events())
        try:
            return await super().start()
        finally:
            watcher.cancel()

    async def _relay_events(self) -> None:
        """Turn this pod's Kubernetes events into progress messages a student understands."""
        if not self.events_enabled:
            return
        # The events reflector is the hub's, shared by every start. The first start
        # creates it and waits for its first list of events; a start that fails at once
        # cancels this relay, and a cancelled first list would leave the hub a reflector
        # that never loads, on which every later start waits until its start_timeout.
        await asyncio.shield(self._start_watching_events())
        seen = 0
        started = False
        while True:
            events = self.events
            for event in events[seen:]:
                reason = event.get("reason") or ""
                message = EVENT_MESSAGES.get(reason)
                if reason == "Started" and "fetch-source" in (event.get("message") or ""):
                    message = "Fetching the dashboard's source…"
                elif reason == "Started" and not started and self._dashboard is not None:
                    started = True
                    message = self.starting_message()
                if message:
                    self._emit(20, message)
            seen = len(events)
            await asyncio.sleep(0.5)

    def starting_message(self) -> str:
        assert self._dashboard is not None
        if self._dashboard.framework.name in ("voila", "notebook"):
            return "Running notebook…"
        return f"Starting {self._dashboard.framework.display_name}…"


def body_text(error: ApiException) -> str:
    """The cluster's answer in an API error, as text."""
    body = error.body
    return body.decode(errors="replace") if isinstance(body, bytes) else str(body)
