"""``hub-viz``: the project's command line.

``hub-viz demo``        set up and run the demo hub with the example dashboards
``hub-viz frameworks``  list the built-in frameworks and how they are served
``hub-viz publish``     publish a dashboard through the service API
``hub-viz list``        dashboards you may see
``hub-viz open-url``    the URL that opens a dashboard
``hub-viz unpublish``   stop and remove a dashboard
``hub-viz usage``       deployments and running time per dashboard
``hub-viz versions``    a dashboard's versions: list, new, preview, make current (roll back)
``hub-viz k8s-manifest`` the pod a dashboard would get on Kubernetes (run beside the hub)
``hub-viz lti-config``  the LTI 1.3 developer key JSON to paste into Canvas
``hub-viz lti-register`` a one-time URL that installs the hub in Canvas (Dynamic Registration)
``hub-viz lti-rotate-key`` a new LTI signing key, without breaking responses in flight
``hub-viz lti-platforms`` the registered LTI platforms; which of their deployments may launch

The API commands talk to ``<hub>/services/<service>/api/`` with a hub API
token (``--token`` or ``JUPYTERHUB_API_TOKEN``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .builtin_frameworks import BUILTIN_FRAMEWORKS
from .client import DEFAULT_HUB_URL, DEFAULT_SERVICE, APIError, Client, split_ref
from .demo import DEMO_HOST, run_demo


def demo(options: argparse.Namespace) -> int:
    return run_demo(options.ip, options.port, path_based=options.path_based)


def frameworks(options: argparse.Namespace) -> int:
    width = max(len(name) for name in BUILTIN_FRAMEWORKS)
    for name, fw in BUILTIN_FRAMEWORKS.items():
        detect = ", ".join(fw.suffixes) or "named only"
        print(
            f"{name:<{width}}  {fw.display_name:<22} modes: {'/'.join(fw.modes):<18} detect: {detect}"
        )
    return 0


# -- the service API ------------------------------------------------------------

MODES = ("shared", "per-viewer")
VISIBILITIES = ("private", "users", "groups", "all", "public")


def dashboard_ref(value: str) -> tuple[str, str]:
    """argparse type for OWNER/SLUG."""
    try:
        return split_ref(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def days_type(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 366:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 366; got {value!r}")
    return int(value)


def make_client(options: argparse.Namespace) -> Client:
    hub_url = options.hub_url or os.environ.get("JUPYTERHUB_URL") or DEFAULT_HUB_URL
    token = options.token or os.environ.get("JUPYTERHUB_API_TOKEN")
    service_url = options.service_url or os.environ.get("HUB_VIZ_SERVICE_URL") or None
    return Client(hub_url, token, options.service or DEFAULT_SERVICE, service_url=service_url)


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int] = ()
) -> str:
    """Columns padded to their widest cell; columns in ``right`` right-aligned."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def dashboards_table(items: Sequence[dict[str, Any]]) -> str:
    rows = [
        (
            f"{d['owner']}/{d['slug']}",
            d.get("framework", ""),
            d.get("mode", ""),
            d.get("visibility", ""),
            d.get("status") or "-",
            d.get("title", ""),
        )
        for d in items
    ]
    return format_table(("DASHBOARD", "FRAMEWORK", "MODE", "VISIBILITY", "STATUS", "TITLE"), rows)


def usage_row(item: dict[str, Any]) -> tuple[str, ...]:
    return (
        f"{item['owner']}/{item['slug']}",
        str(item.get("deployments", 0)),
        f"{float(item.get('instance_hours', 0)):.2f}",
        f"{100 * float(item.get('running_share', 0)):.1f}%",
        f"{float(item.get('mean_deployment_minutes', 0)):.1f}",
    )


def usage_table(items: Sequence[dict[str, Any]]) -> str:
    return format_table(
        ("DASHBOARD", "DEPLOYMENTS", "INSTANCE-HOURS", "RUNNING", "MEAN-MINUTES"),
        [usage_row(i) for i in items],
        right=(1, 2, 3, 4),
    )


def deployments_table(recent: Sequence[dict[str, Any]]) -> str:
    """One dashboard's recent runs: when each stopped (as the hub saw it) and why."""

    def when(stamp: str | None) -> str:
        return stamp.replace("T", " ")[:19] if stamp else "running"

    rows = [
        (
            r.get("server", ""),
            when(r.get("started")),
            r.get("started_by") or "-",
            when(r.get("stopped")),
            (r.get("stop_reason") or ("-" if r.get("stopped") else ""))
            + (f" ({r['stopped_by']})" if r.get("stopped_by") else ""),
        )
        for r in recent
    ]
    return format_table(("SERVER", "STARTED", "BY", "STOPPED", "WHY"), rows)


def publish_body(options: argparse.Namespace) -> dict[str, Any]:
    """The API's DashboardInput from ``hub-viz publish`` options."""
    body: dict[str, Any] = {"entry": options.entry, "title": options.title}
    for key in ("slug", "framework", "mode", "description", "profile"):
        value = getattr(options, key)
        if value is not None:
            body[key] = value
    users = [u for u in options.share_users or [] if u]
    groups = [g for g in options.share_groups or [] if g]
    visibility = options.visibility
    if visibility is None and users and groups:
        raise APIError("Give --visibility users or groups: a dashboard is shared with one kind.")
    if visibility is None:
        visibility = "users" if users else "groups" if groups else None
    if visibility is not None:
        body["visibility"] = visibility
    if users:
        body["share_users"] = users
    if groups:
        body["share_groups"] = groups
    resources = {k: v for k, v in (("cpu", options.cpu), ("memory", options.memory)) if v}
    if resources:
        body["resources"] = resources
    for key in ("warm_kernels", "warm_pool", "keep_warm"):
        if getattr(options, key) is not None:
            body[key] = getattr(options, key)
    if options.git_url:
        body["git"] = {"url": options.git_url, "ref": options.git_ref or "main"}
    elif options.git_ref:
        raise APIError("--git-ref needs --git-url.")
    return body


def publish(options: argparse.Namespace) -> int:
    client = make_client(options)
    d = client.publish(publish_body(options))
    print(
        f"Published {d['owner']}/{d['slug']} ({d['framework']}, {d['mode']}, {d['visibility']}).",
        file=sys.stderr,
    )
    print(client.open_url(d))
    return 0


def list_dashboards(options: argparse.Namespace) -> int:
    items = make_client(options).dashboards(mine=options.mine, search=options.search or "")
    if not items:
        print("No dashboards.", file=sys.stderr)
        return 0
    print(dashboards_table(items))
    return 0


def open_url(options: argparse.Namespace) -> int:
    client = make_client(options)
    print(client.open_url(client.dashboard(*options.dashboard)))
    return 0


def unpublish(options: argparse.Namespace) -> int:
    owner, slug = options.dashboard
    make_client(options).unpublish(owner, slug)
    print(f"Unpublished {owner}/{slug}.", file=sys.stderr)
    return 0


def usage(options: argparse.Namespace) -> int:
    client = make_client(options)
    if options.dashboard:
        data: Any = client.usage(*options.dashboard, days=options.days)
        items = [data]
    else:
        data = client.all_usage(days=options.days)
        items = data.get("items", [])
    if options.json:
        print(json.dumps(data, indent=2))
        return 0
    if not items:
        print("No dashboards of yours to report on.", file=sys.stderr)
        return 0
    print(usage_table(items))
    recent = items[0].get("recent") if options.dashboard else None
    if recent:
        print()
        print(deployments_table(recent))
    return 0


def versions_table(data: dict[str, Any]) -> str:
    rows = []
    for v in data.get("items", []):
        git = v.get("git") or {}
        source = f"git {git.get('commit', '')[:10]}" if git else "files"
        if not git and v.get("snapshot"):
            source = f"files {v['snapshot'][:10]}"
        usage = v.get("usage") or {}
        rows.append(
            (
                f"{v['number']}{' *' if v.get('current') else ''}",
                v.get("origin", ""),
                (v.get("created") or "")[:19].replace("T", " "),
                source,
                v.get("entry", ""),
                str(usage.get("opens", 0)),
                str(usage.get("runs", 0)),
            )
        )
    return format_table(
        ("VERSION", "ORIGIN", "CREATED", "SOURCE", "ENTRY", "OPENS", "RUNS"), rows, right=(5, 6)
    )


def versions(options: argparse.Namespace) -> int:
    """List, make, preview or make current a dashboard's versions."""
    client = make_client(options)
    owner, slug = options.dashboard
    ref = f"{owner}/{slug}"
    if options.make_current is not None:
        answer = client.make_current(owner, slug, options.make_current)
        restarted = " (its running instance restarted)" if answer.get("redeployed") else ""
        print(f"Version {answer['current']} of {ref} is current{restarted}.", file=sys.stderr)
        if answer.get("redeploy_error"):
            print(answer["redeploy_error"], file=sys.stderr)
            return 1
        return 0
    if options.preview is not None:
        answer = wait_for_preview(client, owner, slug, options.preview)
        print(client.absolute(answer["url"]))
        return 0
    if options.new:
        answer = client.new_version(owner, slug, current=not options.not_current)
        number = answer.get("new_version")
        if number is None:
            print(f"Nothing changed since version {answer.get('version')} of {ref}.")
        else:
            state = "current" if answer.get("version") == number else "not current yet"
            print(f"Version {number} of {ref} ({state}).")
        return 0
    if options.webhook:
        answer = client.webhook(owner, slug)
        print(f"Payload URL: {client.absolute(answer['url'])}")
        print(f"Secret:      {answer['secret']}")
        print(
            f"Follows branch {answer['branch']!r}. The secret is shown this once; "
            "GitHub: content type application/json, push events. GitLab: secret token.",
            file=sys.stderr,
        )
        return 0
    data = client.versions(owner, slug)
    if options.json:
        print(json.dumps(data, indent=2))
        return 0
    print(versions_table(data))
    return 0


def wait_for_preview(
    client: Client, owner: str, slug: str, number: int, timeout: float = 300
) -> dict[str, Any]:
    """Start the preview of version ``number`` and wait until it is ready."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        answer = client.preview(owner, slug, number)
        if answer.get("url"):
            return answer
        if time.monotonic() > deadline:
            raise APIError(f"The preview of version {number} did not start in {timeout:g} s.")
        time.sleep(1)


def k8s_manifest(options: argparse.Namespace) -> int:
    """The pod manifest, built offline by the spawner with the hub's own config."""
    import asyncio

    import yaml

    from .errors import HubVizError
    from .k8s_manifest import load_hub_config, pod_manifest, service_settings, stored_spec
    from .signing import ensure_key_pair

    try:
        config = load_hub_config(options.config)
        settings = service_settings(config)
        if options.spec is not None:
            if options.dashboard:
                raise APIError("Give a dashboard or --spec, not both.")
            owner, server, spec = options.owner, options.server, dict(options.spec)
        elif options.dashboard:
            owner, server, spec = stored_spec(settings, "/".join(options.dashboard), options.viewer)
        else:
            raise APIError("Name a published dashboard (OWNER/SLUG) or give --spec.")
        # the hub makes its key pair when it starts; a preview before that makes it now
        private, _ = ensure_key_pair(Path(settings["signing_key_file"]))
        key = private.read_text()
        manifest = asyncio.run(
            pod_manifest(config, owner=owner, server=server, spec=spec, signing_key=key)
        )
    except HubVizError as e:
        raise APIError(e.message) from None
    except Exception as e:
        message = getattr(e, "jupyterhub_message", None)  # the spawner refused the spec
        if message is None:
            raise
        raise APIError(message) from None
    print(
        json.dumps(manifest, indent=2)
        if options.json
        else yaml.safe_dump(manifest, sort_keys=False),
        end="",
    )
    return 0


def lti_config(options: argparse.Namespace) -> int:
    from .lti_claims import canvas_developer_key

    try:
        key = canvas_developer_key(
            options.domain,
            title=options.title,
            description=options.description,
            base_url=options.base_url,
            privacy_level=options.privacy_level,
        )
    except ValueError as e:
        raise APIError(str(e)) from None
    print(json.dumps(key, indent=2))
    return 0


def lti_register(options: argparse.Namespace) -> int:
    answer = make_client(options).lti_registration_url()
    minutes = max(1, int(answer.get("expires_in", 0)) // 60)
    print(answer["url"])
    print(
        f"Paste it once into Canvas (Admin → Developer Keys → + Developer Key → "
        f"+ LTI Registration) within {minutes} minutes; it works once, and shows what "
        "the hub asks for before you register it.",
        file=sys.stderr,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hub-viz", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="Set up and run the demo hub with example dashboards.")
    p_demo.add_argument("--ip", default="127.0.0.1", help="Address the hub listens on.")
    p_demo.add_argument("--port", type=int, default=8000, help="Port the hub listens on.")
    p_demo.add_argument(
        "--path-based",
        action="store_true",
        help=f"Serve everything from --ip instead of giving the service and each dashboard "
        f"a host of its own below {DEMO_HOST} (then only named publishers may share).",
    )
    p_demo.set_defaults(func=demo)
    p_fw = sub.add_parser("frameworks", help="List the built-in dashboard frameworks.")
    p_fw.set_defaults(func=frameworks)

    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("hub")
    group.add_argument(
        "--hub-url",
        default=None,
        help=f"The hub's public URL (default: $JUPYTERHUB_URL or {DEFAULT_HUB_URL}).",
    )
    group.add_argument(
        "--token", default=None, help="A hub API token (default: $JUPYTERHUB_API_TOKEN)."
    )
    group.add_argument(
        "--service",
        default=DEFAULT_SERVICE,
        help=f"Name of the hub_viz service (default: {DEFAULT_SERVICE}).",
    )
    common.add_argument(
        "--service-url",
        default=None,
        help="The service's public URL, e.g. https://hub-viz--service.hub.example.edu"
        "/services/hub-viz/ (default: $HUB_VIZ_SERVICE_URL, else found from --hub-url; "
        "on a hub with subdomain_host the service has a host of its own).",
    )

    p_pub = sub.add_parser("publish", parents=[common], help="Publish a dashboard.")
    p_pub.add_argument(
        "entry",
        metavar="ENTRY",
        help="File to serve, relative to your dashboards folder or the repository.",
    )
    p_pub.add_argument("--title", required=True, help="Title shown on the card.")
    p_pub.add_argument("--slug", help="Short name in URLs (default: made from the title).")
    p_pub.add_argument(
        "--framework",
        help="voila, dash, bokeh, panel, streamlit, gradio, shiny, marimo, ... "
        "(default: detected from the entry).",
    )
    p_pub.add_argument("--mode", choices=MODES, help="One shared instance, or one per viewer.")
    p_pub.add_argument(
        "--visibility",
        choices=VISIBILITIES,
        help="Who may open it (default: private, or users/groups when shared).",
    )
    p_pub.add_argument(
        "--share-user",
        dest="share_users",
        action="append",
        metavar="USER",
        help="A user to share with (repeat for more).",
    )
    p_pub.add_argument(
        "--share-group",
        dest="share_groups",
        action="append",
        metavar="GROUP",
        help="A group to share with (repeat for more).",
    )
    p_pub.add_argument("--git-url", help="Serve from this git repository (https URL).")
    p_pub.add_argument("--git-ref", help="Branch or tag of --git-url (default: main).")
    p_pub.add_argument("--description", help="A sentence or two about the dashboard.")
    p_pub.add_argument("--profile", help="One of the hub's resource profiles.")
    p_pub.add_argument("--cpu", help="CPU limit beyond the profile's, e.g. 0.5 or 500m.")
    p_pub.add_argument("--memory", help="Memory limit beyond the profile's, e.g. 2G.")
    p_pub.add_argument(
        "--keep-warm",
        choices=["always"],
        help="Keep a shared dashboard running (started without waiting for a "
        "viewer); lecture-time windows are set through the API.",
    )
    p_pub.add_argument(
        "--warm-kernels",
        type=int,
        metavar="N",
        help="Voilà: keep N kernels preheated, so new viewers see the page at once.",
    )
    p_pub.add_argument(
        "--warm-pool",
        type=int,
        metavar="N",
        help="Per-viewer: keep N instances started, handed to the next viewers.",
    )
    p_pub.set_defaults(func=publish)

    p_list = sub.add_parser("list", parents=[common], help="List the dashboards you may see.")
    p_list.add_argument("--mine", action="store_true", help="Only your own dashboards.")
    p_list.add_argument("--search", metavar="Q", help="Words that must all appear.")
    p_list.set_defaults(func=list_dashboards)

    p_open = sub.add_parser(
        "open-url", parents=[common], help="Print the URL that opens a dashboard."
    )
    p_open.add_argument("dashboard", metavar="OWNER/SLUG", type=dashboard_ref)
    p_open.set_defaults(func=open_url)

    p_unpub = sub.add_parser(
        "unpublish", parents=[common], help="Stop and remove a dashboard (and revoke its shares)."
    )
    p_unpub.add_argument("dashboard", metavar="OWNER/SLUG", type=dashboard_ref)
    p_unpub.set_defaults(func=unpublish)

    p_usage = sub.add_parser(
        "usage", parents=[common], help="Deployments and running time of your dashboards."
    )
    p_usage.add_argument(
        "dashboard",
        metavar="OWNER/SLUG",
        type=dashboard_ref,
        nargs="?",
        help="One dashboard (default: every dashboard you manage).",
    )
    p_usage.add_argument(
        "--days", type=days_type, default=30, help="Window ending now, in days (default: 30)."
    )
    p_usage.add_argument("--json", action="store_true", help="The API's JSON answer.")
    p_usage.set_defaults(func=usage)

    p_ver = sub.add_parser(
        "versions",
        parents=[common],
        help="A dashboard's versions: list them, make one from your files or branch as they "
        "are now, preview one, make one current (roll back).",
    )
    p_ver.add_argument("dashboard", metavar="OWNER/SLUG", type=dashboard_ref)
    what = p_ver.add_mutually_exclusive_group()
    what.add_argument(
        "--make-current",
        type=int,
        metavar="N",
        help="Viewers get version N from now on (a running shared instance restarts).",
    )
    what.add_argument(
        "--preview", type=int, metavar="N", help="Start version N for you alone; print its URL."
    )
    what.add_argument(
        "--new",
        action="store_true",
        help="A new version from the files (or the branch) as they are now; current unless "
        "--not-current.",
    )
    what.add_argument(
        "--webhook",
        action="store_true",
        help="Follow the git branch: print a new push webhook URL and secret (shown once).",
    )
    p_ver.add_argument("--not-current", action="store_true", help="With --new: keep it aside.")
    p_ver.add_argument("--json", action="store_true", help="The API's JSON answer.")
    p_ver.set_defaults(func=versions)

    p_k8s = sub.add_parser(
        "k8s-manifest",
        help="Print the pod a dashboard would get on Kubernetes (where the hub's config and "
        "the service's store are, e.g. kubectl exec deploy/hub -- hub-viz k8s-manifest ...).",
    )
    p_k8s.add_argument(
        "dashboard",
        metavar="OWNER/SLUG",
        type=dashboard_ref,
        nargs="?",
        help="A published dashboard.",
    )
    p_k8s.add_argument(
        "--config",
        default="jupyterhub_config.py",
        help="The hub's config file (default: ./jupyterhub_config.py; the "
        "chart's hub has /usr/local/etc/jupyterhub/jupyterhub_config.py).",
    )
    p_k8s.add_argument("--viewer", help="For a per-viewer dashboard: whose instance.")
    p_k8s.add_argument(
        "--spec",
        type=json.loads,
        help="A spec as JSON instead of a published dashboard, e.g. "
        '\'{"framework": "voila", "entry": "report.ipynb"}\'.',
    )
    p_k8s.add_argument(
        "--server", default="preview", help="With --spec: the server name (default: preview)."
    )
    p_k8s.add_argument("--owner", default="owner", help="With --spec: whose server.")
    p_k8s.add_argument("--json", action="store_true", help="JSON instead of YAML.")
    p_k8s.set_defaults(func=k8s_manifest)

    p_lti = sub.add_parser(
        "lti-config",
        help="Print the LTI 1.3 developer key JSON for Canvas "
        "(Admin → Developer Keys → + LTI Key → Paste JSON).",
    )
    p_lti.add_argument("--domain", required=True, help="The hub's host name, e.g. hub.example.edu.")
    p_lti.add_argument("--title", default="Dashboards", help="Name of the tool in Canvas.")
    p_lti.add_argument(
        "--description",
        default="Open the course's dashboards on the hub.",
        help="Description shown to Canvas admins.",
    )
    p_lti.add_argument("--base-url", default="/", help="The hub's base URL (default: /).")
    p_lti.add_argument(
        "--privacy-level",
        default="name_only",
        choices=("anonymous", "name_only", "email_only", "public"),
        help="What Canvas tells the hub about a user (usernames come from "
        "the stable 'sub' claim whatever you pick).",
    )
    p_lti.set_defaults(func=lti_config)

    p_reg = sub.add_parser(
        "lti-register",
        parents=[common],
        help="Print a single-use registration URL that installs the hub in Canvas (LTI "
        "Dynamic Registration); needs an admin's token.",
    )
    p_reg.set_defaults(func=lti_register)

    p_plat = sub.add_parser(
        "lti-platforms",
        parents=[common],
        help="List the LTI platforms registered by Dynamic Registration and the deployments "
        "each accepts launches from; with --deployments, set them; needs an admin's token.",
    )
    p_plat.add_argument("--issuer", help="The platform's issuer (as listed).")
    p_plat.add_argument("--client-id", help="The platform's client id (as listed).")
    p_plat.add_argument(
        "--deployments",
        nargs="*",
        metavar="ID",
        help="The deployment ids that may launch (Canvas: Settings → Apps → the tool's gear "
        "→ Deployment Id); none after the flag: any deployment.",
    )
    p_plat.set_defaults(func=lti_platforms)

    p_rot = sub.add_parser(
        "lti-rotate-key",
        parents=[common],
        help="Rotate the key the hub signs LTI Deep Linking responses with: the new key is "
        "published at once and signs after a delay, the old one stays published a day; "
        "needs an admin's token.",
    )
    p_rot.add_argument(
        "--immediately",
        action="store_true",
        help="For a leaked key: sign with the new key now and unpublish the old one "
        "(pickers open right now may fail once).",
    )
    p_rot.set_defaults(func=lti_rotate_key)
    return parser


def lti_platforms(options: argparse.Namespace) -> int:
    client = make_client(options)
    if options.deployments is not None:
        if not options.issuer or not options.client_id:
            raise APIError(
                "--deployments needs --issuer and --client-id (see hub-viz lti-platforms)."
            )
        client.lti_set_deployments(options.issuer, options.client_id, options.deployments)
    for p in client.lti_platforms():
        if options.issuer and (p["issuer"], p["client_id"]) != (options.issuer, options.client_id):
            continue
        allowed = ", ".join(p.get("deployments") or []) or "any"
        print(f"{p['issuer']}\tclient id {p['client_id']}\tdeployments: {allowed}")
    return 0


def lti_rotate_key(options: argparse.Namespace) -> int:
    done = make_client(options).lti_rotate_key(immediately=options.immediately)
    print(done["kid"])
    if options.immediately:
        print("The new key signs now; the old one is no longer published.", file=sys.stderr)
    else:
        wait = max(0, int(done["signs_from"] - time.time()))
        keep = max(0, int(done["previous_until"] - done["signs_from"]))
        print(
            f"The new key is published now and signs in {wait} seconds; the old one stays "
            f"published {keep // 3600} hours after that.",
            file=sys.stderr,
        )
    return 0


def run(argv: Sequence[str] | None = None) -> int:
    """Parse and run; API problems are printed to stderr and give status 1."""
    options = build_parser().parse_args(argv)
    try:
        return options.func(options)
    except APIError as e:
        print(f"hub-viz {options.command}: {e.message}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> None:
    sys.exit(run(argv))


if __name__ == "__main__":
    main()
