"""Profiles, author limits and the operator's ceiling (hub_viz.profiles)."""

from __future__ import annotations

import pytest

from hub_viz.errors import SpecError
from hub_viz.profiles import (
    Ceiling,
    Resources,
    check_resources,
    effective_resources,
    format_memory,
    parse_cpu,
    parse_memory,
    parse_profiles,
)

pytestmark = pytest.mark.unit

CEILING = Ceiling.parse({"cpu": 2, "memory": "4G"})


@pytest.mark.parametrize(
    ("value", "cores"), [(1, 1.0), (0.5, 0.5), ("1.5", 1.5), ("500m", 0.5), ("2", 2.0)]
)
def test_parse_cpu(value, cores):
    assert parse_cpu(value) == cores


@pytest.mark.parametrize("value", ["", "1 core", "-1", 0, "0m", True, None, [1]])
def test_parse_cpu_refuses(value):
    with pytest.raises(SpecError):
        parse_cpu(value)


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("512M", 512 * 10**6),
        ("2G", 2 * 10**9),
        ("1Gi", 2**30),
        ("1.5G", 15 * 10**8),
        (2**30, 2**30),
        ("64Mi", 64 * 2**20),
    ],
)
def test_parse_memory(value, size):
    assert parse_memory(value) == size


@pytest.mark.parametrize("value", ["", "2 GB", "1X", "-1G", "100", 10, True, None])
def test_parse_memory_refuses(value):
    with pytest.raises(SpecError):
        parse_memory(value)


@pytest.mark.parametrize(
    ("size", "text"),
    [(2 * 10**9, "2G"), (2**31, "2Gi"), (512 * 10**6, "512M"), (1536 * 2**20, "1536Mi")],
)
def test_format_memory_is_exact(size, text):
    assert format_memory(size) == text
    assert parse_memory(text) == size


def test_profiles_parse_with_defaults_and_public_view_hides_placement():
    profiles = parse_profiles(
        {
            "small": {
                "display_name": "Small",
                "cpu_request": 0.1,
                "cpu_limit": 0.5,
                "mem_request": "256M",
                "mem_limit": "1G",
            },
            "gpu": {
                "image": "registry.example.edu/dash-gpu:1",
                "node_selector": {"pool": "gpu"},
                "tolerations": [{"key": "gpu", "operator": "Exists"}],
            },
        },
        CEILING,
    )
    assert profiles["small"].resources == Resources(0.1, 0.5, 256 * 10**6, 10**9)
    assert profiles["small"].public() == {
        "display_name": "Small",
        "description": "",
        "cpu_limit": 0.5,
        "mem_limit": "1G",
    }
    assert profiles["gpu"].display_name == "gpu"
    assert "image" not in profiles["gpu"].public()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"big": {"cpu_limit": 8}}, "profile 'big' asks for 8 CPU; this hub allows at most 2"),
        ({"big": {"mem_limit": "16G"}}, "asks for 16G of memory; this hub allows at most 4G"),
        ({"x": {"cpu_request": 2, "cpu_limit": 1}}, "profile 'x': cpu_request is above cpu_limit"),
        ({"x": {"mem_request": "2G", "mem_limit": "1G"}}, "mem_request is above mem_limit"),
        ({"x": {"cpus": 1}}, "profile 'x': unknown key(s) ['cpus']"),
        ({"x": {"image_pull_policy": "Sometimes"}}, "image_pull_policy must be one of Always"),
        ({"x": {"node_selector": {"pool": 1}}}, "node_selector must map label names"),
        ({"x": {"tolerations": "gpu"}}, "tolerations must be a list"),
        ({"x": "small"}, "profile 'x' must be a dict of settings"),
    ],
)
def test_operator_mistakes_in_profiles_are_refused(raw, message):
    with pytest.raises(ValueError) as e:
        parse_profiles(raw, CEILING)
    assert message in str(e.value)


def test_ceiling_refuses_unknown_keys_and_bad_sizes():
    with pytest.raises(ValueError, match="unknown key"):
        Ceiling.parse({"gpus": 1})
    with pytest.raises(ValueError, match="resource_ceiling memory must be a size"):
        Ceiling.parse({"memory": "lots"})


def test_author_limits_override_the_profile_and_pull_requests_down():
    profiles = parse_profiles(
        {"std": {"cpu_request": 1, "cpu_limit": 2, "mem_request": "2G", "mem_limit": "4G"}},
        CEILING,
    )
    r = effective_resources(profiles["std"], {"cpu": 0.5, "memory": "1G"}, CEILING)
    assert r == Resources(cpu_request=0.5, cpu_limit=0.5, mem_request=10**9, mem_limit=10**9)


def test_without_a_limit_the_ceiling_is_the_limit():
    assert effective_resources(None, None, CEILING) == Resources(None, 2.0, None, 4 * 10**9)
    assert effective_resources(None, None, Ceiling()) == Resources()


def test_author_beyond_the_ceiling_is_refused_with_a_readable_message():
    with pytest.raises(SpecError) as e:
        effective_resources(None, {"memory": "6G"}, CEILING)
    assert e.value.message == (
        "This dashboard asks for 6G of memory; this hub allows at most 4G per dashboard."
    )


def test_check_resources_normalises():
    assert check_resources(None) == {}
    assert check_resources(
        {
            "cpu": "250m",
            "memory": "512Mi",
        }
    ) == {"cpu": 0.25, "memory": "512Mi"}
    assert check_resources({"cpu": "", "memory": None}) == {}
