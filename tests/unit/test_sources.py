"""Git sources: which URLs and refs pass, by their form (hosts: test_netcheck, clones: test_gitfetch)."""

from __future__ import annotations

import pytest

from hub_viz.errors import SpecError
from hub_viz.sources import GitSource, check_git_ref, check_git_url

pytestmark = pytest.mark.unit

# -- URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/org/repo.git",
        "https://github.com/org/repo",
        "https://gitlab.example.org:8443/group/sub/repo.git",
        "https://10.0.0.5/repo.git",  # the form is fine; the host check refuses it
        "https://[2606:4700::1111]/repo.git",
        "https://[::1]:8443/repo.git",
        "https://0x7f000001/repo.git",
        "https://h.org/a/b/c/d",
    ],
)
def test_check_git_url_accepts(url):
    assert check_git_url(url) == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (None, "must be a string"),
        ("", "must be a string"),
        (42, "must be a string"),
        ("https://h.org/" + "r" * 500, "must be a string"),
        ("https://h.org/my repo.git", "may not contain spaces"),
        ("https://h.org/repo.git\n", "may not contain spaces"),
        ("https://h.org/re\x00po.git", "control characters"),
        ("http://github.com/org/repo.git", "must start with https://"),
        ("git@github.com:org/repo.git", "must start with https://"),
        ("ssh://git@github.com/org/repo.git", "must start with https://"),
        ("file:///srv/repo.git", "must start with https://"),
        ("ext::sh -c touch% /tmp/pwned", "may not contain spaces"),
        ("ext::sh", "must start with https://"),
        ("--upload-pack=touch /tmp/x", "may not contain spaces"),
        ("-uhttps://h.org/x", "must start with https://"),
        ("/srv/repo.git", "must start with https://"),
        ("https://user:secret@github.com/org/repo.git", "user name or password"),
        ("https://token@github.com/org/repo.git", "user name or password"),
        ("https:///org/repo.git", "needs a host name"),
        ("https://h_o.org/repo.git", "needs a host name"),
        ("https://h.org:99999999/repo.git", "needs a host name"),
        ("https://h.org:99999/repo.git", "needs a host name"),
        ("https://h.org:0/repo.git", "needs a host name"),
        ("https://github.com./org/repo.git", "needs a host name"),
        ("https://-h.org/repo.git", "needs a host name"),
        ("https://[::1/repo.git", "needs a host name"),
        ("https://[::1]x/repo.git", "needs a host name"),
        ("https://[fe80::1%25eth0]/repo.git", "needs a host name"),
        ("https://h.org", "needs a repository path"),
        ("https://h.org/", "needs a repository path"),
        ("https://h.org/org/../../etc", "needs a repository path"),
    ],
)
def test_check_git_url_refuses(url, message):
    with pytest.raises(SpecError) as e:
        check_git_url(url)
    assert message in e.value.message


def test_check_git_url_schemes():
    url = "file:///srv/git/repo.git"
    assert check_git_url(url, ("file",)) == url
    assert check_git_url("https://h.org/r.git", ("https", "file")) == "https://h.org/r.git"
    with pytest.raises(SpecError, match="must start with file://"):
        check_git_url("https://h.org/r.git", ("file",))
    with pytest.raises(SpecError, match=r"must start with https:// or file://"):
        check_git_url("ssh://h.org/r.git", ("https", "file"))
    for bad in ("file://server/srv/repo.git", "file://localhost/srv/repo.git", "file:repo.git"):
        with pytest.raises(SpecError, match="absolute path"):
            check_git_url(bad, ("file",))


# -- refs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref", ["main", "v1.2.3", "release/2024-q1", "feature_x", "_private", "0abc", "a" * 200]
)
def test_check_git_ref_accepts(ref):
    assert check_git_ref(ref) == ref


@pytest.mark.parametrize(
    "ref",
    [
        None,
        "",
        7,
        "-b",
        "--upload-pack=x",
        ".hidden",
        "/main",
        "main/",
        "a..b",
        "a b",
        "main;rm",
        "a~1",
        "HEAD^",
        "a:b",
        "refs@{1}",
        "a" * 201,
        "main\n",
    ],
)
def test_check_git_ref_refuses(ref):
    with pytest.raises(SpecError, match="must be a branch or tag name"):
        check_git_ref(ref)


def test_git_source_from_spec():
    assert GitSource.from_spec({"url": "https://h.org/r.git"}) == GitSource("https://h.org/r.git")
    assert GitSource.from_spec({"url": "file:///r", "ref": "v1"}, ("file",)) == GitSource(
        "file:///r", "v1"
    )
    for bad in ("https://h.org/r.git", None, ["https://h.org/r.git"]):
        with pytest.raises(SpecError, match="'git' must be an object"):
            GitSource.from_spec(bad)
