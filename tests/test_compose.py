"""docker-compose.yml is wired the way the README says (validated structurally)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_their_dependencies_are_defined() -> None:
    compose = _compose()
    services = compose["services"]
    assert {"clickhouse", "collector", "grafana"} <= set(services)
    for name, service in services.items():
        for dep in service.get("depends_on", {}):
            assert dep in services, f"{name} depends on undefined service {dep}"
        assert "image" in service or "build" in service, name
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name} mounts missing path {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"
    host_ports = [p.split(":")[0] for s in services.values() for p in s.get("ports", [])]
    assert len(host_ports) == len(set(host_ports)), "two services publish the same port"


def test_collector_is_built_here_and_points_at_the_clickhouse_service() -> None:
    services = _compose()["services"]
    collector = services["collector"]
    context = ROOT / (
        collector["build"]
        if isinstance(collector["build"], str)
        else collector["build"].get("context", ".")
    )
    dockerfile = (context / "Dockerfile").read_text()
    assert "pip install" in dockerfile and ".[collector]" in dockerfile
    store = urlsplit(collector["environment"]["FAULTPRINT_STORE"])
    assert store.scheme == "http" and store.hostname == "clickhouse"
    assert str(store.port) in [p.split(":")[-1] for p in services["clickhouse"]["ports"]]
    assert collector["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    clickhouse_env = services["clickhouse"]["environment"]
    assert store.username == clickhouse_env["CLICKHOUSE_USER"]
    assert store.path.strip("/") == clickhouse_env["CLICKHOUSE_DB"]


def test_grafana_gets_the_clickhouse_plugin_and_faultprint_provisioning() -> None:
    grafana = _compose()["services"]["grafana"]
    assert "grafana-clickhouse-datasource" in grafana["environment"]["GF_INSTALL_PLUGINS"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    provisioning = ROOT / mounts_key(mounts, "/etc/grafana/provisioning")
    datasources = yaml.safe_load((provisioning / "datasources" / "clickhouse.yaml").read_text())[
        "datasources"
    ]
    assert datasources[0]["type"] == "grafana-clickhouse-datasource"
    providers = yaml.safe_load((provisioning / "dashboards" / "faultprint.yaml").read_text())[
        "providers"
    ]
    dashboards_in_container = providers[0]["options"]["path"]
    assert dashboards_in_container in mounts.values()
    for key in ("CLICKHOUSE_HOST", "CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD"):
        assert key in grafana["environment"]


def mounts_key(mounts: dict[str, str], target: str) -> str:
    """The host path mounted at TARGET."""
    return next(src for src, dst in mounts.items() if dst == target)
