"""The Prometheus rules (deploy/prometheus/): valid, their unit tests pass under promtool,
and every alert links to a runbook section that exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus"
RUNBOOK = ROOT / "docs" / "runbook.md"


def promtool() -> str:
    # Missing promtool fails, never skips: CI must not go green without running the rules'
    # tests (.ci/run installs Debian's prometheus package, which ships it).
    found = shutil.which("promtool")
    assert found, "promtool is needed: apt-get install prometheus (Debian ships it there)"
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], cwd=RULES, capture_output=True, text=True, timeout=120
    )


def test_rules_are_valid() -> None:
    done = run("check", "rules", "alerts.yml", "recording.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_rule_unit_tests_pass() -> None:
    done = run("test", "rules", "alerts_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces to hyphens."""
    found = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", title)))
    return found


def alerts() -> list[dict[str, object]]:
    doc = yaml.safe_load((RULES / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


@pytest.mark.parametrize("rule", alerts(), ids=lambda r: str(r["alert"]))
def test_every_alert_links_to_its_runbook_section(rule: dict[str, object]) -> None:
    annotations = rule["annotations"]
    assert isinstance(annotations, dict)
    path, _, anchor = str(annotations["runbook_url"]).partition("#")
    assert path == "docs/runbook.md"
    assert anchor == f"alert-{str(rule['alert']).lower()}"
    assert anchor in anchors(RUNBOOK.read_text()), f"no runbook section for {rule['alert']}"


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    doc = yaml.safe_load((RULES / "alerts_test.yml").read_text())
    firing, quiet = set(), set()
    for case in doc["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {str(rule["alert"]) for rule in alerts()}
    assert names <= firing, names - firing
    assert names <= quiet, names - quiet
