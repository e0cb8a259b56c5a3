"""Errors of hub_viz, each with a message that is safe to show to a person.

``message`` is what a user may read (no secrets, no paths outside the
dashboard, no tracebacks); ``log_message`` may carry more detail for the
operator. Only handlers and spawners turn these into HTTP or spawn errors.
"""

from __future__ import annotations


class HubVizError(Exception):
    """Base class: a problem with a message safe to show to users."""

    status_code = 400

    def __init__(self, message: str, *, log_message: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.log_message = log_message or message


class SpecError(HubVizError):
    """A dashboard spec is invalid (unknown framework, bad path, bad args)."""


class FrameworkError(HubVizError):
    """A framework record is malformed or cannot serve the given entry."""


class LaunchError(HubVizError):
    """An LTI launch hub_viz refuses (bad deep link, malformed custom parameter)."""
