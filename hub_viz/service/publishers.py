"""Who may share a dashboard beyond ``private`` when dashboards live on the hub's origin.

With JupyterHub's ``subdomain_host`` every dashboard is served on a host of
its own (the isolated layout) and any author may share. Without it (the
path-based layout) a dashboard's page runs on the hub's own origin, where its
script can act as its viewer on the hub: there only hub admins and the
publishers the operator names (``configure(c, publishers=[...])``: user names
and ``group:<name>`` entries) may make a dashboard visible to anyone but its
author. Seed dashboards (``configure(publish=...)``) are the operator's own
and are not checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import HubVizError

GROUP_PREFIX = "group:"
PRIVATE = "private"  # the one visibility everyone may publish (dashboards.PRIVATE)

LIMIT = (
    "On this hub only hub admins and the publishers its operator names may share a "
    "dashboard beyond 'private': dashboards are served from the hub's own address, where "
    "a dashboard's page could act for whoever opens it. Keep it private, or ask the "
    "operator to name you in configure(c, publishers=[...]) or to give every dashboard "
    "a host of its own (JupyterHub's subdomain_host)."
)


class NotAPublisher(HubVizError):
    status_code = 403


@dataclass(frozen=True)
class Publishers:
    """The operator's publishers and whether dashboards have origins of their own."""

    isolated: bool = False
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[Any], isolated: bool = False) -> Publishers:
        """``["alice", "group:teachers"]``; ValueError with what to write instead."""
        if isinstance(entries, str):
            raise ValueError(f"publishers must be a list of names, e.g. [{entries!r}].")
        users: set[str] = set()
        groups: set[str] = set()
        for entry in entries:
            name = entry.strip() if isinstance(entry, str) else ""
            if name.startswith(GROUP_PREFIX):
                group = name[len(GROUP_PREFIX) :].strip()
                if not group:
                    raise ValueError(
                        f"{entry!r} in publishers names no group; "
                        "write 'group:<name>', e.g. 'group:teachers'."
                    )
                groups.add(group)
            elif name:
                users.add(name)
            else:
                raise ValueError(f"{entry!r} in publishers is not a user name or 'group:<name>'.")
        return cls(isolated, frozenset(users), frozenset(groups))

    def may_share(self, user: Mapping[str, Any]) -> bool:
        """May ``user`` (a hub user model) publish beyond ``private``?"""
        if self.isolated or user.get("admin"):
            return True
        return user.get("name") in self.users or bool(self.groups & set(user.get("groups") or []))

    def limit_for(self, user: Mapping[str, Any]) -> str:
        """The sentence that explains the limit to ``user``; empty when there is none."""
        return "" if self.may_share(user) else LIMIT

    def check(self, user: Mapping[str, Any], visibility: str) -> None:
        """403 when ``user`` may not publish or keep a dashboard at ``visibility``."""
        if visibility != PRIVATE and not self.may_share(user):
            raise NotAPublisher(LIMIT)

    def startup_warning(self) -> str:
        """What the service logs at start-up in the path-based layout ('' when isolated)."""
        if self.isolated:
            return ""
        named = sorted(self.users) + [GROUP_PREFIX + g for g in sorted(self.groups)]
        who = ", ".join(named) if named else "nobody else"
        return (
            "Path-based layout: JupyterHub.subdomain_host is not set, so every dashboard is "
            "served from the hub's own origin, where its page can act as its viewer on the "
            "hub. Only hub admins and these publishers may publish beyond 'private': "
            f"{who}. Set subdomain_host to give each dashboard a host of its own, or name "
            "trusted authors with configure(c, publishers=[...])."
        )


__all__ = ["LIMIT", "NotAPublisher", "Publishers"]
