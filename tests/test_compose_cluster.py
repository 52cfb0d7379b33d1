"""docker-compose.cluster.yml: a two-shard cluster wired consistently (validated
structurally; no container engine runs in the test environment).

Every cross-reference is checked: services and mounted files exist, the
cluster the collectors name is the one ClickHouse defines, each shard's node
has its own macros, Keeper is where the servers look for it, the load
balancer balances over the collectors' real health endpoint, and the DDL the
collectors run names the same cluster.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.cluster.yml"


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def services() -> dict[str, Any]:
    return compose()["services"]


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """container path -> host path of the service's bind mounts."""
    out = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            out[target] = ROOT / source
    return out


def by_role() -> tuple[list[str], list[str], list[str], list[str]]:
    s = services()
    clickhouse = sorted(n for n, v in s.items() if "clickhouse-server" in v.get("image", ""))
    keeper = sorted(n for n, v in s.items() if "clickhouse-keeper" in v.get("image", ""))
    collectors = sorted(n for n, v in s.items() if "build" in v)
    balancers = sorted(n for n, v in s.items() if "haproxy" in v.get("image", ""))
    return clickhouse, keeper, collectors, balancers


def xml_of(service: dict[str, Any], target_dir: str) -> list[ET.Element]:
    return [
        ET.parse(path).getroot()
        for target, path in mounts(service).items()
        if target.startswith(target_dir) and target.endswith(".xml")
    ]


def test_the_cluster_has_two_shards_keeper_two_collectors_and_a_balancer() -> None:
    clickhouse, keeper, collectors, balancers = by_role()
    assert len(clickhouse) == 2 and len(keeper) == 1
    assert len(collectors) == 2 and len(balancers) == 1


def test_references_resolve() -> None:
    c = compose()
    s = c["services"]
    declared = set(c.get("volumes") or {})
    for name, service in s.items():
        assert "image" in service or "build" in service, name
        for dep in service.get("depends_on", {}):
            assert dep in s, f"{name} depends on undefined service {dep}"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).is_file(), f"{name} mounts missing file {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"
    host_ports = [p.split(":")[0] for v in s.values() for p in v.get("ports", [])]
    assert len(host_ports) == len(set(host_ports)), "two services publish the same port"
    # every XML config parses
    for service in s.values():
        for path in mounts(service).values():
            if path.suffix == ".xml":
                ET.parse(path)


def cluster_definition() -> tuple[str, ET.Element, ET.Element]:
    clickhouse, _, _, _ = by_role()
    s = services()
    configs = [
        root
        for root in xml_of(s[clickhouse[0]], "/etc/clickhouse-server/config.d")
        if root.find("remote_servers") is not None
    ]
    assert len(configs) == 1
    remote = configs[0].find("remote_servers")
    assert remote is not None and len(remote) == 1
    cluster = remote[0]
    return cluster.tag, cluster, configs[0]


def test_each_shard_is_a_node_with_its_own_macros() -> None:
    clickhouse, _, _, _ = by_role()
    s = services()
    name, cluster, _ = cluster_definition()
    shards = cluster.findall("shard")
    assert len(shards) == 2
    hosts = []
    for number, shard in enumerate(shards, start=1):
        assert shard.findtext("internal_replication") == "true"  # replicated tables
        replicas = shard.findall("replica")
        assert replicas
        for replica in replicas:
            host = replica.findtext("host")
            assert host in clickhouse, f"shard {number} names unknown host {host}"
            assert replica.findtext("port") == "9000"
            hosts.append((host, number))
    assert len({h for h, _ in hosts}) == len(hosts)
    replica_names = []
    for host, number in hosts:
        # every node mounts the same cluster definition
        assert any(
            r.find("remote_servers") is not None and r.find(f"remote_servers/{name}") is not None
            for r in xml_of(s[host], "/etc/clickhouse-server/config.d")
        ), host
        macros = [
            r.find("macros")
            for r in xml_of(s[host], "/etc/clickhouse-server/config.d")
            if r.find("macros") is not None
        ]
        assert len(macros) == 1, host
        assert macros[0].findtext("shard") == str(number), host
        replica_names.append(macros[0].findtext("replica"))
    # unique cluster-wide: the migrations table is replicated across all nodes
    assert len(set(replica_names)) == len(replica_names)


def test_servers_find_keeper() -> None:
    _, keeper, _, _ = by_role()
    s = services()
    _, _, config = cluster_definition()
    node = config.find("zookeeper/node")
    assert node is not None and node.findtext("host") == keeper[0]
    keeper_xml = ET.parse(mounts(s[keeper[0]])["/etc/clickhouse-keeper/keeper_config.xml"])
    server = keeper_xml.getroot().find("keeper_server")
    assert server is not None and server.findtext("tcp_port") == node.findtext("port")
    raft = server.findall("raft_configuration/server")
    assert [r.findtext("hostname") for r in raft] == [keeper[0]]
    assert config.find("distributed_ddl/path") is not None
    for name in by_role()[0]:
        assert keeper[0] in s[name]["depends_on"]


def test_every_connection_deduplicates_views_and_inserts_synchronously() -> None:
    clickhouse, _, _, _ = by_role()
    for name in clickhouse:
        profiles = [
            r.find("profiles/default")
            for r in xml_of(services()[name], "/etc/clickhouse-server/users.d")
            if r.find("profiles/default") is not None
        ]
        assert len(profiles) == 1, name
        assert profiles[0].findtext("deduplicate_blocks_in_dependent_materialized_views") == "1"
        assert profiles[0].findtext("distributed_foreground_insert") == "1"


def test_collectors_use_the_cluster_through_different_nodes() -> None:
    clickhouse, _, collectors, _ = by_role()
    s = services()
    name, _, _ = cluster_definition()
    nodes = set()
    for collector in collectors:
        env = s[collector]["environment"]
        assert env["FAULTPRINT_CLUSTER"] == name
        assert env["FAULTPRINT_CLUSTER_WRITES"] in ("distributed", "local")
        store = urlsplit(env["FAULTPRINT_STORE"])
        assert store.scheme == "http" and store.hostname in clickhouse and store.port == 8123
        server_env = s[store.hostname]["environment"]
        assert store.username == server_env["CLICKHOUSE_USER"]
        assert store.password == server_env["CLICKHOUSE_PASSWORD"]
        assert store.path.strip("/") == server_env["CLICKHOUSE_DB"]
        assert set(s[collector]["depends_on"]) == set(clickhouse)
        nodes.add(store.hostname)
    assert nodes == set(clickhouse)


def test_the_ddl_the_collectors_run_names_this_cluster() -> None:
    from faultprint_collector.commands.schema import schema_text

    name, _, _ = cluster_definition()
    env = services()[by_role()[2][0]]["environment"]
    database = urlsplit(env["FAULTPRINT_STORE"]).path.strip("/")
    ddl = schema_text(cluster=name, database=database)
    assert f"Distributed('{name}', '{database}', 'calls_local'" in ddl
    assert "{shard}" in ddl and "{replica}" in ddl


def test_the_balancer_spreads_over_the_collectors_health_checked() -> None:
    _, _, collectors, balancers = by_role()
    s = services()
    balancer = s[balancers[0]]
    cfg = mounts(balancer)["/usr/local/etc/haproxy/haproxy.cfg"].read_text()
    servers = re.findall(r"^\s*server\s+\S+\s+([\w.-]+):(\d+)\s+check", cfg, re.M)
    assert sorted(h for h, _ in servers) == collectors
    for host, port in servers:
        assert s[host]["command"][-1] == port  # serve --port
    check = re.search(r"option httpchk GET (\S+)", cfg)
    assert check is not None
    from faultprint_collector.api import create_app

    paths = {getattr(r, "path", None) for r in create_app().routes}
    assert check[1] in paths
    published = [p.split(":") for p in balancer["ports"]]
    bind = re.search(r"^\s*bind\s+:(\d+)", cfg, re.M)
    assert bind is not None and [bind[1], bind[1]] in published
    assert set(balancer["depends_on"]) == set(collectors)
