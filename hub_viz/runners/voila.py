"""Voilà behind the launcher: ``python -m hub_viz.runners.voila <Voilà's arguments>``.

Voilà listens without tornado's ``xheaders``, so behind an HTTPS hub it
takes its own scheme to be ``http``: ``request.full_url()``, which a notebook
reads as ``VOILA_REQUEST_URL`` (the query-strings example builds links from
it), names ``http://``. This runs Voilà unchanged but for ``xheaders``: it
takes the scheme and the viewer's address from the forwarding headers, which
only the launcher sends (Voilà listens on 127.0.0.1, and the launcher drops
every forwarding header a viewer sent and sets its own).
"""

from __future__ import annotations

from typing import Any

from voila.app import Voila


class ProxiedVoila(Voila):
    """Voilà whose server trusts the launcher's ``X-Forwarded-*`` headers."""

    def listen(self) -> None:
        listen = self.app.listen

        def with_xheaders(port: int, address: str = "", **kwargs: Any) -> Any:
            kwargs.setdefault("xheaders", True)
            return listen(port, address, **kwargs)

        self.app.listen = with_xheaders
        super().listen()


main = ProxiedVoila.launch_instance

if __name__ == "__main__":
    main()
