"""The deployment files in deploy/ against the code they deploy.

Every file under deploy/ is parsed (YAML documents, JSON, the HAProxy config, the env
template), then checked against the real thing: probe paths against the aiohttp app's
routes, ports against the Dockerfile, environment variable names against
:class:`router.settings.Settings`, the rules mount against the Dockerfile's
``ROUTER_RULES``, the example rules ConfigMap against the rule loader, the dashboard's
PromQL against the metric families in :mod:`router.metrics`, selectors against the
Deployment's labels and the shutdown grace period against the drain in
:mod:`router.serve`. No network, no Docker, no cluster.
"""

from __future__ import annotations

import inspect
import json
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.metrics import MetricWrapperBase

import router.metrics
from router.engine.load import RULE_FILE_SUFFIXES, load_bytes
from router.engine.testing import run_tests
from router.http.app import create_app
from router.server import DRAIN_TIMEOUT_S
from router.service import decisions
from router.settings import Settings, SettingsError, load_settings
from router.store.redis import RedisStore

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "kubernetes"
COMPOSE = DEPLOY / "docker-compose.yml"
HAPROXY = DEPLOY / "haproxy.cfg"
ENV_EXAMPLE = DEPLOY / ".env.example"
DASHBOARD = DEPLOY / "grafana" / "router-dashboard.json"

SETTINGS_ENV = frozenset(f.alias for f in Settings.model_fields.values() if f.alias)
"""Every environment variable router reads as a setting (settings.py is the source)."""

OTHER_ROUTER_ENV = frozenset({"PROMETHEUS_MULTIPROC_DIR"})
"""Variables router reads that are not settings (handlers.metrics: multiprocess mode)."""

COMPOSE_ONLY_VARS = frozenset({"LB_PORT"})
"""Variables docker-compose.yml interpolates that never reach router."""

ROUTER_DEPLOYMENT = "router"
ROUTER_CONTAINER = "router"

Doc = dict[str, Any]


# --- parsing every file ------------------------------------------------------------------


def deploy_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file())


def yaml_docs(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def env_template(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of an env file; commented-out ``# KEY=VALUE`` lines count too."""
    found: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        match = re.fullmatch(r"#?\s*([A-Z_][A-Z0-9_]*)=(.*)", text)
        if match:
            found[match[1]] = match[2]
        elif text and not text.startswith("#"):
            raise AssertionError(f"{path.name}:{number}: not KEY=VALUE: {line!r}")
    return found


@dataclass(frozen=True)
class HAProxyConfig:
    bind_ports: tuple[int, ...]
    servers: tuple[tuple[str, int], ...]
    """(host, port) of every ``server`` / ``server-template`` line."""
    check_paths: tuple[str, ...]


def haproxy_config(path: Path) -> HAProxyConfig:
    sections = {"global", "defaults", "frontend", "backend", "listen", "resolvers"}
    binds: list[int] = []
    servers: list[tuple[str, int]] = []
    checks: list[str] = []
    section = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if not line[0].isspace():
            assert words[0] in sections, f"{path.name}:{number}: unknown section {words[0]!r}"
            section = words[0]
            continue
        assert section is not None, f"{path.name}:{number}: a setting outside any section"
        if words[0] == "bind":
            binds.append(int(words[1].rpartition(":")[2]))
        elif words[0] in ("server", "server-template"):
            address = words[2] if words[0] == "server" else words[3]
            host, _, port = address.rpartition(":")
            servers.append((host, int(port)))
        elif words[:2] == ["http-check", "send"]:
            checks.append(words[words.index("uri") + 1])
            assert words[words.index("meth") + 1] == "GET"
    return HAProxyConfig(tuple(binds), tuple(servers), tuple(checks))


def parse(path: Path) -> Any:
    name = path.name
    if path.suffix in (".yaml", ".yml"):
        return yaml_docs(path)
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    if path == HAPROXY:
        return haproxy_config(path)
    if name.endswith(".env.example"):
        return env_template(path)
    if name == ".gitignore":
        return path.read_text(encoding="utf-8").splitlines()
    raise AssertionError(f"{path.relative_to(REPO)}: no parser for this kind of file; add one")


@pytest.mark.parametrize("path", deploy_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_deploy_file_parses(path: Path) -> None:
    assert parse(path), f"{path} parsed to nothing"


def test_the_env_file_with_real_secrets_is_ignored() -> None:
    assert ".env" in parse(DEPLOY / ".gitignore")


# --- the code's side ---------------------------------------------------------------------


@dataclass(frozen=True)
class Dockerfile:
    expose: frozenset[int]
    env: dict[str, str]
    user: str


@cache
def dockerfile() -> Dockerfile:
    """EXPOSE, ENV and USER of the Dockerfile's final stage."""
    text = (REPO / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    from_lines = [i for i, line in enumerate(lines) if line.upper().startswith("FROM ")]
    expose: set[int] = set()
    env: dict[str, str] = {}
    user = ""
    for line in lines[from_lines[-1] :]:
        keyword, _, rest = line.partition(" ")
        if keyword == "EXPOSE":
            expose |= {int(p.split("/")[0]) for p in rest.split()}
        elif keyword == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = value
        elif keyword == "USER":
            user = rest.strip()
    return Dockerfile(frozenset(expose), env, user)


@cache
def get_routes() -> frozenset[str]:
    """Paths the real app answers GET on (built with create_app over the bundled rules)."""
    app = create_app(load_settings(ROUTER_RULES=str(REPO / "rules")))
    return frozenset(
        resource.canonical
        for resource in app.router.resources()
        if any(route.method == "GET" for route in resource)
    )


def image_port() -> int:
    (port,) = dockerfile().expose
    return port


def exposed_series() -> frozenset[str]:
    """Every sample name router/metrics.py's families put on /metrics (prometheus_client:
    a Counter ``x`` exposes ``x_total`` and ``x_created``, a Histogram ``x_bucket``,
    ``x_count``, ``x_sum`` and ``x_created``, a Gauge ``x``)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
        "info": ("_info",),
    }
    names: set[str] = set()
    for metric in vars(router.metrics).values():
        if isinstance(metric, MetricWrapperBase):
            for family in metric.describe():
                names |= {family.name + suffix for suffix in suffixes[family.type]}
    return frozenset(names)


def test_exposed_series_follow_prometheus_client() -> None:
    """The suffix rules above agree with what prometheus_client really writes."""
    series = exposed_series()
    assert "router_decisions_total" in series
    assert "router_decisions" not in series
    assert "router_decision_duration_seconds_bucket" in series
    assert "router_decision_duration_seconds" not in series
    assert "router_store_up" in series
    written = {
        line.split("{")[0].split(" ")[0]
        for line in generate_latest(REGISTRY).decode().splitlines()
        if line.startswith("router_")
    }
    assert written, "router.metrics exposes nothing"
    assert written <= series


# --- Kubernetes ----------------------------------------------------------------------------


@cache
def k8s_docs() -> tuple[Doc, ...]:
    return tuple(doc for path in sorted(K8S.glob("*.yaml")) for doc in yaml_docs(path))


def k8s(kind: str, name: str | None = None) -> list[Doc]:
    return [
        doc
        for doc in k8s_docs()
        if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name)
    ]


def one(kind: str, name: str) -> Doc:
    (doc,) = k8s(kind, name)
    return doc


def deployment() -> Doc:
    return one("Deployment", ROUTER_DEPLOYMENT)


def pod_spec() -> Doc:
    spec: Doc = deployment()["spec"]["template"]["spec"]
    return spec


def pod_labels() -> dict[str, str]:
    labels: dict[str, str] = deployment()["spec"]["template"]["metadata"]["labels"]
    return labels


def container() -> Doc:
    containers: list[Doc] = pod_spec()["containers"]
    (found,) = (c for c in containers if c["name"] == ROUTER_CONTAINER)
    return found


def container_port(port: int | str) -> int:
    """A probe's or a Service's port: a number, or the name of a container port."""
    if isinstance(port, int):
        return port
    (number,) = (p["containerPort"] for p in container()["ports"] if p.get("name") == port)
    return int(number)


def literal_env() -> dict[str, str]:
    return {e["name"]: e["value"] for e in container()["env"] if "value" in e}


def secret_refs() -> dict[str, Doc]:
    return {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container()["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }


def secret_example() -> Doc:
    (secret,) = yaml_docs(K8S / "secret.example.yaml")
    assert isinstance(secret, dict)
    return secret


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def test_every_manifest_is_a_kubernetes_object() -> None:
    assert k8s_docs()
    for doc in k8s_docs():
        assert doc.get("apiVersion"), doc
        assert doc.get("kind"), doc
        if doc["kind"] != "Kustomization":
            assert doc["metadata"]["name"], doc


def test_kustomization_applies_every_manifest_but_the_secret_example() -> None:
    (kustomization,) = k8s("Kustomization")
    resources = kustomization["resources"]
    manifests = {p.name for p in K8S.glob("*.yaml")} - {
        "kustomization.yaml",
        "secret.example.yaml",  # applying it would overwrite the real keys
    }
    assert sorted(resources) == sorted(manifests)
    images = {image["name"] for image in kustomization["images"]}
    assert container()["image"].split(":")[0] in images


@pytest.mark.parametrize(
    ("probe", "path"),
    [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"), ("startupProbe", "/healthz")],
)
def test_probes_get_our_endpoints_on_our_port(probe: str, path: str) -> None:
    get = container()[probe]["httpGet"]
    assert get["path"] == path
    assert get["path"] in get_routes()
    assert container_port(get["port"]) == image_port()


def test_readiness_probe_outwaits_the_store_status_check() -> None:
    """/readyz waits up to _STORE_STATUS_TIMEOUT_S for Redis; a shorter probe timeout
    would take every replica out during a slow Redis (which must not fail readiness)."""
    timeout = container()["readinessProbe"]["timeoutSeconds"]
    assert timeout > decisions._STORE_STATUS_TIMEOUT_S


def test_liveness_waits_for_the_startup_probe() -> None:
    """Rules are loaded (and their tests run) before the port opens: the startup probe
    gives that time, so liveness never kills a replica that is still loading."""
    startup = container()["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30


def test_container_port_is_the_image_port_and_router_port() -> None:
    ports = {p["containerPort"] for p in container()["ports"]}
    assert ports == set(dockerfile().expose)
    assert int(dockerfile().env["ROUTER_PORT"]) == image_port()
    assert int(literal_env().get("ROUTER_PORT", dockerfile().env["ROUTER_PORT"])) == image_port()


def test_prometheus_annotations_scrape_metrics() -> None:
    annotations = deployment()["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == image_port()
    assert annotations["prometheus.io/path"] in get_routes()
    assert annotations["prometheus.io/path"] == "/metrics"


def test_env_names_are_router_settings() -> None:
    names = {e["name"] for e in container()["env"]}
    assert not names - SETTINGS_ENV - OTHER_ROUTER_ENV
    assert "envFrom" not in container(), "name every variable, so this test can check it"


def test_secret_holds_the_keys_and_the_deployment_reads_them() -> None:
    refs = secret_refs()
    assert {"ROUTER_API_KEYS", "POLYAI_API_KEY", "ROUTER_WEBHOOK_SECRET"} <= set(refs)
    secret = secret_example()
    assert {ref["name"] for ref in refs.values()} == {secret["metadata"]["name"]}
    assert {ref["key"] for ref in refs.values()} == set(secret["stringData"])
    assert set(secret["stringData"]) <= SETTINGS_ENV
    assert all(ref["key"] == name for name, ref in refs.items())
    # Without keys router refuses to listen on 0.0.0.0: the pod must not start without.
    assert not refs["ROUTER_API_KEYS"].get("optional", False)


def test_deployment_env_values_are_valid_settings() -> None:
    env = literal_env() | {name: "placeholder" for name in secret_refs()}
    settings = load_settings(**{**dockerfile().env, **env})
    assert settings.port == image_port()
    assert not settings.host_is_loopback()
    assert settings.store != "memory", "replicas must share a store"


def test_service_links_cannot_shadow_settings() -> None:
    """Kubernetes injects NAME_PORT=tcp://… for every Service (docker-links style): a
    Service named "router" would set ROUTER_PORT, and router would refuse to start."""
    injected: set[str] = set()
    for service in k8s("Service"):
        prefix = service["metadata"]["name"].upper().replace("-", "_")
        injected |= {f"{prefix}_SERVICE_HOST", f"{prefix}_SERVICE_PORT", f"{prefix}_PORT"}
        for port in service["spec"]["ports"]:
            proto = port.get("protocol", "TCP")
            base = f"{prefix}_PORT_{port['port']}_{proto}"
            injected |= {base, f"{base}_PROTO", f"{base}_PORT", f"{base}_ADDR"}
            if "name" in port:
                injected.add(f"{prefix}_SERVICE_PORT_{port['name'].upper().replace('-', '_')}")
    if injected & SETTINGS_ENV:
        assert pod_spec().get("enableServiceLinks") is False, sorted(injected & SETTINGS_ENV)


def test_rules_configmap_is_mounted_where_the_image_reads_rules() -> None:
    rules_path = dockerfile().env["ROUTER_RULES"]
    assert literal_env().get("ROUTER_RULES", rules_path) == rules_path
    (mount,) = (m for m in container()["volumeMounts"] if m["mountPath"] == rules_path)
    assert mount.get("readOnly") is True
    assert "subPath" not in mount, "a subPath mount never sees ConfigMap updates"
    (volume,) = (v for v in pod_spec()["volumes"] if v["name"] == mount["name"])
    (configmap,) = yaml_docs(K8S / "configmap-rules.yaml")
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]


def test_example_rules_configmap_loads_and_passes_its_tests() -> None:
    (configmap,) = yaml_docs(K8S / "configmap-rules.yaml")
    assert configmap["kind"] == "ConfigMap"
    data: dict[str, str] = configmap["data"]
    assert data
    assert sum(len(k) + len(v.encode()) for k, v in data.items()) < 1024 * 1024
    names: list[str] = []
    for filename, text in data.items():
        assert filename.endswith(RULE_FILE_SUFFIXES)
        assert not filename.startswith(".")
        loaded = load_bytes(text.encode(), filename, default_name=Path(filename).stem)
        errors = [str(p) for p in loaded.problems if p.severity == "error"]
        assert not errors, errors
        assert loaded.ruleset is not None
        failed = [r.name for r in run_tests(loaded.ruleset) if not r.ok]
        assert not failed, f"{filename}: tests fail: {failed}"
        names.append(loaded.ruleset.name)
    assert len(names) == len(set(names)), "two files name the same ruleset"


def test_tmp_is_writable_on_a_read_only_root() -> None:
    (mount,) = (m for m in container()["volumeMounts"] if m["mountPath"] == "/tmp")
    (volume,) = (v for v in pod_spec()["volumes"] if v["name"] == mount["name"])
    assert set(volume) == {"name", "emptyDir"}
    assert mount.get("readOnly") is not True


def test_security_context_matches_the_image_user() -> None:
    uid = int(dockerfile().user.split(":")[0])
    pod = pod_spec()["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == uid
    box = container()["securityContext"]
    assert box["readOnlyRootFilesystem"] is True
    assert box["allowPrivilegeEscalation"] is False
    assert box["capabilities"]["drop"] == ["ALL"]


def quantity(value: str | int) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    text = str(value)
    for unit, factor in sorted(units.items(), key=lambda u: -len(u[0])):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


def test_resources_have_requests_and_limits() -> None:
    resources = container()["resources"]
    for name in ("cpu", "memory"):
        request = quantity(resources["requests"][name])
        limit = quantity(resources["limits"][name])
        assert 0 < request <= limit, name
    # One asyncio process: more than one core per replica is waste (scale out instead).
    assert quantity(resources["limits"]["cpu"]) <= 2


def pre_stop_sleep_s() -> float:
    command = container()["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    return float(command[1])


def shutdown_budget_s() -> float:
    """The longest router takes to stop after SIGTERM: drain the requests in flight, let
    decision saves finish, flush the Redis outbox (router/server.py, service/, store)."""
    flush = inspect.signature(RedisStore.close).parameters["flush_within_s"].default
    return DRAIN_TIMEOUT_S + decisions._SAVE_DRAIN_TIMEOUT_S + float(flush)


def test_termination_grace_outlasts_the_drain() -> None:
    grace = pod_spec()["terminationGracePeriodSeconds"]
    assert grace >= 10
    assert grace > pre_stop_sleep_s() + shutdown_budget_s()


def test_topology_spread_across_zones_selects_our_pods() -> None:
    constraints = pod_spec()["topologySpreadConstraints"]
    assert "topology.kubernetes.io/zone" in {c["topologyKey"] for c in constraints}
    for constraint in constraints:
        assert matches(constraint["labelSelector"]["matchLabels"], pod_labels())


def test_selectors_match_the_deployment_labels() -> None:
    selector = deployment()["spec"]["selector"]["matchLabels"]
    assert matches(selector, pod_labels())
    service = one("Service", ROUTER_DEPLOYMENT)
    assert matches(service["spec"]["selector"], pod_labels())
    assert service["spec"]["selector"] == selector
    (pdb,) = k8s("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == selector
    (hpa,) = k8s("HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        deployment()["apiVersion"],
        "Deployment",
        ROUTER_DEPLOYMENT,
    )


def test_every_service_selects_a_deployment_and_a_port() -> None:
    deployments = k8s("Deployment")
    for service in k8s("Service"):
        (target,) = (
            d
            for d in deployments
            if matches(service["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])
        )
        pod_ports = {
            p.get("name"): p["containerPort"]
            for c in target["spec"]["template"]["spec"]["containers"]
            for p in c["ports"]
        }
        for port in service["spec"]["ports"]:
            wanted = port.get("targetPort", port["port"])
            assert wanted in pod_ports or wanted in pod_ports.values(), service


def test_service_forwards_to_the_router_port() -> None:
    service = one("Service", ROUTER_DEPLOYMENT)
    (port,) = service["spec"]["ports"]
    assert container_port(port["targetPort"]) == image_port()


def test_at_least_two_replicas_and_one_disruption_at_a_time() -> None:
    (hpa,) = k8s("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["minReplicas"] >= 2
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    # The HPA owns the count; a `replicas:` below its minimum would fight it on apply.
    assert deployment()["spec"].get("replicas", hpa["spec"]["minReplicas"]) >= 2
    (pdb,) = k8s("PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"].get("maxUnavailable") == 1 or pdb["spec"].get("minAvailable") == 1


def redis_target(store_url: str) -> tuple[str, int]:
    parts = urlsplit(store_url)
    assert parts.scheme in ("redis", "rediss")
    assert parts.hostname
    return parts.hostname, parts.port or 6379


def test_store_points_at_the_redis_service() -> None:
    host, port = redis_target(literal_env()["ROUTER_STORE"])
    service = one("Service", host)
    assert port in {p["port"] for p in service["spec"]["ports"]}
    (redis,) = (
        d
        for d in k8s("Deployment")
        if matches(service["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])
    )
    assert "NOT FOR PRODUCTION" in (K8S / "redis.yaml").read_text(encoding="utf-8")
    assert redis["spec"]["replicas"] == 1


# --- docker compose ------------------------------------------------------------------------


@cache
def compose() -> Doc:
    (doc,) = yaml_docs(COMPOSE)
    assert isinstance(doc, dict)
    return doc


def service(name: str) -> Doc:
    found: Doc = compose()["services"][name]
    return found


INTERPOLATION = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, from ``env``."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match[1], match[2], match[3]
        if env.get(name):
            return env[name]
        if op and op.endswith("?"):
            raise AssertionError(f"{name} is required: {arg}")
        return arg or ""

    return INTERPOLATION.sub(one, value)


def compose_router_env() -> dict[str, str]:
    environment: dict[str, str] = service("router")["environment"]
    return environment


def test_compose_has_redis_routers_and_a_balancer() -> None:
    services = compose()["services"]
    assert {"redis", "router", "lb"} <= set(services)
    assert service("router")["deploy"]["replicas"] >= 2
    assert "container_name" not in service("router"), "replicas need generated names"


def test_compose_builds_the_repo_dockerfile() -> None:
    build = service("router")["build"]
    context = (COMPOSE.parent / build["context"]).resolve()
    assert context == REPO
    assert (context / build.get("dockerfile", "Dockerfile")).is_file()


def test_compose_redis_is_official_ephemeral_and_checked() -> None:
    redis = service("redis")
    assert redis["image"].startswith("redis:")
    command = redis["command"]
    assert command[command.index("--save") + 1] == ""
    assert command[command.index("--appendonly") + 1] == "no"
    assert redis["healthcheck"]["test"][1:] == ["redis-cli", "ping"]


def test_compose_env_names_are_router_settings() -> None:
    env = compose_router_env()
    assert not set(env) - SETTINGS_ENV - OTHER_ROUTER_ENV
    # Each variable takes its value from the variable of the same name, so .env works.
    for name, value in env.items():
        used = {m[1] for m in INTERPOLATION.finditer(str(value))}
        assert used <= {name}, (name, value)
    assert re.fullmatch(r"\$\{ROUTER_API_KEYS:\?.+\}", env["ROUTER_API_KEYS"])


def test_compose_env_template_documents_every_variable() -> None:
    template = env_template(ENV_EXAMPLE)
    assert not set(template) - SETTINGS_ENV - COMPOSE_ONLY_VARS
    used = {m[1] for m in INTERPOLATION.finditer(COMPOSE.read_text(encoding="utf-8"))}
    assert used <= set(template)
    assert template["ROUTER_API_KEYS"], "the template needs a placeholder key"


def test_compose_env_values_are_valid_settings() -> None:
    template = env_template(ENV_EXAMPLE)
    env = {k: interpolate(str(v), template) for k, v in compose_router_env().items()}
    settings = load_settings(**{**dockerfile().env, **env})
    assert not settings.host_is_loopback()
    assert settings.parsed_api_keys()
    host, port = redis_target(settings.store)
    assert (host, port) == ("redis", 6379)
    with pytest.raises(AssertionError, match="ROUTER_API_KEYS is required"):
        interpolate(compose_router_env()["ROUTER_API_KEYS"], {})


def test_compose_mounts_the_rules_folder_read_only() -> None:
    (volume,) = service("router")["volumes"]
    assert volume["type"] == "bind"
    assert (COMPOSE.parent / volume["source"]).resolve() == REPO / "rules"
    assert volume["target"] == dockerfile().env["ROUTER_RULES"]
    assert volume["read_only"] is True


def test_compose_healthcheck_asks_readyz_on_the_image_port() -> None:
    test = service("router")["healthcheck"]["test"]
    (url,) = re.findall(r"http://[^'\"\s]+", " ".join(test))
    parts = urlsplit(url)
    assert parts.port == image_port()
    assert parts.path == "/readyz"
    assert parts.path in get_routes()
    assert [int(p) for p in service("router")["expose"]] == [image_port()]


def test_compose_starts_after_redis_and_stops_gracefully() -> None:
    router_service = service("router")
    assert router_service["depends_on"]["redis"]["condition"] == "service_healthy"
    grace = router_service["stop_grace_period"]
    assert grace.endswith("s")
    assert float(grace[:-1]) > shutdown_budget_s()
    assert router_service["read_only"] is True
    assert "/tmp" in router_service["tmpfs"]
    assert router_service["cap_drop"] == ["ALL"]


def test_balancer_sends_to_the_router_replicas() -> None:
    lb = service("lb")
    mounted = {
        (COMPOSE.parent / v["source"]).resolve(): v["target"]
        for v in lb["volumes"]
        if isinstance(v, dict)
    }
    assert mounted[HAPROXY] == "/usr/local/etc/haproxy/haproxy.cfg"
    config = haproxy_config(HAPROXY)
    assert config.servers
    assert set(config.servers) == {("router", image_port())}
    assert config.check_paths == ("/readyz",)
    assert all(path in get_routes() for path in config.check_paths)
    (published,) = lb["ports"]
    assert int(str(published).rpartition(":")[2]) in config.bind_ports
    assert lb["depends_on"]["router"]["condition"] == "service_healthy"


# --- Grafana -------------------------------------------------------------------------------


@cache
def dashboard() -> Doc:
    doc: Doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return doc


def panels() -> Iterator[Doc]:
    for panel in dashboard()["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries() -> list[str]:
    """Every PromQL expression: panel targets, annotations, and the variables' queries."""
    found = [t["expr"] for p in panels() for t in p.get("targets", [])]
    found += [a["expr"] for a in dashboard()["annotations"]["list"] if "expr" in a]
    for variable in dashboard()["templating"]["list"]:
        query = variable.get("query")
        texts = [query.get("query", "") if isinstance(query, dict) else str(query or "")]
        texts.append(variable.get("definition", ""))
        for text in texts:
            match = re.fullmatch(r"label_values\((.*),\s*\w+\)", text)
            if match:
                found.append(match[1])
    return found


PROMQL_WORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
    | {"and", "or", "unless", "inf", "nan"}
)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range selectors
    text = re.sub(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text
    )  # label lists
    names = set()
    for match in re.finditer(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        word = match[0]
        if text[match.end() :].lstrip().startswith("(") or word.lower() in PROMQL_WORDS:
            continue  # a function or an aggregation, or a keyword
        names.add(word)
    return names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'histogram_quantile(0.99, sum by (source, le) (rate(a_bucket{x="y"}[5m])))',
            {"a_bucket"},
        ),
        ("sum(b) / count(b and on (job, instance) c) or vector(0)", {"b", "c"}),
        ('sum by (result) (increase(d_total{j=~"$job"}[$__rate_interval])) > 0', {"d_total"}),
    ],
)
def test_metric_names_reads_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_dashboard_is_importable_with_a_prometheus_input() -> None:
    doc = dashboard()
    assert 36 <= doc["schemaVersion"] <= 41
    (ds_input,) = doc["__inputs"]
    assert ds_input["name"] == "DS_PROMETHEUS"
    assert ds_input["pluginId"] == "prometheus"
    for panel in panels():
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
    for annotation in doc["annotations"]["list"]:
        if not annotation.get("builtIn"):
            assert annotation["datasource"]["uid"] == "${DS_PROMETHEUS}", annotation["name"]
    for variable in doc["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == "${DS_PROMETHEUS}", variable["name"]
    ids = [panel["id"] for panel in panels()]
    assert len(ids) == len(set(ids))
    for panel in panels():
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


def test_dashboard_reads_only_metrics_router_exposes() -> None:
    series = exposed_series()
    for expr in queries():
        names = metric_names(expr)
        assert names, expr
        assert names <= series, (sorted(names - series), expr)


def test_dashboard_uses_only_its_own_variables() -> None:
    defined = {v["name"] for v in dashboard()["templating"]["list"]}
    for expr in queries():
        used = set(re.findall(r"\$(\w+)", expr)) - {"__rate_interval", "__interval", "__range"}
        assert used <= defined, expr


def test_dashboard_covers_the_contract_metrics() -> None:
    """Contract §2.4's families: decisions by outcome, degraded (fallback, failed lookups),
    latency quantiles, upstream errors and latency, breakers, reloads, versions, store."""
    read = {name for expr in queries() for name in metric_names(expr)}
    assert {
        "router_decisions_total",
        "router_decision_duration_seconds_bucket",
        "router_upstream_requests_total",
        "router_upstream_duration_seconds_bucket",
        "router_rules_reloads_total",
        "router_ruleset_info",
        "router_breaker_open",
        "router_store_up",
        "router_store_duration_seconds_bucket",
    } <= read
    exprs = queries()
    assert any("sum by (outcome)" in e and "router_decisions_total" in e for e in exprs)
    assert any('outcome="fallback"' in e for e in exprs)
    for q in ("0.5", "0.95", "0.99"):
        assert any(
            f"histogram_quantile({q}," in e and "router_decision_duration_seconds_bucket" in e
            for e in exprs
        ), q


def test_settings_env_is_what_settings_reads() -> None:
    """The allow-lists above stay honest: router reads the extra names, and a bad value of
    a listed setting is refused (so the names really are Settings fields)."""
    source = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "router").rglob("*.py"))
    for name in OTHER_ROUTER_ENV:
        assert name in source
    assert "ROUTER_PORT" in SETTINGS_ENV
    with pytest.raises(SettingsError, match="ROUTER_PORT"):
        load_settings(ROUTER_PORT="tcp://10.0.0.1:8080")
