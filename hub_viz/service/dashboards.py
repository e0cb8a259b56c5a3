"""Dashboard records as the API sees them: validate input, who may see what, JSON out.

Everything here is pure: no hub calls, no I/O beyond looking at the owner's
files through :func:`hub_viz.spec.resolve_spec`.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import HubVizError, SpecError
from ..frameworks import MODES, PER_VIEWER, SHARED, Framework
from ..profiles import Ceiling, Profile, check_resources, effective_resources, pick_profile
from ..requirements import find_requirements, requirement_folders
from ..sources import check_git_host, check_git_ref, check_git_url
from ..spec import ResolvedSpec, check_args, check_warm_kernels, resolve_spec
from .keepwarm import check_windows
from .publishers import Publishers
from .store import Dashboard

PRIVATE, USERS, GROUPS, ALL_USERS, PUBLIC = "private", "users", "groups", "all", "public"
VISIBILITIES = (PRIVATE, USERS, GROUPS, ALL_USERS, PUBLIC)
SLUG = re.compile(r"^[a-z](?:[a-z0-9]|-(?!-)){0,29}$")
NAME = re.compile(r"^[^/\x00-\x1f]{1,255}$")
FIELDS = frozenset(
    {
        "slug",
        "title",
        "description",
        "framework",
        "entry",
        "git",
        "args",
        "mode",
        "visibility",
        "share_users",
        "share_groups",
        "profile",
        "keep_warm",
        "resources",
        "warm_kernels",
        "warm_pool",
    }
)
# Changing these restarts a running shared instance (redeploy).
SPEC_FIELDS = frozenset(
    {"framework", "entry", "git", "args", "mode", "profile", "resources", "warm_kernels"}
)
MAX_TARGETS = 500


class NotFound(HubVizError):
    status_code = 404


class Forbidden(HubVizError):
    status_code = 403


class Conflict(HubVizError):
    status_code = 409


@dataclass
class Policy:
    """What the operator allows, as the validation needs it."""

    frameworks: Mapping[str, Framework]
    allowed_frameworks: list[str]
    dashboards_root: str = "/home/{username}"
    check_files: bool = True
    git_schemes: tuple[str, ...] = ("https",)
    profiles: dict[str, Profile] = field(default_factory=dict)
    ceiling: Ceiling = field(default_factory=Ceiling)
    max_warm_kernels: int = 100
    # the most warm-pool instances on the hub, idle or handed out, all dashboards (0: none)
    warm_pool_ceiling: int = 0
    # who may publish beyond 'private' while dashboards share the hub's origin
    publishers: Publishers = field(default_factory=Publishers)
    # the hub's environment settings: enabled, root, allow_requirement_urls
    environments: dict[str, Any] = field(default_factory=dict)


def check_environment(resolved: ResolvedSpec, policy: Policy, root: Path) -> None:
    """Refuse a requirement file beside the entry that the hub would refuse to build."""
    try:
        find_requirements(
            requirement_folders(Path(resolved.cwd), resolved.entry),
            allow_urls=bool(policy.environments.get("allow_requirement_urls")),
            within=root,
        )
    except OSError:  # unreadable here: the hub checks again when it starts
        pass


def check_slug(slug: Any) -> str:
    if not isinstance(slug, str) or not SLUG.fullmatch(slug) or slug.endswith("-"):
        raise SpecError(
            "'slug' must be 1-30 characters of lowercase letters, digits and single '-', "
            "starting with a letter and not ending with '-', e.g. 'sales-2024'."
        )
    return slug


def slug_from_title(title: str) -> str:
    """A slug suggestion from a title: 'Sales by region (2024)' -> 'sales-by-region-2024'.

    Accented letters keep their base letter: 'Voilà' -> 'voila', not 'voil'.
    """
    plain = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", plain.lower())
    slug = "-".join(words)[:30].strip("-")
    if not slug:
        return "dashboard"  # nothing usable in the title (was 'd', from "d-" stripped)
    if not slug[0].isalpha():
        slug = ("d-" + slug)[:30].strip("-")
    return slug


def check_names(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"'{what}' must be a list of names.")
    if len(value) > MAX_TARGETS:
        raise SpecError(f"'{what}' may name at most {MAX_TARGETS} entries.")
    names = []
    for v in value:
        v = v.strip()
        if not NAME.fullmatch(v):
            raise SpecError(f"{v!r} in '{what}' is not a valid name.")
        if v not in names:
            names.append(v)
    return names


async def check_git_source(fields: dict[str, Any], current: Dashboard | None = None) -> None:
    """A new git URL whose host is not public is refused at publish (400), not at start.

    A name that does not resolve now passes: the instance checks it again, with
    the address it then connects to, when it fetches.
    """
    if fields.get("source_type") != "git":
        return
    if current is not None and current.source_type == "git" and current.source == fields["source"]:
        return
    await check_git_host(fields["source"], unresolved_ok=True)


def validate(
    data: Any, policy: Policy, owner: str, current: Dashboard | None = None
) -> dict[str, Any]:
    """Check a create (``current`` None) or update body; return the columns to set.

    Raises :class:`SpecError` (HTTP 400) with a message a person can act on.
    """
    merged = merged_input(data, current)
    out: dict[str, Any] = {}
    out.update(check_names_and_text(merged, current))
    out.update(check_source(merged.get("git"), policy))
    run, framework = check_run(merged, policy, owner, git=bool(merged.get("git")))
    out.update(run)
    out.update(check_audience(merged, out["mode"]))
    out.update(check_resources_and_warmth(merged, policy, framework, out["mode"]))
    return out


def merged_input(data: Any, current: Dashboard | None) -> dict[str, Any]:
    """The request's fields over the dashboard's current ones (none for a create)."""
    if not isinstance(data, dict):
        raise SpecError("The request body must be a JSON object.")
    unknown = set(data) - FIELDS
    if unknown:
        raise SpecError(f"Unknown field(s) {sorted(unknown)}; allowed: {sorted(FIELDS)}.")
    if current is not None and "slug" in data and data["slug"] != current.slug:
        raise SpecError("'slug' cannot change; publish a new dashboard instead.")
    merged = _as_input(current) if current is not None else {}
    merged.update(data)
    return merged


def check_names_and_text(merged: dict[str, Any], current: Dashboard | None) -> dict[str, Any]:
    """``slug`` (on create: given or made from the title), ``title`` and ``description``."""
    out: dict[str, Any] = {}
    title = merged.get("title")
    if current is None:
        if "slug" not in merged:
            if not isinstance(title, str) or not title.strip():
                raise SpecError("Give the dashboard a 'title' (and optionally a 'slug').")
            merged["slug"] = slug_from_title(title)
        out["slug"] = check_slug(merged["slug"])
    if title is None or (isinstance(title, str) and not title.strip()):
        title = merged.get("slug") or (current.slug if current else "")
    if not isinstance(title, str) or len(title) > 200:
        raise SpecError("'title' must be text of at most 200 characters.")
    out["title"] = title.strip()
    description = merged.get("description") or ""
    if not isinstance(description, str) or len(description) > 2000:
        raise SpecError("'description' must be text of at most 2000 characters.")
    out["description"] = description.strip()
    return out


def check_source(git: Any, policy: Policy) -> dict[str, Any]:
    """Where the code comes from: a git repository, or the owner's files ("path")."""
    if not git:
        return {"source_type": "path", "source": "", "git_ref": ""}
    if not isinstance(git, dict) or set(git) - {"url", "ref"}:
        raise SpecError("'git' must be an object with 'url' and optional 'ref'.")
    return {
        "source_type": "git",
        "source": check_git_url(git.get("url"), policy.git_schemes),
        "git_ref": check_git_ref(git.get("ref") or "main"),
    }


def check_run(
    merged: dict[str, Any], policy: Policy, owner: str, *, git: bool
) -> tuple[dict[str, Any], Framework]:
    """What runs: the entry, its framework (given or detected), mode and arguments."""
    spec = {
        "entry": merged.get("entry"),
        "mode": merged.get("mode") or SHARED,
        "args": merged.get("args") or [],
    }
    if merged.get("framework"):
        spec["framework"] = merged["framework"]
    resolved = resolve_spec(
        spec,
        root=Path(policy.dashboards_root.format(username=owner)),
        frameworks=policy.frameworks,
        allowed_frameworks=policy.allowed_frameworks,
        check_files=policy.check_files and not git,
    )
    if policy.check_files and not git and policy.environments.get("enabled", True):
        check_environment(resolved, policy, Path(policy.dashboards_root.format(username=owner)))
    return {
        "framework": resolved.framework.name,
        "entry": str(spec["entry"]).strip(),
        "mode": resolved.mode,
        "args": list(check_args(spec["args"])),
    }, resolved.framework


def check_audience(merged: dict[str, Any], mode: str) -> dict[str, Any]:
    """Who may open it: ``visibility`` and the names it is shared with."""
    visibility = merged.get("visibility") or PRIVATE
    if visibility not in VISIBILITIES:
        raise SpecError(f"Unknown visibility {visibility!r}; allowed: {', '.join(VISIBILITIES)}.")
    if visibility == PUBLIC and mode != SHARED:
        raise SpecError(
            "A public dashboard must run in shared mode (anonymous viewers cannot own an instance)."
        )
    users = check_names(merged.get("share_users"), "share_users")
    groups = check_names(merged.get("share_groups"), "share_groups")
    if visibility == USERS and not users:
        raise SpecError("Visibility 'users' needs at least one name in 'share_users'.")
    if visibility == GROUPS and not groups:
        raise SpecError("Visibility 'groups' needs at least one name in 'share_groups'.")
    return {
        "visibility": visibility,
        "share_users": users if visibility == USERS else [],
        "share_groups": groups if visibility == GROUPS else [],
    }


def check_resources_and_warmth(
    merged: dict[str, Any], policy: Policy, framework: Framework, mode: str
) -> dict[str, Any]:
    """Profile and resources within the ceiling; keep-warm windows, preheated kernels and
    the warm pool, each where the framework and mode allow it."""
    profile = merged.get("profile") or ""
    picked = pick_profile(policy.profiles, profile)
    resources = check_resources(merged.get("resources"))
    effective_resources(picked, resources, policy.ceiling)
    keep_warm = check_windows(merged.get("keep_warm"))
    if keep_warm and mode == PER_VIEWER:
        raise SpecError(
            "'keep_warm' applies to shared dashboards only; a per-viewer "
            "dashboard starts instances ahead with 'warm_pool'."
        )
    return {
        "profile": profile,
        "resources": resources,
        "keep_warm": keep_warm,
        "warm_kernels": check_warm_kernels(
            merged.get("warm_kernels"), framework, policy.max_warm_kernels
        ),
        "warm_pool": check_warm_pool(
            merged.get("warm_pool"), framework, mode, policy.warm_pool_ceiling
        ),
    }


def check_warm_pool(value: Any, framework: Framework, mode: str, ceiling: int) -> int:
    """Per-viewer instances to start ahead: 0 up to the operator's ceiling."""
    if value is None or value == 0:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SpecError("'warm_pool' must be a whole number of instances, 0 for none.")
    if mode != PER_VIEWER:
        raise SpecError(
            "'warm_pool' applies to per-viewer dashboards; a shared dashboard "
            "is kept running with 'keep_warm' (and Voilà with 'warm_kernels')."
        )
    if framework.jupyter_api == "jupyterlab":
        raise SpecError(
            f"The {framework.display_name} framework runs as its viewer's own "
            "server; it cannot be started ahead in a warm pool."
        )
    if value > ceiling:
        if not ceiling:
            raise SpecError("Warm pools are turned off on this hub ('warm_pool' must be 0).")
        raise SpecError(
            f"'warm_pool' may be at most {ceiling} on this hub: the most warm "
            "instances it runs for all dashboards together."
        )
    return value


def _as_input(d: Dashboard) -> dict[str, Any]:
    """A stored dashboard as the API's input fields (for merging an update)."""
    return {
        "slug": d.slug,
        "title": d.title,
        "description": d.description,
        "framework": d.framework,
        "entry": d.entry,
        "git": {"url": d.source, "ref": d.git_ref} if d.source_type == "git" else None,
        "args": list(d.args or []),
        "mode": d.mode,
        "visibility": d.visibility,
        "share_users": list(d.share_users or []),
        "share_groups": list(d.share_groups or []),
        "profile": d.profile,
        "keep_warm": list(d.keep_warm or []),
        "resources": dict(d.resources or {}),
        "warm_kernels": d.warm_kernels or 0,
        "warm_pool": d.warm_pool or 0,
    }


# -- who may do what --------------------------------------------------------


def can_view(d: Dashboard, user: Mapping[str, Any] | None) -> bool:
    """May ``user`` (a hub user model, None when anonymous) open ``d``?"""
    if d.visibility == PUBLIC:
        return True
    if not user:
        return False
    name = user.get("name")
    if name == d.owner or user.get("admin"):
        return True
    if d.visibility == ALL_USERS:
        return True
    if d.visibility == USERS:
        return name in (d.share_users or [])
    if d.visibility == GROUPS:
        return bool(set(user.get("groups") or []) & set(d.share_groups or []))
    return False


COURSE_PREFIX, INSTRUCTORS_SUFFIX = "course-", "-instructors"


def check_course_targets(groups: Iterable[str], user: Mapping[str, Any]) -> None:
    """Only a course's instructors may share with its groups (``course-<id>[-instructors]``).

    Course groups come from LTI launches (:mod:`hub_viz.lti_claims`); a learner in
    ``course-<id>`` must not publish to the whole class.
    """
    if user.get("admin"):
        return
    mine = set(user.get("groups") or [])
    for group in groups:
        if not group.startswith(COURSE_PREFIX):
            continue
        course = group.removesuffix(INSTRUCTORS_SUFFIX)
        if course + INSTRUCTORS_SUFFIX not in mine:
            raise Forbidden(f"Only the instructors of a course may share with its group {group!r}.")


def can_manage(d: Dashboard, user: Mapping[str, Any] | None) -> bool:
    return user is not None and (user.get("name") == d.owner or bool(user.get("admin")))


def visible(dashboards: Iterable[Dashboard], user: Mapping[str, Any] | None) -> list[Dashboard]:
    return [d for d in dashboards if can_view(d, user)]


def matches(d: Dashboard, query: str) -> bool:
    """Search box semantics: every word appears in title, description, owner or framework."""
    text = f"{d.title} {d.description} {d.owner} {d.framework} {d.slug}".lower()
    return all(word in text for word in query.lower().split())


# -- servers ------------------------------------------------------------------


def server_for(d: Dashboard, viewer: str | None) -> tuple[str, str]:
    """(owner, server name) that serves ``d`` to ``viewer``.

    Shared: the author's server named after the slug. Per-viewer: a server of
    the viewer named ``<slug prefix>-<hash of owner/slug>``, at most 30 characters.
    """
    if d.mode != PER_VIEWER:
        return d.owner, d.slug
    if not viewer:
        raise Forbidden("Log in to open this dashboard: it runs one instance per viewer.")
    digest = hashlib.sha256(d.ref.encode()).hexdigest()[:8]
    stem = d.slug[:21].rstrip("-")
    return viewer, f"{stem}-{digest}"


def as_json(d: Dashboard, *, prefix: str, manage: bool, status: str | None = None) -> dict:
    """The API's dashboard object; share targets only for those who manage it."""
    data: dict[str, Any] = {
        "owner": d.owner,
        "slug": d.slug,
        "title": d.title,
        "description": d.description,
        "framework": d.framework,
        "mode": d.mode,
        "visibility": d.visibility,
        "open_url": f"{prefix}open/{d.owner}/{d.slug}",
        "thumbnail_url": f"{prefix}api/dashboards/{d.owner}/{d.slug}/thumbnail",
        "created": _iso(d.created),
        "updated": _iso(d.updated),
        "can_manage": manage,
    }
    if status is not None:
        data["status"] = status
    if manage:
        data.update(
            entry=d.entry,
            git={"url": d.source, "ref": d.git_ref} if d.source_type == "git" else None,
            args=list(d.args or []),
            share_users=list(d.share_users or []),
            share_groups=list(d.share_groups or []),
            profile=d.profile,
            keep_warm=list(d.keep_warm or []),
            resources=dict(d.resources or {}),
            warm_kernels=d.warm_kernels or 0,
            warm_pool=d.warm_pool or 0,
            manage_url=f"{prefix}d/{d.owner}/{d.slug}",
            version=d.current_version,
            commit=d.commit or None,
            follow_branch=bool(d.follow_branch),
            auto_current=bool(d.auto_current),
            webhook=bool(d.hook_id),
            versions_url=f"{prefix}api/dashboards/{d.owner}/{d.slug}/versions",
        )
    return data


def _iso(value: Any) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


__all__ = [
    "ALL_USERS",
    "GROUPS",
    "MODES",
    "PRIVATE",
    "PUBLIC",
    "USERS",
    "VISIBILITIES",
    "Conflict",
    "Forbidden",
    "NotFound",
    "Policy",
    "as_json",
    "can_manage",
    "can_view",
    "check_slug",
    "server_for",
    "slug_from_title",
    "validate",
    "visible",
]
