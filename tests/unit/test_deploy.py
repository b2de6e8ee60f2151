"""Static checks of deploy/: the files parse and say what the runbook promises.

No Docker engine or cluster is needed: these read the files only.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from onsale import config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"

#: Variables that are not onsale's own but may appear in its environment, and why.
NON_ONSALE_VARS = {
    "FORWARDED_ALLOW_IPS": "uvicorn: proxies trusted for X-Forwarded-For",
    "PROMETHEUS_MULTIPROC_DIR": "prometheus-client's multiprocess mode",
    "POSTGRES_USER": "postgres image (compose)",
    "POSTGRES_PASSWORD": "postgres image (compose)",
    "POSTGRES_DB": "postgres image (compose)",
}
#: Every variable onsale reads: the _ENV mapping, plus ONSALE_DATA_DIR (read by load()).
ONSALE_VARS = {*config._ENV, "ONSALE_DATA_DIR"}


def _yaml_files() -> list[Path]:
    files = sorted(p for ext in ("*.yaml", "*.yml") for p in DEPLOY.rglob(ext))
    return [p for p in files if "grafana" not in p.relative_to(DEPLOY).parts[:1]]


def _docs(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _k8s(kind: str, name: str) -> dict[str, Any]:
    for path in K8S.glob("*.yaml"):
        for doc in _docs(path):
            if doc.get("kind") == kind and doc.get("metadata", {}).get("name") == name:
                return dict(doc)
    raise AssertionError(f"no {kind} {name} in deploy/k8s")


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text()))


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def _env_file_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, _ = line.partition("=")
            assert sep, f"{path.name}: not NAME=value: {line!r}"
            names.add(name.strip())
    return names


def test_deploy_tree_has_the_expected_files() -> None:
    for name in ("Dockerfile", "compose.yaml", "nginx.conf", "prometheus.yml",
                 "onsale.env.example", "k8s/kustomization.yaml"):  # fmt: skip
        assert (DEPLOY / name).is_file(), name
    assert len(_yaml_files()) >= 10


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path: Path) -> None:
    docs = _docs(path)
    assert docs, f"{path} is empty"
    for doc in docs:
        assert isinstance(doc, dict)
        if path.parent == K8S and path.name != "kustomization.yaml":
            assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    listed = set(_docs(K8S / "kustomization.yaml")[0]["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present - {"secret.example.yaml"}


def _instructions(dockerfile: str) -> list[str]:
    """One line per instruction: continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile)
    return [ln.strip() for ln in text.splitlines() if ln.strip() and ln.strip()[0] != "#"]


def _final_stage(dockerfile: str) -> list[str]:
    """The instructions from the last FROM on."""
    lines = _instructions(dockerfile)
    starts = [i for i, ln in enumerate(lines) if ln.upper().startswith("FROM ")]
    assert len(starts) >= 2, "the Dockerfile should be multi-stage"
    return lines[starts[-1] :]


def test_dockerfile_final_stage_runs_as_non_root_with_a_healthcheck() -> None:
    stage = _final_stage((DEPLOY / "Dockerfile").read_text())
    users = [ln.split(None, 1)[1] for ln in stage if ln.upper().startswith("USER ")]
    assert users, "the final stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user.isdigit(), "a fixed numeric UID, so runAsNonRoot can verify it"
    health = [ln for ln in stage if ln.upper().startswith("HEALTHCHECK ")]
    assert health and "/healthz" in health[-1]
    assert any(ln.upper().startswith("EXPOSE ") and "8000" in ln for ln in stage)
    cmd = [ln for ln in stage if ln.upper().startswith("CMD ")][-1]
    assert all(w in cmd for w in ('"serve"', '"0.0.0.0"', '"8000"', '"--workers"'))
    # No [dev] extras installed in any stage.
    assert not any("[dev]" in ln for ln in _instructions((DEPLOY / "Dockerfile").read_text()))


def test_k8s_runs_non_root_as_the_image_user() -> None:
    uid = int(next(ln.split()[1].split(":")[0] for ln in _final_stage(
        (DEPLOY / "Dockerfile").read_text()) if ln.upper().startswith("USER ")))  # fmt: skip
    for kind, name in (("Deployment", "onsale-gateway"), ("Deployment", "onsale-committer"),
                       ("Job", "onsale-migrate")):  # fmt: skip
        pod = _k8s(kind, name)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == uid
        sc = pod["containers"][0]["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False


def test_gateway_probes_and_draining() -> None:
    gateway = _k8s("Deployment", "onsale-gateway")
    c = _container(gateway)
    # Selling needs only Redis: a Postgres outage must not take every gateway out.
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz?require=redis"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
    sleep = int(c["lifecycle"]["preStop"]["exec"]["command"][1])
    assert gateway["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > sleep + 10
    assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]
    assert c["command"][:2] == ["onsale", "serve"] and "0.0.0.0" in c["command"]


def test_hpa_and_pdb_target_the_gateway() -> None:
    gateway = _k8s("Deployment", "onsale-gateway")
    hpa = _k8s("HorizontalPodAutoscaler", "onsale-gateway")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", gateway["metadata"]["name"])
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    labels = gateway["spec"]["template"]["metadata"]["labels"]
    for selector in (
        _k8s("PodDisruptionBudget", "onsale-gateway")["spec"]["selector"]["matchLabels"],
        _k8s("Service", "onsale-gateway")["spec"]["selector"],
        gateway["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= labels.items()


def test_committer_runs_two_without_a_service_and_migrate_is_a_job() -> None:
    committer = _k8s("Deployment", "onsale-committer")
    assert committer["spec"]["replicas"] >= 2
    assert _container(committer)["command"][:2] == ["onsale", "committer"]
    services = [d for p in K8S.glob("*.yaml") for d in _docs(p) if d.get("kind") == "Service"]
    assert all("committer" not in s["metadata"]["name"] for s in services)
    job = _k8s("Job", "onsale-migrate")
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["onsale", "migrate"]


def test_the_mailer_runs_with_what_it_needs() -> None:
    """Mail goes out only where a mailer runs: compose and Kubernetes both run one, with the
    settings `onsale mailer` refuses to start without."""
    mailer = _k8s("Deployment", "onsale-mailer")
    container = _container(mailer)
    assert container["command"] == ["onsale", "mailer"]
    named = {e["name"] for e in container["env"]}
    assert {"ONSALE_DATABASE_URL", "ONSALE_SIGNING_KEY", "ONSALE_SMTP_URL"} <= named
    assert _compose()["services"]["mailer"]["command"] == ["onsale", "mailer"]


def _assert_known(names: set[str], where: str) -> None:
    unknown = sorted(n for n in names if n not in ONSALE_VARS and n not in NON_ONSALE_VARS)
    assert not unknown, f"{where}: variables onsale/config.py does not know: {unknown}"


def test_env_names_are_ones_onsale_knows() -> None:
    cm = _k8s("ConfigMap", "onsale-config")["data"]
    secret = _k8s("Secret", "onsale-secrets")["stringData"]
    _assert_known(set(cm), "ConfigMap")
    _assert_known(set(secret), "Secret")
    assert {"ONSALE_ADMIN_TOKEN", "ONSALE_SIGNING_KEY", "ONSALE_DATABASE_URL",
            "ONSALE_STRIPE_SECRET_KEY", "ONSALE_STRIPE_WEBHOOK_SECRET"} <= set(secret)  # fmt: skip
    assert not set(cm) & set(secret)
    example = _env_file_names(DEPLOY / "onsale.env.example")
    _assert_known(example, "onsale.env.example")
    assert {"ONSALE_REDIS_URL", "ONSALE_DATABASE_URL", "ONSALE_ADMIN_TOKEN",
            "ONSALE_SIGNING_KEY"} <= example  # fmt: skip
    for kind, name in (("Deployment", "onsale-gateway"), ("Deployment", "onsale-committer"),
                       ("Job", "onsale-migrate")):  # fmt: skip
        env = _container(_k8s(kind, name)).get("env", [])
        _assert_known({e["name"] for e in env}, f"{kind} {name}")
        for e in env:
            ref = e.get("valueFrom", {})
            if "configMapKeyRef" in ref:
                assert ref["configMapKeyRef"]["key"] in cm
            if "secretKeyRef" in ref:
                assert ref["secretKeyRef"]["key"] in secret
    for service in ("gateway", "committer", "migrate"):
        env = _compose()["services"][service].get("environment", {})
        _assert_known(set(env), f"compose {service}")


def test_env_example_holds_no_real_secrets() -> None:
    text = (DEPLOY / "onsale.env.example").read_text()
    assert not re.search(r"sk_live_[A-Za-z0-9]{10,}|BEGIN PRIVATE KEY", text)
    secret = _k8s("Secret", "onsale-secrets")["stringData"]
    assert all("CHANGE-ME" in v for v in secret.values())


def test_compose_services_and_ordering() -> None:
    services = _compose()["services"]
    assert services["gateway"]["deploy"]["replicas"] >= 2
    assert services["committer"]["deploy"]["replicas"] >= 2
    assert services["migrate"]["command"] == ["onsale", "migrate"]
    for name in ("gateway", "committer"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["redis"]["condition"] == "service_healthy"
    assert services["committer"]["healthcheck"] == {"disable": True}
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["postgres"]["healthcheck"]["test"]
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert re.search(r"server\s+gateway:8000", nginx)
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in services["nginx"]["volumes"]


def test_compose_redis_is_durable() -> None:
    redis = _compose()["services"]["redis"]
    command = " ".join(redis["command"])
    assert re.search(r"--appendonly\s+yes", command)
    assert re.search(r"--appendfsync\s+(everysec|always)", command)
    assert re.search(r"--maxmemory-policy\s+noeviction", command)
    assert any(v.endswith(":/data") for v in redis["volumes"])


def test_prometheus_scrapes_the_gateways_metrics() -> None:
    prom = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    gateway = jobs["onsale-gateway"]
    assert gateway.get("metrics_path", "/metrics") == "/metrics"
    assert gateway["dns_sd_configs"][0]["names"] == ["gateway"]
    assert gateway["dns_sd_configs"][0]["port"] == 8000
    annotations = _k8s("Deployment", "onsale-gateway")["spec"]["template"]["metadata"]
    assert annotations["annotations"]["prometheus.io/path"] == "/metrics"


def test_grafana_is_provisioned_with_the_dashboard_and_datasource() -> None:
    grafana = _compose()["services"]["grafana"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in grafana["volumes"]}
    provider = yaml.safe_load((DEPLOY / "grafana-provisioning/dashboards/onsale.yaml").read_text())
    assert mounts["./grafana"] == provider["providers"][0]["options"]["path"]
    ds = yaml.safe_load((DEPLOY / "grafana-provisioning/datasources/prometheus.yaml").read_text())
    assert ds["datasources"][0]["url"] == "http://prometheus:9090"


def _nginx_proxy_headers() -> dict[str, str]:
    """``proxy_set_header`` name -> value, over the whole nginx.conf."""
    text = re.sub(r"#[^\n]*", "", (DEPLOY / "nginx.conf").read_text())
    found = re.findall(r"proxy_set_header\s+(\S+)\s+([^;]+);", text)
    return {name.lower(): value.strip() for name, value in found}


def test_nginx_overwrites_the_client_address_headers() -> None:
    # Appending ($proxy_add_x_forwarded_for) keeps whatever the client sent in front: the
    # gateway would then rate-limit (and exempt) by an address the client chose.
    headers = _nginx_proxy_headers()
    assert headers["x-forwarded-for"] == "$remote_addr"
    assert headers["x-real-ip"] == "$remote_addr"
    assert "proxy_add_x_forwarded_for" not in re.sub(
        r"#[^\n]*", "", (DEPLOY / "nginx.conf").read_text()
    )


def test_gateways_trust_forwarded_headers_from_the_proxy_only() -> None:
    compose = _compose()
    nginx_ip = ipaddress.ip_address(compose["services"]["nginx"]["networks"]["default"]
                                    ["ipv4_address"])  # fmt: skip
    subnet = ipaddress.ip_network(compose["networks"]["default"]["ipam"]["config"][0]["subnet"])
    assert nginx_ip in subnet
    trusted = compose["services"]["gateway"]["environment"]["ONSALE_TRUSTED_PROXIES"]
    nets = config.networks(tuple(str(trusted).split(",")), "ONSALE_TRUSTED_PROXIES")
    assert nets == [ipaddress.ip_network(f"{nginx_ip}/32")], "only nginx, not the network"
    cm = _k8s("ConfigMap", "onsale-config")["data"]
    assert config.networks(tuple(cm["ONSALE_TRUSTED_PROXIES"].split(",")), "k8s")
    # uvicorn's own switch is ignored by `onsale serve`; "*" anywhere would mislead.
    assert "FORWARDED_ALLOW_IPS" not in cm
    assert "FORWARDED_ALLOW_IPS" not in _env_file_names(DEPLOY / "onsale.env.example")
    for service in compose["services"].values():
        assert "FORWARDED_ALLOW_IPS" not in (service.get("environment") or {})
    runbook = (DEPLOY.parent / "docs" / "runbook.md").read_text()
    assert "ONSALE_TRUSTED_PROXIES" in runbook and "$remote_addr" in runbook
