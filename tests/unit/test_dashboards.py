"""Dashboard records: validate() with every refusal, slugs, who may see and manage, servers."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from hub_viz.builtin_frameworks import BUILTIN_FRAMEWORKS
from hub_viz.errors import SpecError
from hub_viz.frameworks import PER_VIEWER, SHARED
from hub_viz.profiles import Ceiling, parse_profiles
from hub_viz.service.dashboards import (
    FIELDS,
    MAX_TARGETS,
    SLUG,
    VISIBILITIES,
    Forbidden,
    Policy,
    as_json,
    can_manage,
    can_view,
    check_course_targets,
    check_slug,
    matches,
    server_for,
    slug_from_title,
    validate,
    visible,
)
from hub_viz.service.store import Dashboard

pytestmark = pytest.mark.unit

CEILING = Ceiling.parse({"cpu": 4, "memory": "8G"})
ALLOWED = ["voila", "dash", "streamlit", "notebook"]  # bokeh, panel and custom are not enabled


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    """alice's dashboards folder under a per-user root, and one profile."""
    files = {
        "dash/app.py": "import dash\napp = dash.Dash(__name__)\n",
        "voila/report.ipynb": '{"cells": []}',
        "live/app.py": "import streamlit as st\n",
        "clock/app.py": "from bokeh.io import curdoc\n",
        "plain.py": "print('no framework')\n",
    }
    for name, text in files.items():
        path = tmp_path / "alice" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return Policy(
        frameworks=BUILTIN_FRAMEWORKS,
        allowed_frameworks=ALLOWED,
        dashboards_root=str(tmp_path / "{username}"),
        profiles=parse_profiles({"big": {"cpu_limit": 4, "mem_limit": "8G"}}, CEILING),
        ceiling=CEILING,
        max_warm_kernels=50,
        warm_pool_ceiling=5,
    )


BASE = {"title": "Sales", "entry": "dash/app.py"}


def with_base(**changes: Any) -> dict[str, Any]:
    return {**BASE, **changes}


def stored(**values: Any) -> Dashboard:
    """A dashboard as the store holds it (every column set, no database needed)."""
    columns = {
        "owner": "alice",
        "slug": "sales",
        "title": "Sales",
        "description": "",
        "framework": "dash",
        "source_type": "path",
        "source": "",
        "git_ref": "",
        "entry": "dash/app.py",
        "args": [],
        "mode": SHARED,
        "visibility": "private",
        "share_users": [],
        "share_groups": [],
        "profile": "",
        "keep_warm": [],
        "resources": {},
        "warm_kernels": 0,
        "warm_pool": 0,
    }
    columns.update(values)
    return Dashboard(**columns)


# -- validate: what comes out -----------------------------------------------------------


def test_validate_minimal_create(policy):
    assert validate(dict(BASE), policy, "alice") == {
        "slug": "sales",
        "title": "Sales",
        "description": "",
        "source_type": "path",
        "source": "",
        "git_ref": "",
        "framework": "dash",  # detected from the file's imports
        "entry": "dash/app.py",
        "mode": SHARED,
        "args": [],
        "visibility": "private",
        "share_users": [],
        "share_groups": [],
        "profile": "",
        "keep_warm": [],
        "resources": {},
        "warm_kernels": 0,
        "warm_pool": 0,
    }


def test_validate_full_create(policy):
    out = validate(
        {
            "slug": "q3",
            "title": "  Quarter 3  ",
            "description": "  Numbers.  ",
            "framework": "streamlit",
            "entry": " live/app.py ",
            "args": ["--x", "1"],
            "mode": PER_VIEWER,
            "visibility": "users",
            "share_users": ["bob", " bob", "carol "],
            "share_groups": ["ignored"],
            "profile": "big",
            "resources": {"cpu": "500m", "memory": "2Gi"},
            "warm_pool": 3,
        },
        policy,
        "alice",
    )
    assert out == {
        "slug": "q3",
        "title": "Quarter 3",
        "description": "Numbers.",
        "source_type": "path",
        "source": "",
        "git_ref": "",
        "framework": "streamlit",
        "entry": "live/app.py",
        "mode": PER_VIEWER,
        "args": ["--x", "1"],
        "visibility": "users",
        "share_users": ["bob", "carol"],  # stripped, without duplicates
        "share_groups": [],  # only kept with visibility "groups"
        "profile": "big",
        "keep_warm": [],
        "resources": {"cpu": 0.5, "memory": "2Gi"},
        "warm_kernels": 0,
        "warm_pool": 3,
    }


def test_validate_slug_from_title_and_title_from_slug(policy):
    assert (
        validate({"title": "Sales by region (2024)", "entry": "dash/app.py"}, policy, "alice")[
            "slug"
        ]
        == "sales-by-region-2024"
    )
    out = validate({"slug": "by-slug", "entry": "dash/app.py"}, policy, "alice")
    assert out["title"] == "by-slug"
    assert (
        validate({"slug": "blank", "title": "   ", "entry": "dash/app.py"}, policy, "alice")[
            "title"
        ]
        == "blank"
    )


def test_validate_git_source_skips_file_checks(policy):
    out = validate(
        with_base(
            entry="not/here.py",
            framework="dash",
            git={"url": "https://github.com/org/repo.git", "ref": "v1.2"},
        ),
        policy,
        "alice",
    )
    assert (out["source_type"], out["source"], out["git_ref"], out["entry"]) == (
        "git",
        "https://github.com/org/repo.git",
        "v1.2",
        "not/here.py",
    )
    assert (
        validate(with_base(framework="dash", git={"url": "https://h.org/r.git"}), policy, "alice")[
            "git_ref"
        ]
        == "main"
    )
    # an empty git object is no git source
    assert validate(with_base(git=None), policy, "alice")["source_type"] == "path"
    assert validate(with_base(git={}), policy, "alice")["source_type"] == "path"


@pytest.mark.parametrize("visibility", VISIBILITIES)
def test_validate_keeps_share_targets_only_for_their_visibility(policy, visibility):
    out = validate(
        with_base(visibility=visibility, share_users=["bob"], share_groups=["class"]),
        policy,
        "alice",
    )
    assert out["visibility"] == visibility
    assert out["share_users"] == (["bob"] if visibility == "users" else [])
    assert out["share_groups"] == (["class"] if visibility == "groups" else [])


def test_validate_update_merges_with_the_stored_dashboard(policy):
    current = stored(visibility="users", share_users=["bob"], description="Old")
    out = validate({"title": "New title"}, policy, "alice", current=current)
    assert "slug" not in out
    assert out["title"] == "New title"
    assert out["description"] == "Old"
    assert (out["visibility"], out["share_users"]) == ("users", ["bob"])
    # the same slug may be repeated; switching visibility drops the old targets
    out = validate({"slug": "sales", "visibility": "all"}, policy, "alice", current=current)
    assert (out["visibility"], out["share_users"]) == ("all", [])
    # an empty title falls back to the slug
    assert validate({"title": ""}, policy, "alice", current=current)["title"] == "sales"
    # a stored git source stays unless replaced
    git = stored(
        source_type="git", source="https://h.org/r.git", git_ref="dev", entry="elsewhere.py"
    )
    out = validate({"description": "x"}, policy, "alice", current=git)
    assert (out["source_type"], out["source"], out["git_ref"]) == (
        "git",
        "https://h.org/r.git",
        "dev",
    )
    out = validate({"git": None, "entry": "dash/app.py"}, policy, "alice", current=git)
    assert (out["source_type"], out["source"], out["git_ref"]) == ("path", "", "")


def test_validate_keep_warm_is_normalised_kept_on_update_and_shared_only(policy):
    out = validate(
        with_base(
            keep_warm=[
                {"days": ["fri", "Mon"], "start": "09:00", "end": "11:30"},
                {"start": "13:00", "end": "24:00"},
            ]
        ),
        policy,
        "alice",
    )
    assert out["keep_warm"] == [
        {"days": ["mon", "fri"], "start": "09:00", "end": "11:30"},
        {
            "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "start": "13:00",
            "end": "24:00",
        },
    ]
    current = stored(keep_warm=out["keep_warm"])
    assert (
        validate({"title": "New"}, policy, "alice", current=current)["keep_warm"]
        == (out["keep_warm"])
    )
    assert validate({"keep_warm": []}, policy, "alice", current=current)["keep_warm"] == []
    assert validate({"keep_warm": None}, policy, "alice", current=current)["keep_warm"] == []
    with pytest.raises(SpecError) as e:
        validate(
            with_base(mode=PER_VIEWER, keep_warm=[{"start": "09:00", "end": "10:00"}]),
            policy,
            "alice",
        )
    assert e.value.message.startswith("'keep_warm' applies to shared dashboards only")
    # switching a kept-warm dashboard to per-viewer says why it cannot
    with pytest.raises(SpecError):
        validate({"mode": PER_VIEWER}, policy, "alice", current=current)


# -- validate: every refusal, with its message --------------------------------------------

SLUG_MESSAGE = (
    "'slug' must be 1-30 characters of lowercase letters, digits and single '-', "
    "starting with a letter and not ending with '-', e.g. 'sales-2024'."
)
NAMES = ", ".join(n for n in ALLOWED)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "The request body must be a JSON object."),
        ("sales", "The request body must be a JSON object."),
        (None, "The request body must be a JSON object."),
        (
            with_base(owner="bob", command=["x"]),
            f"Unknown field(s) ['command', 'owner']; allowed: {sorted(FIELDS)}.",
        ),
        ({"entry": "dash/app.py"}, "Give the dashboard a 'title' (and optionally a 'slug')."),
        (
            {"title": "   ", "entry": "dash/app.py"},
            "Give the dashboard a 'title' (and optionally a 'slug').",
        ),
        (
            {"title": 42, "entry": "dash/app.py"},
            "Give the dashboard a 'title' (and optionally a 'slug').",
        ),
        (with_base(slug="Sales"), SLUG_MESSAGE),
        (with_base(slug="2024-sales"), SLUG_MESSAGE),
        (with_base(slug="sales--q3"), SLUG_MESSAGE),
        (with_base(slug="sales-"), SLUG_MESSAGE),
        (with_base(slug="s" * 31), SLUG_MESSAGE),
        (with_base(slug=""), SLUG_MESSAGE),
        (with_base(slug=None), SLUG_MESSAGE),
        (with_base(slug="sales_q3"), SLUG_MESSAGE),
        (with_base(slug="sales\n"), SLUG_MESSAGE),
        (with_base(slug="sales", title=42), "'title' must be text of at most 200 characters."),
        (with_base(title="t" * 201), "'title' must be text of at most 200 characters."),
        (with_base(description=["x"]), "'description' must be text of at most 2000 characters."),
        (
            with_base(description="d" * 2001),
            "'description' must be text of at most 2000 characters.",
        ),
        (
            with_base(git="https://github.com/org/repo.git"),
            "'git' must be an object with 'url' and optional 'ref'.",
        ),
        (
            with_base(git={"url": "https://h.org/r.git", "branch": "x"}),
            "'git' must be an object with 'url' and optional 'ref'.",
        ),
        (
            with_base(git={"ref": "main"}, framework="dash"),
            "The git URL must be a string such as https://github.com/org/repo.git.",
        ),
        (
            with_base(git={"url": "file:///srv/repo.git"}, framework="dash"),
            "The git URL must start with https://; got 'file:///srv/repo.git'.",
        ),
        (
            with_base(git={"url": "https://h.org/r.git", "ref": "-x"}, framework="dash"),
            "The git ref must be a branch or tag name (letters, digits, '.', '_', '/', '-'; "
            "not starting with '-').",
        ),
        (
            with_base(git={"url": "https://h.org/r.git"}),
            f"The spec needs 'framework'; one of: {NAMES}.",
        ),
        ({"title": "x"}, "The spec needs 'entry': the dashboard's file, e.g. 'sales/app.py'."),
        (
            with_base(entry="../bob/app.py"),
            "'entry' must stay inside the dashboards folder ('..' is not allowed).",
        ),
        (
            with_base(entry="missing.py"),
            "The entry file 'missing.py' does not exist in the dashboards folder.",
        ),
        (
            with_base(entry="plain.py"),
            "Cannot tell which framework serves 'plain.py'. Name one of: voila, dash, streamlit.",
        ),
        (with_base(framework="vizro"), f"Unknown framework 'vizro'; allowed: {NAMES}."),
        (
            with_base(entry="clock/app.py", framework="bokeh"),
            f"The 'bokeh' framework is not enabled on this hub; allowed: {NAMES}.",
        ),
        (with_base(mode="solo"), "Unknown mode 'solo'; allowed: shared, per-viewer."),
        (
            with_base(entry="voila/report.ipynb", framework="notebook"),
            "The Notebook (JupyterLab) framework runs viewer code, so it is allowed only in "
            "mode(s): per-viewer.",
        ),
        (with_base(args="--debug"), "'args' must be a list of strings."),
        (with_base(args=["--debug"]), "The Dash framework takes no 'args'."),
        (
            with_base(visibility="friends"),
            "Unknown visibility 'friends'; allowed: private, users, groups, all, public.",
        ),
        (
            with_base(visibility="public", mode=PER_VIEWER),
            "A public dashboard must run in shared mode (anonymous viewers cannot own an instance).",
        ),
        (
            with_base(visibility="users"),
            "Visibility 'users' needs at least one name in 'share_users'.",
        ),
        (
            with_base(visibility="users", share_users=[]),
            "Visibility 'users' needs at least one name in 'share_users'.",
        ),
        (
            with_base(visibility="groups", share_users=["bob"]),
            "Visibility 'groups' needs at least one name in 'share_groups'.",
        ),
        (with_base(share_users="bob"), "'share_users' must be a list of names."),
        (with_base(share_groups=["class", 7]), "'share_groups' must be a list of names."),
        (with_base(share_users=["bob", "  "]), "'' in 'share_users' is not a valid name."),
        (with_base(share_users=["a/b"]), "'a/b' in 'share_users' is not a valid name."),
        (
            with_base(share_groups=["x" * 256]),
            f"{'x' * 256!r} in 'share_groups' is not a valid name.",
        ),
        (
            with_base(share_users=[f"u{i}" for i in range(MAX_TARGETS + 1)]),
            f"'share_users' may name at most {MAX_TARGETS} entries.",
        ),
        (with_base(profile="huge"), "Unknown profile 'huge'; known profiles: big."),
        (with_base(profile=["big"]), "Unknown profile ['big']; known profiles: big."),
    ],
)
def test_validate_refuses(policy, data, message):
    with pytest.raises(SpecError) as e:
        validate(data, policy, "alice")
    assert e.value.message == message
    assert e.value.status_code == 400


def test_validate_refuses_changing_the_slug(policy):
    with pytest.raises(SpecError) as e:
        validate({"slug": "other"}, policy, "alice", current=stored())
    assert e.value.message == "'slug' cannot change; publish a new dashboard instead."


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        (
            {"memory": "16G"},
            "This dashboard asks for 16G of memory; this hub allows at most 8G per dashboard.",
        ),
        ({"cpu": 8}, "This dashboard asks for 8 CPU; this hub allows at most 4 per dashboard."),
        (
            {"cpu": "lots"},
            "'resources.cpu' must be a number of CPU cores such as 0.5, 2 or '500m'.",
        ),
        ({"memory": "2 GB"}, "'resources.memory' must be a size such as '512M', '2G' or '1Gi'."),
        ({"gpu": 1}, "Unknown 'resources' field(s) ['gpu']; allowed: cpu, memory."),
        ("big", '\'resources\' must be an object such as {"cpu": 1, "memory": "2G"}.'),
    ],
)
def test_validate_resources_beyond_the_ceiling_or_malformed(policy, resources, message):
    with pytest.raises(SpecError) as e:
        validate(with_base(resources=resources), policy, "alice")
    assert e.value.message == message


def test_validate_unknown_profile_without_profiles(policy):
    policy.profiles = {}
    with pytest.raises(SpecError) as e:
        validate(with_base(profile="big"), policy, "alice")
    assert e.value.message == "Unknown profile 'big'; known profiles: none are configured."


def test_validate_looks_in_the_owners_folder(policy):
    with pytest.raises(SpecError, match="does not exist"):
        validate(dict(BASE), policy, "bob")


# -- slugs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Sales by region (2024)", "sales-by-region-2024"),
        ("Sales", "sales"),
        ("  Many   spaces -- and dashes  ", "many-spaces-and-dashes"),
        ("2024 results", "d-2024-results"),
        ("42", "d-42"),
        ("A very long title that goes on and on and on", "a-very-long-title-that-goes-on"),
        ("abcdefghijklmnopqrstuvwxyz abcdef", "abcdefghijklmnopqrstuvwxyz-abc"),
        ("abcdefghijklmnopqrstuvwxyzabc def", "abcdefghijklmnopqrstuvwxyzabc"),  # no trailing -
        ("1234567890123456789012345678 x", "d-1234567890123456789012345678"),
        ("", "dashboard"),
        ("!!!", "dashboard"),
        ("Überblick", "uberblick"),
        ("Voilà: café 2024", "voila-cafe-2024"),
        ("数据", "dashboard"),
    ],
)
def test_slug_from_title(title, slug):
    assert slug_from_title(title) == slug
    assert check_slug(slug) == slug


@pytest.mark.parametrize(
    "slug", ["a", "sales", "sales-2024", "a1-b2-c3", "a" * 30, "x-" * 14 + "xy"]
)
def test_check_slug_accepts(slug):
    assert check_slug(slug) == slug
    assert SLUG.fullmatch(slug)


# -- who may see and manage -------------------------------------------------------------

ANON = None
OWNER = {"name": "alice", "groups": []}
ADMIN = {"name": "root", "admin": True, "groups": []}
SHARED_USER = {"name": "bob", "groups": []}
MEMBER = {"name": "carol", "groups": ["class", "other"]}
STRANGER = {"name": "dave", "groups": ["staff"]}
VIEWERS = {
    "anonymous": ANON,
    "owner": OWNER,
    "admin": ADMIN,
    "shared user": SHARED_USER,
    "group member": MEMBER,
    "stranger": STRANGER,
}

CAN_VIEW = {  # visibility -> the viewers that may see it
    "private": {"owner", "admin"},
    "users": {"owner", "admin", "shared user"},
    "groups": {"owner", "admin", "group member"},
    "all": {"owner", "admin", "shared user", "group member", "stranger"},
    "public": set(VIEWERS),
}


@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("who", list(VIEWERS))
def test_can_view_and_can_manage(visibility, who):
    d = stored(visibility=visibility, share_users=["bob"], share_groups=["class"])
    user = VIEWERS[who]
    assert can_view(d, user) is (who in CAN_VIEW[visibility])
    assert can_manage(d, user) is (who in ("owner", "admin"))


def test_share_targets_count_only_for_their_visibility():
    # bob is named and carol's group is named, but the visibility decides
    d = stored(visibility="groups", share_users=["bob"], share_groups=["class"])
    assert not can_view(d, SHARED_USER)
    d = stored(visibility="users", share_users=["bob"], share_groups=["class"])
    assert not can_view(d, MEMBER)
    # a user model without groups
    assert not can_view(stored(visibility="groups", share_groups=["class"]), {"name": "eve"})
    assert not can_manage(stored(), {})


def test_visible_filters_in_order():
    rows = [stored(slug=v, visibility=v, share_users=["bob"]) for v in VISIBILITIES]
    assert [d.slug for d in visible(rows, SHARED_USER)] == ["users", "all", "public"]
    assert [d.slug for d in visible(rows, None)] == ["public"]


def test_matches_every_word_anywhere():
    d = stored(title="Sales by Region", description="Quarterly numbers")
    assert matches(d, "sales QUARTERLY")
    assert matches(d, "alice dash")
    assert matches(d, "")
    assert not matches(d, "sales weekly")


# -- servers ----------------------------------------------------------------------------


@pytest.mark.parametrize("viewer", [None, "alice", "bob"])
def test_server_for_shared_is_the_authors_server(viewer):
    assert server_for(stored(slug="sales"), viewer) == ("alice", "sales")


def test_server_for_per_viewer():
    d = stored(slug="sales", mode=PER_VIEWER)
    digest = hashlib.sha256(b"alice/sales").hexdigest()[:8]
    assert server_for(d, "bob") == ("bob", f"sales-{digest}")
    assert server_for(d, "carol") == ("carol", f"sales-{digest}")
    # another author's dashboard of the same slug gets another server
    assert (
        server_for(stored(owner="zoe", slug="sales", mode=PER_VIEWER), "bob")[1]
        != f"sales-{digest}"
    )
    with pytest.raises(Forbidden) as e:
        server_for(d, None)
    assert e.value.status_code == 403


@pytest.mark.parametrize(
    "slug",
    [
        "a",
        "s" * 30,
        "a" * 20 + "-" + "b" * 9,  # the 21st character is '-': cut there, no '--'
        "a" * 19 + "-b-" + "c" * 8,
        "x-" * 14 + "xy",
        "abcdefghijklmnopqrstu",
    ],
)
def test_server_for_per_viewer_names_are_valid_server_names(slug):
    d = stored(slug=check_slug(slug), mode=PER_VIEWER)
    owner, name = server_for(d, "bob")
    assert owner == "bob"
    assert len(name) <= 30
    assert not name.endswith("-") and "--" not in name
    assert SLUG.fullmatch(name), name
    assert name.startswith(slug[:21].rstrip("-") + "-")
    assert server_for(d, "carol")[1] == name  # the same name for every viewer


# -- JSON ---------------------------------------------------------------------------------


def test_as_json_shows_targets_only_to_managers():
    d = stored(visibility="users", share_users=["bob"], args=["--x"], profile="big")
    public = as_json(d, prefix="/services/hub-viz/", manage=False, status="running")
    assert public["open_url"] == "/services/hub-viz/open/alice/sales"
    assert public["thumbnail_url"] == "/services/hub-viz/api/dashboards/alice/sales/thumbnail"
    assert public["status"] == "running" and public["can_manage"] is False
    for key in (
        "entry",
        "git",
        "args",
        "share_users",
        "share_groups",
        "profile",
        "keep_warm",
        "manage_url",
    ):
        assert key not in public
    managed = as_json(d, prefix="/services/hub-viz/", manage=True)
    assert "status" not in managed
    assert managed["share_users"] == ["bob"] and managed["git"] is None
    assert managed["manage_url"] == "/services/hub-viz/d/alice/sales"
    assert managed["keep_warm"] == []


# -- course groups (from LTI launches) ---------------------------------------------------


def test_only_a_courses_instructors_share_with_its_groups():
    instructor = {"name": "prof", "groups": ["course-abc", "course-abc-instructors"]}
    learner = {"name": "ann", "groups": ["course-abc"]}
    admin = {"name": "root", "admin": True, "groups": []}
    for group in ("course-abc", "course-abc-instructors"):
        check_course_targets([group], instructor)
        check_course_targets([group], admin)
        with pytest.raises(Forbidden) as e:
            check_course_targets([group], learner)
        assert e.value.message == (
            f"Only the instructors of a course may share with its group {group!r}."
        )
    # other groups are not course groups; another course's instructors are not this one's
    check_course_targets(["lab", "team-1"], learner)
    with pytest.raises(Forbidden):
        check_course_targets(["course-xyz"], instructor)


# -- warm starts ----------------------------------------------------------------------


def test_validate_warm_kernels_for_voila(policy):
    out = validate(
        {"title": "R", "entry": "voila/report.ipynb", "warm_kernels": 30}, policy, "alice"
    )
    assert out["warm_kernels"] == 30 and out["framework"] == "voila"
    assert (
        validate(
            {"title": "R", "entry": "voila/report.ipynb", "keep_warm": "always"}, policy, "alice"
        )["keep_warm"][0]["end"]
        == "24:00"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"entry": "dash/app.py", "warm_kernels": 2},
            "The Dash framework has no preheated kernels; 'warm_kernels' is for Voilà dashboards.",
        ),
        (
            {"entry": "voila/report.ipynb", "warm_kernels": 51},
            "'warm_kernels' may be at most 50 on this hub",
        ),
        (
            {"entry": "voila/report.ipynb", "warm_kernels": -1},
            "'warm_kernels' must be a whole number of kernels, 0 for none.",
        ),
        (
            {"entry": "voila/report.ipynb", "warm_kernels": "3"},
            "'warm_kernels' must be a whole number of kernels, 0 for none.",
        ),
        (
            {"entry": "voila/report.ipynb", "warm_kernels": True},
            "'warm_kernels' must be a whole number of kernels, 0 for none.",
        ),
        ({"entry": "dash/app.py", "warm_pool": 2}, "'warm_pool' applies to per-viewer dashboards"),
        (
            {"entry": "dash/app.py", "mode": PER_VIEWER, "warm_pool": 6},
            "'warm_pool' may be at most 5 on this hub",
        ),
        (
            {"entry": "dash/app.py", "mode": PER_VIEWER, "warm_pool": 1.5},
            "'warm_pool' must be a whole number of instances, 0 for none.",
        ),
        (
            {
                "entry": "voila/report.ipynb",
                "framework": "notebook",
                "mode": PER_VIEWER,
                "warm_pool": 1,
            },
            "cannot be started ahead in a warm pool",
        ),
        (
            {"entry": "dash/app.py", "mode": PER_VIEWER, "keep_warm": "always"},
            "'keep_warm' applies to shared dashboards only",
        ),
    ],
)
def test_validate_refuses_warm_settings_with_a_reason(policy, changes, message):
    with pytest.raises(SpecError) as e:
        validate({"title": "W", **changes}, policy, "alice")
    assert message in e.value.message
    assert e.value.status_code == 400


def test_warm_pools_off_says_so(policy):
    policy.warm_pool_ceiling = 0
    with pytest.raises(SpecError, match="Warm pools are turned off on this hub"):
        validate(
            {"title": "W", "entry": "dash/app.py", "mode": PER_VIEWER, "warm_pool": 1},
            policy,
            "alice",
        )
