"""The Kubernetes manifests (k8s/), checked with no cluster, no service and no network.

- Every object validates against the Kubernetes OpenAPI schemas that kubernetes-validate
  bundles, strictly (an unknown field is refused), for the oldest Kubernetes the manifests
  need and the newest the validator knows.
- They match what they deploy: env vars the settings read, every one production.py
  requires, the one image docker/ builds, commands that exist and take their arguments,
  gunicorn's bind and the consumer's metrics port, probe paths the app answers, shutdown
  times within the grace periods, a volume wherever the app writes under a read-only root,
  consumer replicas within the topic's partitions, and database connections within
  PostgreSQL's default limit at the autoscaler's maximum.
"""

import ast
import functools
import ipaddress
import json
import re
import secrets
import shlex
import socket
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path, PurePosixPath

import kubernetes_validate
import prometheus_client
import pytest
import yaml
from django.core.management import get_commands, load_command_class
from django.urls import resolve

from ingest.consumer import ConsumerSettings
from ingest.management.commands import consume_events
from mastery_project import health

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
SETTINGS = ROOT / "mastery_project" / "settings"
KUSTOMIZATION = "kustomization.yaml"
SECRET_TEMPLATE = "secret.template.yaml"
PLACEHOLDER = "CHANGE_ME"
# 1.31: the oldest these manifests need (PodDisruptionBudget's unhealthyPodEvictionPolicy
# is GA there); 1.37: the newest schemas kubernetes-validate 1.37.0 bundles.
KUBERNETES_VERSIONS = ("1.31", "1.37")
# Values that must stay out of a ConfigMap: they carry keys or passwords.
SECRET_NAME = re.compile(r"(KEY|PASSWORD|TOKEN|_URL)$")
# PostgreSQL's default max_connections (100) less its superuser_reserved_connections (3).
DATABASE_CONNECTIONS = 97
# Connections one process holds beside its request threads: a gunicorn worker's read-audit
# writer thread, a pod's /ready check (a connection of its own), run_worker's reaper.
GUNICORN_WORKER_BACKGROUND = 1
READY_CHECK = 1
WORKER_REAPER = 1


# --- what the files say ------------------------------------------------------------------


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != KUSTOMIZATION)


@functools.cache
def documents() -> dict[str, tuple[dict, ...]]:
    return {
        p.name: tuple(d for d in yaml.safe_load_all(p.read_text()) if d) for p in manifest_files()
    }


def objects() -> list[dict]:
    return [o for docs in documents().values() for o in docs]


def one(kind: str, name: str | None = None) -> dict:
    found = [o for o in objects() if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"{len(found)} {kind} objects named {name or 'anything'}"
    return found[0]


def pod_templates() -> dict[str, dict]:
    """Every workload's pod template, by kind/name."""
    templates = {}
    for o in objects():
        if o["kind"] in ("Deployment", "Job"):
            templates[f"{o['kind']}/{o['metadata']['name']}"] = o["spec"]["template"]
        elif o["kind"] == "CronJob":
            job = o["spec"]["jobTemplate"]["spec"]
            templates[f"CronJob/{o['metadata']['name']}"] = job["template"]
    return templates


def containers_of(pod_spec: dict) -> list[dict]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def all_containers() -> list[tuple[str, dict, dict]]:
    """(workload/container, pod spec, container) of every container, init ones included."""
    return [
        (f"{workload}/{c['name']}", template["spec"], c)
        for workload, template in pod_templates().items()
        for c in containers_of(template["spec"])
    ]


def main_container(deployment: str) -> tuple[dict, dict]:
    spec = one("Deployment", deployment)["spec"]["template"]["spec"]
    [container] = spec["containers"]
    return spec, container


def config_data() -> dict[str, str]:
    return one("ConfigMap")["data"]


def secret_data() -> dict[str, str]:
    return one("Secret")["stringData"]


def container_env(container: dict) -> dict[str, str]:
    """The process's environment: the image's ENV, then envFrom in order, then env."""
    env = dict(image_env())
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            assert source["configMapRef"]["name"] == one("ConfigMap")["metadata"]["name"]
            env.update(config_data())
        if "secretRef" in source:
            assert source["secretRef"]["name"] == one("Secret")["metadata"]["name"]
            env.update(secret_data())
    env.update({item["name"]: item["value"] for item in container.get("env", [])})
    return env


def named_port(container: dict, port: int | str) -> int:
    if isinstance(port, int):
        return port
    numbers = [p["containerPort"] for p in container.get("ports", []) if p["name"] == port]
    assert len(numbers) == 1, f"{container['name']} has no port named {port!r}"
    return numbers[0]


def probes(container: dict) -> dict[str, dict]:
    kinds = ("startupProbe", "livenessProbe", "readinessProbe")
    return {kind: container[kind] for kind in kinds if kind in container}


def host_header(probe: dict) -> str | None:
    headers = probe["httpGet"].get("httpHeaders", [])
    return next((h["value"] for h in headers if h["name"].lower() == "host"), None)


@functools.cache
def image_stage() -> tuple[tuple[str, str], ...]:
    """The Dockerfile's runtime stage (after the last FROM): (INSTRUCTION, arguments)."""
    text = re.sub(r"\\\n", " ", (ROOT / "docker" / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    instructions = [
        (word.upper(), rest.strip())
        for word, _, rest in (line.partition(" ") for line in lines if line and line[0] != "#")
    ]
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return tuple(instructions[last_from + 1 :])


def image_instruction(word: str) -> str:
    """The arguments of the runtime stage's last `word` instruction (the one in effect)."""
    return [rest for w, rest in image_stage() if w == word][-1]


def image_env() -> dict[str, str]:
    return dict(
        item.split("=", 1) for w, rest in image_stage() if w == "ENV" for item in shlex.split(rest)
    )


@functools.cache
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())


def compose_image() -> str:
    """The image docker/compose.yaml builds from docker/Dockerfile (one for every service)."""
    built = {
        s["image"]
        for s in compose()["services"].values()
        if s.get("build", {}).get("dockerfile") == "docker/Dockerfile"
    }
    [image] = built
    return image


def compose_commands(service: str) -> list[list[str]]:
    """A compose service's command, as the list of commands a `sh -c "a && b"` runs."""
    command = compose()["services"][service]["command"]
    if command[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in command[2].split("&&")]
    return [command]


def image_repository(image: str) -> str:
    return image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image


def env_read(node: ast.AST) -> str | None:
    """The variable a node reads from the environment, if it does: env("X", ...),
    env.int("X", ...), os.environ.get / setdefault("X", ...), os.environ["X"]."""
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        func = ast.unparse(node.func)
        if func == "env" or func.startswith("env.") or func.startswith("os.environ."):
            return node.args[0].value
    if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
        return getattr(node.slice, "value", None)
    return None


def env_reads(path: Path) -> dict[str, list[ast.AST]]:
    """The environment variables a Python file reads, each with the nodes that read it."""
    reads: dict[str, list[ast.AST]] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(name := env_read(node), str):
            reads.setdefault(name, []).append(node)
    return reads


def settings_reads() -> set[str]:
    return {name for path in SETTINGS.glob("*.py") for name in env_reads(path)}


def production_requires() -> set[str]:
    """Read by django-environ without a default, unconditionally (not under an `if`), by
    production.py or the base.py it imports."""
    required = set()
    for file in ("base.py", "production.py"):
        for statement in ast.parse((SETTINGS / file).read_text()).body:
            if isinstance(statement, (ast.If, ast.FunctionDef, ast.ClassDef)):
                continue
            for node in ast.walk(statement):
                name = env_read(node)
                if (
                    isinstance(name, str)
                    and ast.unparse(node.func).split(".")[0] == "env"
                    and not any(k.arg == "default" for k in node.keywords)
                ):
                    required.add(name)
    return required


def setting_default(name: str):
    [call] = env_reads(SETTINGS / "base.py")[name]
    return ast.literal_eval(next(k.value for k in call.keywords if k.arg == "default"))


def effective(env: dict[str, str], name: str) -> int:
    return int(env.get(name, setting_default(name)))


@functools.cache
def filled_secret() -> dict[str, str]:
    """The Secret as an operator fills it in: a fresh random value for each placeholder."""
    return {k: secrets.token_urlsafe(48) for k, v in secret_data().items() if v == PLACEHOLDER}


def run_as_pod(args: list[str], env: dict[str, str], metrics_dir: Path):
    """Runs `args` from the repository (the image's /app) with a pod's environment alone;
    `metrics_dir` stands in for the pod's emptyDir at PROMETHEUS_MULTIPROC_DIR."""
    return subprocess.run(
        args,
        cwd=ROOT,
        env={
            **env,
            "PATH": str(Path(sys.executable).parent),
            "PYTHONPATH": str(ROOT),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@functools.cache
def gunicorn_config() -> dict:
    """gunicorn's own reading of the web container's command, config file and environment
    (`--print-config` loads the application too, so the pod's settings must boot)."""
    _, web = main_container("mastery-web")
    assert web["command"][0] == "gunicorn"
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    with tempfile.TemporaryDirectory() as metrics_dir:
        result = run_as_pod(
            [gunicorn, "--print-config", *web["command"][1:]],
            {**container_env(web), **filled_secret()},
            Path(metrics_dir),
        )
    assert result.returncode == 0, result.stderr[-3000:]
    config = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" = ")
        config[key.strip()] = value.strip()
    return config


def parsed_command(command: list[str]):
    """The options a `python manage.py NAME ARGS` container command runs with (the
    command's own parser: an unknown command or a bad argument fails)."""
    assert command[:2] == ["python", "manage.py"], command
    name, args = command[2], command[3:]
    commands = get_commands()
    assert name in commands, f"no management command {name!r}"
    parser = load_command_class(commands[name], name).create_parser("manage.py", name)
    return parser.parse_args(args)


def quantity(value: str | int) -> float:
    """A Kubernetes quantity (500m, 2, 512Mi, 1Gi) as a number."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "": 1}
    number, unit = re.fullmatch(r"([0-9.]+)(m|Ki|Mi|Gi|)", str(value)).groups()
    return float(number) * units[unit]


def mount_for(pod_spec: dict, container: dict, path: str) -> dict | None:
    """The volume under which `path` lies in the container (the deepest mount), if any."""
    target = PurePosixPath(path)
    mounts = [
        m
        for m in container.get("volumeMounts", [])
        if target == PurePosixPath(m["mountPath"])
        or PurePosixPath(m["mountPath"]) in target.parents
    ]
    if not mounts:
        return None
    deepest = max(mounts, key=lambda m: len(PurePosixPath(m["mountPath"]).parts))
    [volume] = [v for v in pod_spec["volumes"] if v["name"] == deepest["name"]]
    return {"mountPath": deepest["mountPath"], **volume}


# --- the schemas -------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch):
    """Any connection or name lookup fails: the validator must have its schemas with it."""

    def refuse(*args, **kwargs):
        raise OSError("network access in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.name)
def test_every_manifest_validates_strictly_offline(no_network, path, version):
    docs = documents()[path.name]
    assert docs, f"{path.name} holds no object"
    for doc in docs:
        validated = kubernetes_validate.validate(doc, version, strict=True)
        assert validated == version


def test_the_validator_refuses_an_unknown_field_and_a_wrong_type(no_network):
    deployment = one("Deployment", "mastery-web")
    container = {**deployment["spec"]["template"]["spec"]["containers"][0], "colour": "blue"}
    unknown = {
        **deployment,
        "spec": {
            **deployment["spec"],
            "template": {
                **deployment["spec"]["template"],
                "spec": {**deployment["spec"]["template"]["spec"], "containers": [container]},
            },
        },
    }
    with pytest.raises(kubernetes_validate.ValidationError, match="colour"):
        kubernetes_validate.validate(unknown, KUBERNETES_VERSIONS[0], strict=True)
    wrong = {**deployment, "spec": {**deployment["spec"], "revisionHistoryLimit": "five"}}
    with pytest.raises(kubernetes_validate.ValidationError, match="five"):
        kubernetes_validate.validate(wrong, KUBERNETES_VERSIONS[0], strict=True)


def test_the_kustomization_applies_every_manifest_but_the_secret_template():
    kustomization = yaml.safe_load((K8S / KUSTOMIZATION).read_text())
    assert sorted(kustomization["resources"]) == sorted(
        p.name for p in manifest_files() if p.name != SECRET_TEMPLATE
    )
    assert [i["name"] for i in kustomization["images"]] == [image_repository(compose_image())]


def test_every_object_is_in_the_one_namespace_and_every_reference_resolves():
    namespace = one("Namespace")["metadata"]["name"]
    for o in objects():
        if o["kind"] != "Namespace":
            assert o["metadata"].get("namespace") == namespace, o["metadata"]["name"]
    for o in objects():
        if o["kind"] == "Deployment":
            selector = o["spec"]["selector"]["matchLabels"]
            assert selector.items() <= o["spec"]["template"]["metadata"]["labels"].items()
    claims = {o["metadata"]["name"] for o in objects() if o["kind"] == "PersistentVolumeClaim"}
    for workload, template in pod_templates().items():
        for volume in template["spec"].get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, workload
        for container in containers_of(template["spec"]):
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in {v["name"] for v in template["spec"]["volumes"]}
            for probe in probes(container).values():
                action = probe.get("httpGet") or probe.get("tcpSocket")
                named_port(container, action["port"])
    web = one("Deployment", "mastery-web")
    web_labels = web["spec"]["template"]["metadata"]["labels"]
    service = one("Service", "mastery-web")
    assert service["spec"]["selector"].items() <= web_labels.items()
    _, web_container = main_container("mastery-web")
    for port in service["spec"]["ports"]:
        named_port(web_container, port["targetPort"])
    assert (
        one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= web_labels.items()
    )
    target = one("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", web["metadata"]["name"])


# --- settings and secrets ----------------------------------------------------------------


def test_every_env_var_the_manifests_set_is_read_by_the_code_that_runs():
    read = settings_reads() | {"DJANGO_SETTINGS_MODULE"}
    assert set(config_data()) - read == set(), "ConfigMap keys no setting reads"
    assert set(secret_data()) - read == set(), "Secret keys no setting reads"
    gunicorn_reads = set(env_reads(ROOT / "gunicorn.conf.py"))
    for name, _, container in all_containers():
        own = {item["name"] for item in container.get("env", [])}
        allowed = read | (gunicorn_reads if container["command"][0] == "gunicorn" else set())
        assert own - allowed == set(), f"{name} sets variables its process does not read"
    module = config_data()["DJANGO_SETTINGS_MODULE"]
    assert (ROOT / Path(*module.split("."))).with_suffix(".py").is_file(), module


def test_every_variable_production_requires_is_set_and_secrets_are_in_the_secret():
    required = production_requires()
    assert {"SECRET_KEY", "DATABASE_URL", "ALLOWED_HOSTS"} <= required, required
    assert required - (set(config_data()) | set(secret_data())) == set()
    assert [name for name in config_data() if SECRET_NAME.search(name)] == []
    assert sorted(n for n in required if SECRET_NAME.search(n)) == sorted(
        n for n in secret_data() if n in required
    )
    for name, _, container in all_containers():
        assert required <= container_env(container).keys(), name


def test_the_secret_template_holds_placeholders_only():
    secret = one("Secret")
    assert "data" not in secret, "base64 data would hide whether the values are placeholders"
    for name, value in secret_data().items():
        assert PLACEHOLDER in value, f"{name} is not a placeholder"


def production_boot(env: dict[str, str], requests: list[list[str]], tmp_path: Path):
    script = str(Path(__file__).with_name("production_boot.py"))
    return run_as_pod([sys.executable, script, json.dumps(requests)], env, tmp_path)


def test_production_boots_from_the_manifests_and_answers_the_probes(tmp_path):
    """The ConfigMap and a filled-in Secret pass `check --deploy`, and the liveness paths
    answer 200 with the probes' Host header (Django's host check, the HTTPS redirect)."""
    envs = [container_env(c) for _, _, c in all_containers()]
    env = {}
    for each in envs:
        assert all(env.get(k, v) == v for k, v in each.items()), "containers disagree"
        env.update(each)
    _, web = main_container("mastery-web")
    requests = [
        [probe["httpGet"]["path"], host_header(probe)]
        for kind, probe in probes(web).items()
        if kind != "readinessProbe"
    ]
    result = production_boot({**env, **filled_secret()}, requests, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    statuses = json.loads(result.stdout.splitlines()[-1])
    assert statuses == {f"{path} {host}": 200 for path, host in requests}


def test_production_refuses_the_secret_template_as_it_is(tmp_path):
    _, web = main_container("mastery-web")
    result = production_boot(container_env(web), [], tmp_path)
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY" in result.stderr, result.stderr[-3000:]


# --- image, commands, ports --------------------------------------------------------------


def test_one_image_everywhere_the_one_docker_builds_as_the_image_user():
    image = {c["image"] for _, _, c in all_containers()}
    assert len(image) == 1, image
    [image] = image
    assert image_repository(image) == image_repository(compose_image())
    assert image.rsplit(":", 1)[-1] not in ("latest", image), "pin a tag"
    uid, gid = (int(part) for part in image_instruction("USER").split(":"))
    for workload, template in pod_templates().items():
        context = template["spec"]["securityContext"]
        assert context["runAsNonRoot"] is True, workload
        assert (context["runAsUser"], context["runAsGroup"]) == (uid, gid), workload
        assert context["seccompProfile"]["type"] == "RuntimeDefault", workload
        assert template["spec"]["automountServiceAccountToken"] is False, workload
        assert template["spec"]["enableServiceLinks"] is False, workload
    for name, _, container in all_containers():
        assert container["imagePullPolicy"] == "IfNotPresent", name
        assert "workingDir" not in container, f"{name}: commands run from the image's /app"
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        resources = container["resources"]
        for resource in ("cpu", "memory"):
            request = quantity(resources["requests"][resource])
            assert 0 < request <= quantity(resources["limits"][resource]), f"{name} {resource}"


def test_the_processes_run_the_commands_of_the_image_and_compose():
    _, web = main_container("mastery-web")
    assert web["command"] == json.loads(image_instruction("CMD")) == compose_commands("web")[0]
    for process in ("consumer", "worker"):
        _, container = main_container(f"mastery-{process}")
        assert [container["command"]] == compose_commands(process)
    job = one("Job", "mastery-migrate")["spec"]["template"]["spec"]
    assert [c["command"] for c in containers_of(job)] == compose_commands("migrate")
    cron = one("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert [c["command"][:3] for c in containers_of(cron)] == [
        ["python", "manage.py", "purge_expired"]
    ]
    assert image_instruction("WORKDIR") == "/app"


def test_every_management_command_exists_and_takes_its_arguments():
    ran = set()
    for _, _, container in all_containers():
        if container["command"][0] == "gunicorn":
            continue
        parsed_command(container["command"])
        ran.add(container["command"][2])
    assert {"consume_events", "run_worker", "migrate", "kafka_topics", "purge_expired"} <= ran


def test_the_gunicorn_command_names_the_config_and_an_application():
    _, web = main_container("mastery-web")
    command = web["command"]
    config = command[command.index("--config") + 1]
    assert (ROOT / config).is_file(), f"no {config} in the image's /app"
    application = next(arg for arg in command[1:] if not arg.startswith("-") and arg != config)
    module = application.split(":")[0]
    assert (ROOT / Path(*module.split("."))).with_suffix(".py").is_file(), application
    # gunicorn read the file the command names: each value it sets is in effect.
    set_in_file = {
        target.id: statement.value.value
        for statement in ast.parse((ROOT / config).read_text()).body
        if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant)
        for target in statement.targets
    }
    assert {"worker_class", "graceful_timeout"} <= set_in_file.keys()
    for name, value in set_in_file.items():
        assert gunicorn_config()[name] == str(value), name


def test_the_ports_are_gunicorns_bind_and_the_consumers_metrics_port():
    _, web = main_container("mastery-web")
    [bind] = ast.literal_eval(gunicorn_config()["bind"])
    host, port = bind.rsplit(":", 1)
    assert ipaddress.ip_address(host).is_unspecified, "gunicorn must listen beyond loopback"
    [http] = web["ports"]
    assert http["containerPort"] == int(port)
    template = one("Deployment", "mastery-web")["spec"]["template"]
    assert template["metadata"]["annotations"]["prometheus.io/port"] == port
    for probe in probes(web).values():
        assert named_port(web, probe["httpGet"]["port"]) == int(port)
    [service_port] = one("Service", "mastery-web")["spec"]["ports"]
    assert named_port(web, service_port["targetPort"]) == int(port)

    _, consumer = main_container("mastery-consumer")
    env = container_env(consumer)
    options = parsed_command(consumer["command"])
    metrics_port = (
        options.metrics_port
        if "--metrics-port" in consumer["command"]
        else effective(env, "KAFKA_CONSUMER_METRICS_PORT")
    )
    assert metrics_port != 0, "the metrics server (and so the probes) would be off"
    [metrics] = consumer["ports"]
    assert metrics["containerPort"] == metrics_port
    template = one("Deployment", "mastery-consumer")["spec"]["template"]
    assert template["metadata"]["annotations"]["prometheus.io/port"] == str(metrics_port)
    addr = env.get("KAFKA_CONSUMER_METRICS_ADDR", setting_default("KAFKA_CONSUMER_METRICS_ADDR"))
    assert ipaddress.ip_address(addr).is_unspecified, "the kubelet probes the pod's address"
    for probe in probes(consumer).values():
        assert named_port(consumer, probe["httpGet"]["port"]) == metrics_port


# --- probes, shutdown, writes ------------------------------------------------------------


def test_the_web_probes_are_health_for_liveness_and_ready_for_readiness():
    _, web = main_container("mastery-web")
    views = {kind: resolve(probe["httpGet"]["path"]).func for kind, probe in probes(web).items()}
    assert views == {
        "startupProbe": health.health,
        "livenessProbe": health.health,
        "readinessProbe": health.ready,
    }
    allowed = config_data()["ALLOWED_HOSTS"].split(",")
    for kind, probe in probes(web).items():
        assert host_header(probe) in allowed, f"{kind}: Django would answer 400 to the kubelet"
    # /ready answers within READY_TIMEOUT; a probe timing out first would fail a pod whose
    # dependencies are all up.
    assert web["readinessProbe"]["timeoutSeconds"] > health.READY_TIMEOUT


def test_the_consumer_probes_get_what_its_metrics_server_answers():
    """consume_events serves prometheus_client's server, which has no health path: every
    path but /favicon.ico answers the metrics. The probes' paths are asked of a real one."""
    assert consume_events.start_http_server is prometheus_client.start_http_server
    _, consumer = main_container("mastery-consumer")
    assert set(probes(consumer)) == {"startupProbe", "livenessProbe", "readinessProbe"}
    server, thread = prometheus_client.start_http_server(0, addr="127.0.0.1")
    try:
        for kind, probe in probes(consumer).items():
            url = f"http://127.0.0.1:{server.server_port}{probe['httpGet']['path']}"
            with urllib.request.urlopen(url, timeout=5) as answer:
                assert answer.status == 200, kind
                content_type = answer.headers.get("Content-Type", "")
                assert content_type.startswith("text/plain"), f"{kind}: not the metrics"
                assert b"# TYPE " in answer.read(), f"{kind}: not the metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_the_grace_periods_outlast_each_process_graceful_shutdown():
    spec, web = main_container("mastery-web")
    pause = web["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[0] == "sleep"
    graceful = int(gunicorn_config()["graceful_timeout"])
    assert spec["terminationGracePeriodSeconds"] > int(pause[1]) + graceful
    # The batch in hand is dead-lettered (one flush) and the consumer closes (another).
    spec, _ = main_container("mastery-consumer")
    assert spec["terminationGracePeriodSeconds"] > 2 * ConsumerSettings.dlq_timeout


def test_every_path_the_app_writes_is_on_a_volume_of_the_right_kind():
    """The root filesystem is read-only: tempfile's /tmp, prometheus_client's directory
    (which it does not create: the mount makes it), gunicorn's control socket and heartbeat
    files, and the erasure ledger, which must outlive the pod and be shared by the web pods."""
    for name, spec, container in all_containers():
        env = container_env(container)
        assert "TMPDIR" not in env, "tempfile would write elsewhere than /tmp"
        tmp = mount_for(spec, container, "/tmp")
        assert tmp is not None, f"{name}: tempfile would write to the read-only root"
        assert "emptyDir" in tmp, name
        metrics = mount_for(spec, container, env["PROMETHEUS_MULTIPROC_DIR"])
        assert metrics["mountPath"] == env["PROMETHEUS_MULTIPROC_DIR"], name
        assert "emptyDir" in metrics, name
    spec, web = main_container("mastery-web")
    config = gunicorn_config()
    assert config["worker_tmp_dir"] == "None", "gunicorn's heartbeat files go to tempfile's /tmp"
    assert mount_for(spec, web, str(PurePosixPath(config["control_socket"]).parent)) is not None
    ledger = mount_for(
        spec, web, str(PurePosixPath(container_env(web)["ERASURE_LEDGER_FILE"]).parent)
    )
    assert ledger is not None, "the erasure ledger would be written to the read-only root"
    assert "persistentVolumeClaim" in ledger, f"the erasure ledger would die with the pod: {ledger}"
    claim = one("PersistentVolumeClaim", ledger["persistentVolumeClaim"]["claimName"])
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"], "every web pod appends to it"


# --- scaling -----------------------------------------------------------------------------


def test_consumer_replicas_stay_within_the_topics_partitions():
    deployment = one("Deployment", "mastery-consumer")
    _, consumer = main_container("mastery-consumer")
    partitions = effective(container_env(consumer), "KAFKA_EVENTS_PARTITIONS")
    surge = deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    assert 1 <= deployment["spec"]["replicas"] + surge <= partitions
    for hpa in (o for o in objects() if o["kind"] == "HorizontalPodAutoscaler"):
        if hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]:
            assert hpa["spec"]["maxReplicas"] <= partitions


def test_the_autoscaler_and_the_budget_leave_a_web_pod_serving():
    web = one("Deployment", "mastery-web")
    assert "replicas" not in web["spec"], "the HPA owns the count; apply would reset it"
    hpa = one("HorizontalPodAutoscaler")["spec"]
    pdb = one("PodDisruptionBudget")["spec"]
    assert hpa["minReplicas"] - pdb["maxUnavailable"] >= 1
    assert web["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    # An outage of a shared dependency makes every web pod unready at once (/ready): that
    # must not block node drains.
    assert pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_database_connections_fit_at_the_autoscalers_maximum():
    config = gunicorn_config()
    workers, threads = int(config["workers"]), int(config["threads"])
    per_web_pod = workers * (threads + GUNICORN_WORKER_BACKGROUND) + READY_CHECK
    web = one("Deployment", "mastery-web")["spec"]["strategy"]["rollingUpdate"]
    web_pods = one("HorizontalPodAutoscaler")["spec"]["maxReplicas"] + web["maxSurge"]
    consumers = one("Deployment", "mastery-consumer")["spec"]["replicas"]
    workers_pods = one("Deployment", "mastery-worker")["spec"]["replicas"]
    jobs = sum(1 for o in objects() if o["kind"] in ("Job", "CronJob"))
    total = web_pods * per_web_pod + consumers + workers_pods * (1 + WORKER_REAPER) + jobs
    assert total <= DATABASE_CONNECTIONS, f"{total} connections at the HPA's maximum"
