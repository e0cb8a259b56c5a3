"""What an LTI launch means for hub_viz: pure functions, no I/O, no ltiauthenticator.

- :func:`launch_13` / :func:`launch_11` read a verified LTI 1.3 id_token or
  LTI 1.1 launch parameters into a :class:`Launch`.
- :func:`course_groups` names the course's hub groups: ``course-<context>``
  for everyone launched from the course, plus ``course-<context>-instructors``
  for instructors, teaching assistants and content developers.
  :func:`merge_groups` swaps those into the user's current groups, leaving
  other courses' and non-course groups alone, and adds the course groups of
  the courses this one was copied from (:func:`copied_from`, from the custom
  fields the developer key asks for), so copied links keep opening.
- :func:`resolve_target` turns the launch's deep link (a ``dashboard``
  custom parameter, or a link on this hub) into a path on this hub, refusing
  any other host.
- :func:`canvas_developer_key` is the LTI 1.3 developer key JSON for Canvas.

Group names use the context *id* (stable and unique; Canvas sends a 40-hex
hash), not the label or title, which instructors can rename: a renamed course
keeps its group and its shares.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from .errors import LaunchError

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
CUSTOM_CLAIM = CLAIM + "custom"
DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/"
DEEP_LINKING = "LtiDeepLinkingRequest"
PICK_PATH = "lti13/pick"  # the deep-linking placements' target: the picker, inside the frame
STAFF_ROLES = frozenset({"instructor", "teachingassistant", "contentdeveloper"})
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
GROUP_PREFIX = "course-"
INSTRUCTORS_SUFFIX = "-instructors"
SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
SLUG = re.compile(r"[a-z](?:[a-z0-9]|-(?!-)){0,29}")  # as hub_viz.service.dashboards.SLUG
OWNER = re.compile(r"[^/\\?#%\x00-\x1f\x7f]{1,255}")  # a hub username; spaces allowed
MAX_URL = 2048


@dataclass(frozen=True)
class Launch:
    """The parts of a launch hub_viz uses."""

    context_id: str = ""
    context_label: str = ""
    context_title: str = ""
    roles: tuple[str, ...] = ()
    dashboard: str = ""  # custom parameter "dashboard": "owner/slug"
    target: str = ""  # target_link_uri (1.3) or custom_next (1.1)
    message_type: str = ""
    deployment_id: str = ""
    deep_linking: Mapping[str, Any] | None = None  # the deep_linking_settings claim
    history: tuple[str, ...] = ()  # context ids of the courses this one was copied from

    @property
    def staff(self) -> bool:
        return is_staff(self.roles)

    @property
    def picking(self) -> bool:
        """A Deep Linking request: the platform asks the tool for links to add."""
        return self.message_type == DEEP_LINKING


def launch_13(token: Mapping[str, Any]) -> Launch:
    """A verified LTI 1.3 id_token's context, roles and deep link."""
    context = token.get(CLAIM + "context") or {}
    custom = token.get(CUSTOM_CLAIM) or {}
    roles = token.get(CLAIM + "roles") or []
    if not isinstance(context, Mapping) or not isinstance(custom, Mapping):
        raise LaunchError("The launch's context or custom claim is not an object.")
    if not isinstance(roles, list):
        raise LaunchError("The launch's roles claim is not a list.")
    return Launch(
        context_id=_text(context.get("id")),
        context_label=_text(context.get("label")),
        context_title=_text(context.get("title")),
        roles=tuple(r for r in roles if isinstance(r, str)),
        dashboard=_text(custom.get("dashboard")),
        target=_text(token.get(CLAIM + "target_link_uri")),
        message_type=_text(token.get(CLAIM + "message_type")),
        deployment_id=_text(token.get(CLAIM + "deployment_id")),
        deep_linking=_deep_linking(token),
        history=copied_from(custom, _text(context.get("id"))),
    )


def _deep_linking(token: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if token.get(CLAIM + "message_type") != DEEP_LINKING:
        return None
    settings = token.get(DL_CLAIM + "deep_linking_settings")
    if not isinstance(settings, Mapping):
        raise LaunchError(
            "The course site asked for links but sent no deep-linking settings; "
            "open the tool from the course again."
        )
    url = urlsplit(_text(settings.get("deep_link_return_url")))
    if (
        url.scheme not in ("https", "http")
        or not url.hostname
        or (url.scheme == "http" and url.hostname not in ("127.0.0.1", "localhost", "::1"))
    ):
        raise LaunchError("The course site's deep-linking return address is not an https URL.")
    return settings


def launch_11(params: Mapping[str, str]) -> Launch:
    """LTI 1.1 launch parameters (already signature-checked)."""
    return Launch(
        context_id=params.get("context_id", "").strip(),
        context_label=params.get("context_label", "").strip(),
        context_title=params.get("context_title", "").strip(),
        roles=tuple(r.strip() for r in params.get("roles", "").split(",") if r.strip()),
        dashboard=params.get("custom_dashboard", "").strip(),
        target=params.get("custom_next", "").strip(),
        history=copied_from(
            {k[len("custom_") :]: v for k, v in params.items() if k.startswith("custom_")},
            params.get("context_id", "").strip(),
        ),
    )


# The custom fields the developer key asks for: the course-copy history, as LTI names
# it and as Canvas does (the whole chain of copies). A platform that does not know a
# variable sends its name unchanged ("$Context.id.history"): that is no history.
HISTORY_FIELDS = {
    "context_history": "$Context.id.history",
    "previous_context_ids": "$Canvas.course.previousContextIds.recursive",
}
MAX_HISTORY = 20


def copied_from(custom: Mapping[str, Any], context_id: str) -> tuple[str, ...]:
    """The context ids a launch's course was copied from (most recent first), from its
    custom fields; unsubstituted variables and the course's own id left out."""
    ids: list[str] = []
    for key in HISTORY_FIELDS:
        value = custom.get(key)
        if not isinstance(value, str) or value.strip().startswith("$"):
            continue
        ids += [i.strip() for i in value.split(",") if i.strip()]
    return tuple(i for i in dict.fromkeys(ids) if i != context_id)[:MAX_HISTORY]


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


# -- roles and groups -----------------------------------------------------------


def role_name(role: str) -> str | None:
    """The course (context) role a role string names, lowercased; None for other roles.

    LTI 1.3 ``…/lis/v2/membership#Instructor`` and sub-roles like
    ``…/membership/Instructor#TeachingAssistant`` (the principal role counts);
    LTI 1.1 ``urn:lti:role:ims/lis/TeachingAssistant`` and
    ``urn:lti:role:ims/lis/Instructor/TeachingAssistant``; simple names like
    ``Instructor``. Institution and system roles (``…/institution/person#…``,
    ``urn:lti:instrole:…``, ``urn:lti:sysrole:…``) are not course roles.
    """
    role = role.strip()
    if role.startswith(LIS + "membership#"):
        return role.split("#", 1)[1].lower() or None
    if role.startswith(LIS + "membership/"):
        return role[len(LIS + "membership/") :].split("#", 1)[0].lower() or None
    if role.startswith("urn:lti:role:ims/lis/"):
        return role[len("urn:lti:role:ims/lis/") :].split("/", 1)[0].lower() or None
    if ":" in role or "/" in role or "#" in role:
        return None
    return role.lower() or None


def is_staff(roles: Iterable[str]) -> bool:
    """Does the launch make the user an instructor, TA or content developer of its course?"""
    return any(role_name(r) in STAFF_ROLES for r in roles)


def course_key(context_id: str) -> str:
    """The context id as it goes into a group name (hashed when it has unsafe characters)."""
    if SAFE_ID.fullmatch(context_id):
        return context_id
    return hashlib.sha256(context_id.encode()).hexdigest()[:32]


def context_groups(context_id: str) -> tuple[str, str]:
    """(course group, instructors group) of a context."""
    group = GROUP_PREFIX + course_key(context_id)
    return group, group + INSTRUCTORS_SUFFIX


def course_groups(launch: Launch) -> list[str]:
    """The course groups this launch puts the user in (none without a context).

    Instructors are in both, so they can share with the course group they
    belong to and see what the course sees.
    """
    if not launch.context_id:
        return []
    group, instructors = context_groups(launch.context_id)
    return [group, instructors] if launch.staff else [group]


def history_groups(launch: Launch) -> list[str]:
    """The course groups of the courses this launch's course was copied from.

    Members of a copy see what was shared with the original: links copied
    with the course keep opening. Only the course group (never its
    instructors group): teaching the copy gives no say over the original.
    """
    if not launch.context_id:
        return []
    return [context_groups(h)[0] for h in launch.history]


def merge_groups(current: Iterable[str], launch: Launch) -> list[str]:
    """The user's groups after this launch: this course's groups replaced, the groups of
    the courses it was copied from added, the rest kept.

    JupyterHub's ``manage_groups`` sets the user's groups to exactly this
    list, so it must carry the groups this launch says nothing about: other
    courses' (a launch speaks for its own course only) and non-course groups.
    """
    current = list(dict.fromkeys(current))
    if not launch.context_id:
        return current
    own = set(context_groups(launch.context_id))
    kept = [g for g in current if g not in own]
    return kept + [g for g in course_groups(launch) + history_groups(launch) if g not in kept]


# -- deep links ---------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where the user goes after login: a path on this hub, and the dashboard it opens."""

    path: str | None = None  # None: the hub's default (home page)
    dashboard: tuple[str, str] | None = None  # (owner, slug)


def parse_dashboard(value: str) -> tuple[str, str]:
    """``"owner/slug"`` -> ``("owner", "slug")``; LaunchError when malformed."""
    owner, sep, slug = value.strip().partition("/")
    if (
        not sep
        or not OWNER.fullmatch(owner)
        or owner in (".", "..")
        or not SLUG.fullmatch(slug)
        or slug.endswith("-")
    ):
        raise LaunchError(
            "The launch's custom parameter 'dashboard' must be OWNER/SLUG, e.g. "
            "dashboard=alice/sales."
        )
    return owner, slug


def safe_path(value: str, host: str, scheme: str = "https") -> str:
    """A link from a launch as a path (and query) on this hub; LaunchError otherwise.

    Accepts a path (``/services/…``) or an absolute http(s) URL on ``host``.
    Refuses other hosts and everything a browser might read as one:
    ``//evil``, ``https://evil``, ``/\\evil``, ``https:evil``, encoded
    slashes or backslashes, control characters, user-info tricks.
    """
    refuse = LaunchError(
        "The launch's link does not point to a page of this hub; only links to this "
        "hub's pages are followed."
    )
    if not value or len(value) > MAX_URL or any(ch.isspace() for ch in value):
        raise refuse
    decoded = value
    for _ in range(3):  # what a browser or proxy may decode on the way
        if "\\" in decoded or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in decoded):
            raise refuse
        decoded = unquote(decoded)
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        if parts.scheme.lower() not in ("http", "https") or not _same_host(parts, host, scheme):
            raise refuse
    path = parts.path
    plain = unquote(unquote(path))
    if not path.startswith("/") or plain.startswith("//") or ".." in plain.split("/"):
        raise refuse
    return path + (f"?{parts.query}" if parts.query else "")


def _same_host(parts: Any, host: str, scheme: str) -> bool:
    if "@" in parts.netloc:
        return False
    ours = urlsplit(f"{scheme}://{host}")
    default = {"http": 80, "https": 443}
    try:
        theirs_port = parts.port or default[parts.scheme.lower()]
        our_port = ours.port or default.get(scheme, 443)
    except ValueError:
        return False
    return (parts.hostname or "") == (ours.hostname or "").lower() and theirs_port == our_port


def resolve_target(
    launch: Launch,
    *,
    host: str,
    scheme: str,
    base_url: str,
    service_prefix: str,
    service_origin: str = "",
) -> Target:
    """Where this launch should land: a dashboard's open page, another hub page, or home.

    ``dashboard=owner/slug`` wins over the link; a link to
    ``<service_prefix>open/<owner>/<slug>`` names that dashboard too. A link
    to the hub's root or ``hub/`` means the default (home page). With
    ``service_origin`` (the isolated layout: the service on a host of its own)
    open pages are on that origin, and links to them there are followed too.
    """
    if launch.dashboard:
        owner, slug = parse_dashboard(launch.dashboard)
        return Target(service_origin + open_path(service_prefix, owner, slug), (owner, slug))
    if not launch.target:
        return Target()
    service = urlsplit(service_origin)
    target = urlsplit(launch.target)
    on_service = bool(service_origin) and (target.scheme, target.netloc.lower()) == (
        service.scheme,
        service.netloc.lower(),
    )
    path = safe_path(
        launch.target,
        service.netloc if on_service else host,
        service.scheme if on_service else scheme,
    )
    bare = path.split("?", 1)[0]
    if not bare.startswith(base_url):
        raise LaunchError(f"The launch's link leaves this hub's base URL {base_url}.")
    if bare.rstrip("/") in (base_url.rstrip("/"), base_url + "hub"):
        return Target()
    if bare.startswith(service_prefix + "open/"):
        owner, sep, slug = bare[len(service_prefix + "open/") :].strip("/").partition("/")
        owner, slug = parse_dashboard(f"{unquote(owner)}/{slug}" if sep else owner)
        return Target(service_origin + open_path(service_prefix, owner, slug), (owner, slug))
    if on_service:
        raise LaunchError(
            "The launch's link names a page of the dashboards service other than "
            "a dashboard's open page; only open pages are followed there."
        )
    return Target(path)


def open_path(service_prefix: str, owner: str, slug: str) -> str:
    return f"{service_prefix}open/{quote(owner, safe='')}/{slug}"


# -- Canvas --------------------------------------------------------------------


def canvas_developer_key(
    domain: str,
    *,
    title: str = "Dashboards",
    description: str = "Open the course's dashboards on the hub.",
    base_url: str = "/",
    privacy_level: str = "name_only",
    scheme: str = "https",
) -> dict[str, Any]:
    """The LTI 1.3 developer key JSON for Canvas (Admin → Developer Keys → + LTI Key).

    The tool calls no Canvas API, so it asks for no scopes. Its key set URL
    ``hub/lti13/jwks`` serves the key the tool signs its Deep Linking responses
    with. Course navigation opens in a new tab; the selection placements
    (module items, assignments, the editor's button) send a Deep Linking
    request, which opens the dashboard picker in Canvas's frame.
    """
    domain = domain.strip().lower()
    if not re.fullmatch(r"[a-z0-9.-]+(?::[0-9]{1,5})?", domain) or domain.startswith((".", "-")):
        raise ValueError(
            f"--domain must be the hub's host name, e.g. hub.example.edu; got {domain!r}"
        )
    if privacy_level not in ("public", "name_only", "email_only", "anonymous"):
        raise ValueError("privacy level must be public, name_only, email_only or anonymous")
    if scheme not in ("https", "http"):
        raise ValueError(f"scheme must be https (or http, for tests on loopback); got {scheme!r}")
    base = "/" + base_url.strip("/") + "/" if base_url.strip("/") else "/"
    hub = f"{scheme}://{domain}{base}hub/"
    target = hub + "home"
    placement = {"message_type": "LtiResourceLinkRequest", "target_link_uri": target}
    picker = {"message_type": DEEP_LINKING, "target_link_uri": hub + PICK_PATH}
    return {
        "title": title,
        "description": description,
        "oidc_initiation_url": hub + "lti13/oauth_login",
        "target_link_uri": target,
        "redirect_uris": [hub + "lti13/oauth_callback"],
        "public_jwk_url": hub + "lti13/jwks",
        "scopes": [],
        "custom_fields": dict(HISTORY_FIELDS),
        "extensions": [
            {
                "platform": "canvas.instructure.com",
                "domain": domain,
                "privacy_level": privacy_level,
                "settings": {
                    "text": title,
                    "placements": [
                        {
                            "placement": "course_navigation",
                            "text": title,
                            "windowTarget": "_blank",
                            **placement,
                        },
                        {"placement": "link_selection", "text": title, **picker},
                        {"placement": "assignment_selection", "text": title, **picker},
                        {"placement": "editor_button", "text": title, **picker},
                    ],
                },
            }
        ],
    }


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def platform_url_ok(value: Any) -> bool:
    """An https URL with a host (plain http only on loopback, for tests and local tools)."""
    parts = urlsplit(value) if isinstance(value, str) else None
    return bool(
        parts
        and parts.hostname
        and (parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK))
    )


__all__ = [
    "LOOPBACK",
    "platform_url_ok",
    "Launch",
    "Target",
    "canvas_developer_key",
    "context_groups",
    "copied_from",
    "course_groups",
    "history_groups",
    "is_staff",
    "launch_11",
    "launch_13",
    "merge_groups",
    "parse_dashboard",
    "resolve_target",
    "role_name",
    "safe_path",
]
