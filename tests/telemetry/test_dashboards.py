"""The Grafana dashboard and the Prometheus config in deploy/monitoring read metrics the code
exports (a renamed metric would leave an empty panel, silently)."""

from __future__ import annotations

import json
import pathlib
import re

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
SOURCES = [
    ROOT / "coalition_kernel" / "telemetry.py",
    ROOT / "merchant_node" / "figures" / "metrics.py",
    ROOT / "exchange" / "figures.py",
    ROOT / "workflows" / "telemetry.py",
]
SUFFIXES = ("_total", "_bucket", "_count", "_sum")


def exported() -> set[str]:
    names = set()
    for source in SOURCES:
        names |= set(re.findall(r'"(coalition_[a-z_]+)"', source.read_text()))
    return names


def test_every_panel_reads_a_metric_the_code_exports():
    dashboard = json.loads((MONITORING / "grafana" / "coalition.json").read_text())
    known = exported()
    used = set()
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            used |= set(re.findall(r"coalition_[a-z_]+", target["expr"]))
    assert used
    for name in used:
        base = next((name.removesuffix(s) for s in SUFFIXES if name.endswith(s)), name)
        assert base in known, f"{name} is not exported by {[s.name for s in SOURCES]}"


def test_prometheus_scrapes_the_metrics_port_the_compose_overlay_sets():
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    overlay = yaml.safe_load((ROOT / "deploy" / "compose" / "monitoring.yaml").read_text())
    compose = yaml.safe_load((ROOT / "deploy" / "compose" / "compose.yaml").read_text())
    targets = [
        t for job in config["scrape_configs"] for s in job["static_configs"] for t in s["targets"]
    ]
    for target in targets:
        service, port = target.split(":")
        assert service in compose["services"], service
        assert overlay["services"][service]["environment"]["COALITION_METRICS_PORT"] == port
