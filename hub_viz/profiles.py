"""Resource profiles and the operator's ceiling.

A profile is what an author picks for a dashboard ("small", "large"): CPU
and memory requests and limits, and on Kubernetes an image, a pull policy,
a node selector and tolerations. An author may also ask for ``resources``
(``{"cpu": 1, "memory": "2G"}``, the limits) beyond the profile. Nothing
may exceed the operator's ceiling. The service checks at publish time and
the spawner again before it creates anything; both raise
:class:`~hub_viz.errors.SpecError` with a message the author can read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import SpecError

# Kubernetes quantity suffixes for memory (binary and decimal).
_MEMORY_UNITS = {
    "": 1,
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
_MEMORY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([kKMGT]i?|)$")
_CPU = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m?)$")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
PROFILE_KEYS = frozenset(
    {
        "display_name",
        "description",
        "cpu_request",
        "cpu_limit",
        "mem_request",
        "mem_limit",
        "image",
        "image_pull_policy",
        "node_selector",
        "tolerations",
    }
)
RESOURCE_KEYS = frozenset({"cpu", "memory"})


def parse_cpu(value: Any, what: str = "cpu") -> float:
    """CPU cores from ``1``, ``0.5``, ``"1.5"`` or ``"500m"``."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, (int, float)):
        cores = float(value)
    else:
        match = _CPU.fullmatch(str(value).strip()) if isinstance(value, str) else None
        if not match:
            raise SpecError(f"{what} must be a number of CPU cores such as 0.5, 2 or '500m'.")
        cores = float(match[1]) / (1000 if match[2] else 1)
    if not 0 < cores <= 1024:
        raise SpecError(f"{what} must be more than 0 CPU cores.")
    return cores


def parse_memory(value: Any, what: str = "memory") -> int:
    """Bytes from ``"512M"``, ``"2Gi"``, ``"1.5G"`` or a number of bytes."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, (int, float)):
        size = int(value)
    else:
        match = _MEMORY.fullmatch(value.strip()) if isinstance(value, str) else None
        if not match:
            raise SpecError(f"{what} must be a size such as '512M', '2G' or '1Gi'.")
        size = int(float(match[1]) * _MEMORY_UNITS[match[2]])
    if size < 2**20:
        raise SpecError(f"{what} must be at least 1 MiB (e.g. '256M').")
    return size


def format_memory(size: int) -> str:
    """``2000000000`` -> ``'2G'``, ``2**31`` -> ``'2Gi'``: exact, in the largest unit that fits."""
    for suffix in ("Ti", "T", "Gi", "G", "Mi", "M", "Ki", "k"):
        unit = _MEMORY_UNITS[suffix]
        if size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)


def format_cpu(cores: float) -> str:
    return f"{cores:g}"


@dataclass(frozen=True)
class Ceiling:
    """The most any one dashboard instance may use (None: no ceiling)."""

    cpu: float | None = None
    memory: int | None = None

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> Ceiling:
        raw = dict(raw or {})
        unknown = set(raw) - RESOURCE_KEYS
        if unknown:
            raise ValueError(f"resource_ceiling: unknown key(s) {sorted(unknown)}; use cpu, memory")
        try:
            return cls(
                cpu=parse_cpu(raw["cpu"], "resource_ceiling cpu") if "cpu" in raw else None,
                memory=(
                    parse_memory(raw["memory"], "resource_ceiling memory")
                    if "memory" in raw
                    else None
                ),
            )
        except SpecError as e:
            raise ValueError(e.message) from None

    def public(self) -> dict[str, Any]:
        """What authors see: ``{"cpu": 2.0, "memory": "4G"}``, without the missing ones."""
        out: dict[str, Any] = {}
        if self.cpu is not None:
            out["cpu"] = self.cpu
        if self.memory is not None:
            out["memory"] = format_memory(self.memory)
        return out

    def check(self, cpu: float | None, memory: int | None, what: str) -> None:
        if cpu is not None and self.cpu is not None and cpu > self.cpu:
            raise SpecError(
                f"{what} asks for {format_cpu(cpu)} CPU; this hub allows at most "
                f"{format_cpu(self.cpu)} per dashboard."
            )
        if memory is not None and self.memory is not None and memory > self.memory:
            raise SpecError(
                f"{what} asks for {format_memory(memory)} of memory; this hub allows at most "
                f"{format_memory(self.memory)} per dashboard."
            )


@dataclass(frozen=True)
class Resources:
    """Requests and limits of one instance (None: leave it to the cluster's defaults)."""

    cpu_request: float | None = None
    cpu_limit: float | None = None
    mem_request: int | None = None
    mem_limit: int | None = None


@dataclass(frozen=True)
class Profile:
    name: str
    display_name: str
    description: str = ""
    resources: Resources = field(default_factory=Resources)
    image: str = ""
    image_pull_policy: str = ""
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()

    def public(self) -> dict[str, Any]:
        """What authors see when they pick a profile (no images or node names)."""
        r = self.resources
        out: dict[str, Any] = {"display_name": self.display_name, "description": self.description}
        if r.cpu_limit is not None:
            out["cpu_limit"] = r.cpu_limit
        if r.mem_limit is not None:
            out["mem_limit"] = format_memory(r.mem_limit)
        return out


def parse_profile(name: str, raw: Mapping[str, Any], ceiling: Ceiling) -> Profile:
    """One operator profile; a mistake raises ValueError naming the profile."""
    where = f"profile {name!r}"
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be a dict of settings")
    unknown = set(raw) - PROFILE_KEYS
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(PROFILE_KEYS)}"
        )
    try:
        resources = Resources(
            cpu_request=_opt(raw, "cpu_request", parse_cpu, where),
            cpu_limit=_opt(raw, "cpu_limit", parse_cpu, where),
            mem_request=_opt(raw, "mem_request", parse_memory, where),
            mem_limit=_opt(raw, "mem_limit", parse_memory, where),
        )
        _check_order(resources, where)
        ceiling.check(resources.cpu_limit, resources.mem_limit, where)
        ceiling.check(resources.cpu_request, resources.mem_request, where)
    except SpecError as e:
        raise ValueError(e.message) from None
    policy = raw.get("image_pull_policy", "")
    if policy and policy not in PULL_POLICIES:
        raise ValueError(f"{where}: image_pull_policy must be one of {', '.join(PULL_POLICIES)}")
    node_selector = raw.get("node_selector") or {}
    if not isinstance(node_selector, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in node_selector.items()
    ):
        raise ValueError(f"{where}: node_selector must map label names to string values")
    tolerations = raw.get("tolerations") or []
    if not isinstance(tolerations, list) or not all(isinstance(t, Mapping) for t in tolerations):
        raise ValueError(f"{where}: tolerations must be a list of Kubernetes toleration dicts")
    return Profile(
        name=name,
        display_name=str(raw.get("display_name") or name),
        description=str(raw.get("description") or ""),
        resources=resources,
        image=str(raw.get("image") or ""),
        image_pull_policy=policy,
        node_selector=dict(node_selector),
        tolerations=tuple(dict(t) for t in tolerations),
    )


def parse_profiles(raw: Mapping[str, Any] | None, ceiling: Ceiling) -> dict[str, Profile]:
    return {name: parse_profile(name, spec, ceiling) for name, spec in (raw or {}).items()}


def pick_profile(profiles: Mapping[str, Profile], name: Any) -> Profile | None:
    """The profile a spec names (None for the default), or a SpecError naming the known ones."""
    if not name:
        return None
    if not isinstance(name, str) or name not in profiles:
        known = ", ".join(sorted(profiles)) or "none are configured"
        raise SpecError(f"Unknown profile {name!r}; known profiles: {known}.")
    return profiles[name]


def check_resources(raw: Any) -> dict[str, Any]:
    """An author's ``resources`` field, normalised: ``{"cpu": 1.0, "memory": "2G"}``."""
    if raw in (None, {}):
        return {}
    if not isinstance(raw, Mapping):
        raise SpecError('\'resources\' must be an object such as {"cpu": 1, "memory": "2G"}.')
    unknown = set(raw) - RESOURCE_KEYS
    if unknown:
        raise SpecError(f"Unknown 'resources' field(s) {sorted(unknown)}; allowed: cpu, memory.")
    out: dict[str, Any] = {}
    if raw.get("cpu") not in (None, ""):
        out["cpu"] = parse_cpu(raw["cpu"], "'resources.cpu'")
    if raw.get("memory") not in (None, ""):
        out["memory"] = format_memory(parse_memory(raw["memory"], "'resources.memory'"))
    return out


def effective_resources(
    profile: Profile | None, requested: Mapping[str, Any] | None, ceiling: Ceiling
) -> Resources:
    """The profile's resources with the author's limits on top, checked against the ceiling.

    An author's limit below the profile's request lowers the request with it,
    so a pod never asks for more than its limit.
    """
    base = profile.resources if profile else Resources()
    wanted = check_resources(requested)
    cpu_limit = wanted.get("cpu", base.cpu_limit)
    mem_limit = parse_memory(wanted["memory"]) if "memory" in wanted else base.mem_limit
    what = "This dashboard" if wanted else f"Profile {profile.display_name!r}" if profile else ""
    ceiling.check(cpu_limit, mem_limit, what or "This dashboard")
    cpu_request = base.cpu_request
    if cpu_request is not None and cpu_limit is not None:
        cpu_request = min(cpu_request, cpu_limit)
    mem_request = base.mem_request
    if mem_request is not None and mem_limit is not None:
        mem_request = min(mem_request, mem_limit)
    # No limit of its own: the ceiling is the limit, so nothing runs unbounded.
    return Resources(
        cpu_request=cpu_request,
        cpu_limit=cpu_limit if cpu_limit is not None else ceiling.cpu,
        mem_request=mem_request,
        mem_limit=mem_limit if mem_limit is not None else ceiling.memory,
    )


def _opt(raw: Mapping[str, Any], key: str, parse: Any, where: str) -> Any:
    return parse(raw[key], f"{where} {key}") if raw.get(key) is not None else None


def _check_order(r: Resources, where: str) -> None:
    if r.cpu_request and r.cpu_limit and r.cpu_request > r.cpu_limit:
        raise SpecError(f"{where}: cpu_request is above cpu_limit")
    if r.mem_request and r.mem_limit and r.mem_request > r.mem_limit:
        raise SpecError(f"{where}: mem_request is above mem_limit")
