"""Who is a bot: crawlers, link previews and command-line fetchers.

Shared by the service (bots never start a dashboard) and the launcher (bots
never keep one alive). Kept import-free so the launcher stays small.
"""

from __future__ import annotations

import re

# Crawlers, link previews and command-line fetchers: they never start anything.
BOT_AGENTS = re.compile(
    r"bot|crawl|spider|slurp|facebookexternalhit|embedly|preview|python-requests|curl|wget"
    r"|httpclient|headlesschrome|lighthouse",
    re.IGNORECASE,
)


def is_bot(user_agent: str) -> bool:
    """True for a missing User-Agent or one that names a crawler, preview or fetcher."""
    return not user_agent or bool(BOT_AGENTS.search(user_agent))


__all__ = ["BOT_AGENTS", "is_bot"]
