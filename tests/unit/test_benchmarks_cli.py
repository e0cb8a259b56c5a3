"""The benchmark command line: options, the shared table and JSON layout, one quick run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks.__main__ import parse
from benchmarks.common import REPO, Report, Row, fmt, stats, table


@pytest.mark.unit
def test_defaults_per_suite():
    args, names = parse([])
    assert names == ["open-latency"]
    assert (args.repeat, args.warm, args.opens) == (3, 20, 5)
    assert args.framework_list == ["voila", "dash", "bokeh", "panel", "streamlit"]
    args, names = parse(["--suite", "burst"])
    assert (args.students, args.per_viewer_students) == (100, 30)
    assert args.json.name == "burst.json"
    assert args.preload_apps == "on"
    assert args.per_viewer_framework_list == ["dash"]
    args, _ = parse(["--suite", "burst", "--per-viewer-frameworks", "dash, bokeh,streamlit"])
    assert args.per_viewer_framework_list == ["dash", "bokeh", "streamlit"]
    args, _ = parse(["--suite", "all", "--preload-apps", "off"])  # one option, every suite
    assert args.preload_apps == "off"


@pytest.mark.unit
def test_quick_shrinks_every_suite():
    args, names = parse(["--suite", "all", "--quick"])
    assert names == ["open-latency", "burst", "memory", "launcher", "phone-home", "faults"]
    assert (args.repeat, args.warm, args.opens) == (1, 5, 2)
    assert (args.students, args.per_viewer_students, args.extra_viewers) == (8, 4, 3)
    assert args.launcher_gets == 20
    assert (args.viewers, args.dashboards) == (100, 3)
    assert args.fault_viewers == 6 and args.fault_list == [
        "app-killed",
        "service-killed",
        "proxy-killed",
        "anonymous-uploads",
        "claims-race",
        "unpublish-during-opens",
    ]
    assert not hasattr(args, "json")  # with 'all' each suite writes its own file


@pytest.mark.unit
def test_the_newer_frameworks_are_measured_when_named():
    args, _ = parse(["--frameworks", "gradio,marimo"])
    assert args.framework_list == ["gradio", "marimo"]


@pytest.mark.unit
def test_frameworks_narrow_the_scenarios():
    args, _ = parse(["--suite", "burst", "--frameworks", "dash", "--students", "12"])
    assert args.scenario_list == ["dash", "per-viewer-cold", "per-viewer-warm"]
    assert args.students == 12


@pytest.mark.unit
@pytest.mark.parametrize(
    "argv",
    [
        ["--suite", "burst", "--students", "1000"],
        ["--suite", "burst", "--per-viewer-students", "0"],
        ["--suite", "burst", "--scenarios", "voila-hot"],
        ["--frameworks", "vizro"],
        ["--suite", "memory", "--extra-viewers", "0"],
        ["--suite", "faults", "--fault-viewers", "1"],
        ["--suite", "faults", "--fault-scenarios", "hub-on-fire"],
        ["--repeat", "0"],
        ["--suite", "nothing"],
        ["--suite", "burst", "--preload-apps", "maybe"],
        ["--suite", "burst", "--per-viewer-frameworks", "dash,vizro"],
        ["--suite", "burst", "--per-viewer-frameworks", ","],
    ],
)
def test_bad_options_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        parse(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.unit
def test_stats_and_formatting():
    s = stats([0.001 * i for i in range(1, 101)])
    assert s["n"] == 100 and s["p50"] == pytest.approx(0.0505) and s["max"] == pytest.approx(0.1)
    assert s["p50"] < s["p95"] < s["max"]
    assert stats([2.0]) == {"n": 1, "p50": 2.0, "p95": 2.0, "max": 2.0, "mean": 2.0}
    assert stats([]) == {}
    assert fmt(0.0123) == "12.3 ms" and fmt(2.5) == "2.50 s" and fmt(None) == "-"
    assert fmt(84.44, "MiB") == "84.4 MiB" and fmt(0.31, "MiB") == "0.31 MiB"


@pytest.mark.unit
def test_table_shows_both_sides_and_their_ratio():
    rows = [
        Row(
            "dash: page GET, running",
            bare={"p50": 0.002, "p95": 0.003},
            hub={"p50": 0.006, "p95": 0.009},
            extra={"target": "met"},
        ),
        Row("voila: cold start", bare={"p50": 2.0, "p95": 2.5}, hub={"p50": 3.0, "p95": 4.0}),
        Row("voila-warm: not measured", note="the service does not accept warm_kernels yet"),
        Row("bokeh: instance", unit="MiB", bare={"p50": 63.4}, hub={"p50": 147.9}),
    ]
    lines = table(rows, ["target"]).splitlines()
    assert lines[0].startswith(
        "| scenario | bare p50 | bare p95 | hub_viz p50 | hub_viz p95 | ratio"
    )
    assert lines[2] == (
        "| dash: page GET, running | 2.0 ms | 3.0 ms | 6.0 ms | 9.0 ms | 3.00× | +4.0 ms | met |"
    )
    assert "| 1.50× | +1.00 s | - |" in lines[3]
    assert lines[4] == "| voila-warm: not measured | - | - | - | - | - | - | - |"
    assert "| 63.4 MiB | - | 147.9 MiB | - | 2.33× | +84.5 MiB |" in lines[5]


@pytest.mark.unit
def test_report_json_layout(tmp_path, capsys):
    report = Report("burst", {"students": 3}, extra_columns=["ok hub_viz"])
    report.add(
        Row(
            "dash (dash, 3)",
            bare=stats([0.01, 0.02, 0.03]),
            hub=stats([0.05, 0.06, 0.07]),
            extra={"ok hub_viz": "3/3"},
        )
    )
    report.notes.append("synthetic")
    report.raw["dash"] = {"hub_viz": [0.05, 0.06, 0.07]}
    path = tmp_path / "results" / "burst.json"
    report.write(path)
    data = json.loads(path.read_text())
    assert set(data) >= {
        "suite",
        "machine",
        "started",
        "seconds",
        "settings",
        "rows",
        "table",
        "notes",
        "raw",
    }
    assert data["suite"] == "burst" and data["settings"] == {"students": 3}
    machine = data["machine"]
    assert machine["cpu_count"] >= 1 and machine["ram_mib"] > 0 and machine["python"]
    assert {"jupyterhub", "tornado", "voila", "dash"} <= set(machine["versions"])
    [row] = data["rows"]
    assert row["ratio"] == pytest.approx(3.0) and row["overhead"] == pytest.approx(0.04)
    assert row["extra"] == {"ok hub_viz": "3/3"}
    assert "| dash (dash, 3) |" in capsys.readouterr().out


@pytest.mark.hub
def test_quick_memory_run_for_one_framework(tmp_path):
    out = tmp_path / "memory.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--suite",
            "memory",
            "--quick",
            "--frameworks",
            "dash",
            "--json",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["suite"] == "memory" and data["settings"]["extra_viewers"] == 3
    names = [r["scenario"] for r in data["rows"]]
    assert names == [
        "dash: instance, 1 viewer",
        "dash: per extra viewer (3)",
        "dash per-viewer: instance, 1 viewer",
    ]
    instance = data["rows"][0]
    assert 0 < instance["bare"]["p50"] < instance["hub"]["p50"]
    assert data["raw"]["dash/shared"]["launcher"]["rss"] > 0
    assert "| dash: instance, 1 viewer |" in proc.stdout
