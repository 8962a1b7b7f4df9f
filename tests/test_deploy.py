"""deploy/ checked without Docker or a cluster: every YAML file parses; the Compose file uses
only the images, builds, volumes and services it declares, and its databases are the ones its
PostgreSQL init script makes; the Kubernetes manifests reference only what exists (volumes,
ConfigMaps, Secrets, ports, labels) and their TOML configs load with the real config classes;
every `coalition …` command line in compose, Kubernetes, the Dockerfile, the scripts and the
README parses with the real CLI parser; the health probe tells a serving server from none."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import re
import shlex
import sys
import tomllib
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest
import yaml

from coalition_cli.connection import OperatorSettings
from coalition_kernel.rpc import Server
from coalition_kernel.settings import sections
from exchange.runtime import ExchangeConfig
from merchant_node.config import NodeConfig

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
K8S = DEPLOY / "k8s"
HEALTH_CHECK = DEPLOY / "grpc_health_check.py"


# --- the real `coalition` parser ----------------------------------------------------------


class _Built(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser


def _refusing(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Makes `parser` and its subparsers raise on a bad command line instead of exiting, and
    take options only by their full names (a shortened one works today and breaks when the
    CLI gains an option with the same prefix)."""

    def error(message: str) -> NoReturn:
        raise ValueError(f"{parser.prog}: {message}")

    parser.error = error  # type: ignore[method-assign]
    parser.allow_abbrev = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _refusing(sub)
    return parser


@pytest.fixture(scope="module")
def coalition_parser() -> argparse.ArgumentParser:
    """The parser `coalition_cli.main.main` builds, caught at its parse_args call (main has no
    parser-building function of its own), so these checks follow the CLI as it changes."""
    from coalition_cli.main import main

    def capture(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        raise _Built(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", capture)
        try:
            main([])
        except _Built as built:
            return _refusing(built.parser)
    raise AssertionError("coalition_cli.main.main() built no parser")


# --- `coalition …` command lines, wherever deploy/ writes them ------------------------------

_SHELL_VARIABLE = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_@#?*0-9]\w*")
_OPERATORS = set("();<>|&")
_IMAGE = re.compile(r"(\S*/)?coalition:[\w.-]+")


def shell_commands(text: str, services: set[str]) -> Iterator[list[str]]:
    """The argv after `coalition` of every coalition command in shell text: first word of a
    simple command (after VAR=value or exec), after `--` (kubectl exec), after a compose service
    name (`docker compose run --rm operator coalition …`) or after the image
    (`docker run coalition:dev coalition …`). Shell variables become "1"."""
    text = text.replace("\\\n", " ")
    for line in text.splitlines():
        lexer = shlex.shlex(_SHELL_VARIABLE.sub("1", line), posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            tokens = list(lexer)
        except ValueError:
            assert "coalition " not in line, f"cannot split: {line}"
            continue
        segment: list[str] = []
        for token in [*tokens, ";"]:
            if set(token) <= _OPERATORS:
                yield from _coalition_in(segment, services)
                segment = []
            else:
                segment.append(token)


def _coalition_in(words: list[str], services: set[str]) -> Iterator[list[str]]:
    for i, word in enumerate(words):
        if word != "coalition":
            continue
        before = words[:i]
        leading = all(re.fullmatch(r"\w+=\S*|exec", w) for w in before)
        if leading or before[-1] == "--" or before[-1] in services or _IMAGE.fullmatch(before[-1]):
            yield words[i + 1 :]
            return


def compose_file() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def compose_commands() -> Iterator[tuple[str, list[str]]]:
    services = compose_file()["services"]
    for name, service in services.items():
        command = service.get("command")
        if isinstance(command, str):
            command = shlex.split(command)
        if not command:
            continue
        if command[0] == "coalition":
            yield f"compose {name}", command[1:]
        elif command[:2] == ["sh", "-c"]:
            script = command[2].replace("$$", "$")  # Compose's escape of a literal $
            for argv in shell_commands(script, set(services)):
                yield f"compose {name}", argv


def yaml_documents(path: pathlib.Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def k8s_documents() -> Iterator[tuple[pathlib.Path, dict[str, Any]]]:
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in yaml_documents(path):
            if isinstance(doc, dict) and "kind" in doc:
                yield path, doc


def containers_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def k8s_commands() -> Iterator[tuple[str, list[str]]]:
    for path, doc in k8s_documents():
        for container in containers_of(doc):
            argv = [*container.get("command", []), *container.get("args", [])]
            if argv and argv[0] == "coalition":
                yield f"{path.relative_to(ROOT)} {container['name']}", argv[1:]


def dockerfile_commands() -> Iterator[tuple[str, list[str]]]:
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if re.match(r"(CMD|ENTRYPOINT) \[", line):
            argv = json.loads(line.split(" ", 1)[1])
            if argv[0] == "coalition":
                yield "Dockerfile", argv[1:]


def script_commands() -> Iterator[tuple[str, list[str]]]:
    services = set(compose_file()["services"])
    for path in sorted(DEPLOY.rglob("*.sh")):
        for argv in shell_commands(path.read_text(), services):
            yield str(path.relative_to(ROOT)), argv


def readme_commands() -> Iterator[tuple[str, list[str]]]:
    services = set(compose_file()["services"])
    text = (DEPLOY / "README.md").read_text()
    for block in re.findall(r"^```(?:sh|bash|shell|console)?\n(.*?)^```", text, re.M | re.S):
        for argv in shell_commands(block, services):
            yield "deploy/README.md", argv


def _command_name(argv: list[str]) -> str:
    """`exchange serve`, `worker`, `operator onboard`: the words before the first option."""
    words = []
    for word in argv[:2]:
        if word.startswith("-"):
            break
        words.append(word)
    return " ".join(words)


SOURCES = {
    "compose": compose_commands,
    "kubernetes": k8s_commands,
    "dockerfile": dockerfile_commands,
    "scripts": script_commands,
    "readme": readme_commands,
}

# What each place must at least say, so that a check finding nothing cannot pass.
EXPECTED = {
    "compose": {"exchange init", "exchange serve", "node init", "node serve", "worker"},
    "kubernetes": {"exchange serve", "node serve", "worker"},
    "dockerfile": {"demo"},
    "scripts": {"operator onboard"},
    "readme": {"demo", "exchange init", "exchange serve", "node init", "node serve", "worker"},
}


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_every_coalition_command_line_parses_with_the_real_cli(source, coalition_parser):
    commands = list(SOURCES[source]())
    problems = []
    for where, argv in commands:
        try:
            parsed = coalition_parser.parse_args(argv)
        except ValueError as refusal:
            problems.append(f"{where}: coalition {shlex.join(argv)}\n    {refusal}")
            continue
        if not hasattr(parsed, "run"):
            problems.append(f"{where}: coalition {shlex.join(argv)} is not a whole command")
    assert not problems, "\n".join(problems)
    said = {_command_name(argv) for _, argv in commands}
    assert EXPECTED[source] <= said, f"{source} lacks {EXPECTED[source] - said}"


def test_the_command_finder_sees_what_the_shell_would_run():
    services = {"operator", "exchange"}
    found = list(
        shell_commands(
            "x=$(docker compose -p coalition run --rm operator coalition operator list) \\\n"
            '  && PGPASSWORD=p exec coalition node serve --config "$dir/node.toml"\n'
            "kubectl create namespace coalition; kubectl exec deploy/x -- coalition demo\n"
            "docker run --rm coalition:dev coalition demo --keep  # a comment\n",
            services,
        )
    )
    assert found == [
        ["operator", "list"],
        ["node", "serve", "--config", "1/node.toml"],
        ["demo"],
        ["demo", "--keep"],
    ]


def test_a_wrong_option_is_refused_by_the_captured_parser(coalition_parser):
    with pytest.raises(ValueError, match="required: --config"):
        coalition_parser.parse_args(["exchange", "serve"])
    with pytest.raises(ValueError, match="unrecognized arguments: --conf"):
        coalition_parser.parse_args(["node", "serve", "--conf", "x"])  # --config, shortened
    with pytest.raises(ValueError, match="unrecognized arguments: --nope"):
        coalition_parser.parse_args(["exchange", "serve", "--config", "x", "--nope"])


# --- every YAML file ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")]),
    ids=lambda p: str(p.relative_to(DEPLOY)),
)
def test_yaml_file_parses(path):
    documents = yaml_documents(path)
    assert documents and all(isinstance(doc, dict) for doc in documents)


# --- Compose --------------------------------------------------------------------------------


def test_compose_uses_only_what_it_declares():
    compose = compose_file()
    services, volumes = compose["services"], set(compose.get("volumes") or {})
    builds = set()
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        image = service.get("image", "")
        assert "build" in service or re.search(r":[\w.${}:-]+$", image), f"{name}: unpinned {image}"
        if "build" in service:
            context = (COMPOSE.parent / service["build"]["context"]).resolve()
            dockerfile = context / service["build"]["dockerfile"]
            assert dockerfile.is_file(), f"{name}: no {dockerfile}"
            builds.add(dockerfile)
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name}: no {source}"
            else:
                assert source in volumes, f"{name}: volume {source} is not declared"
        for needed in service.get("depends_on", {}):
            assert needed in services, f"{name} depends on unknown {needed}"
    assert builds == {DEPLOY / "Dockerfile"}, "every coalition process is built from one image"


def test_compose_servers_have_grpc_health_checks_and_database_passwords():
    for name, service in compose_file()["services"].items():
        command = " ".join(service.get("command") or [])
        if "coalition" in command and " serve " in command:
            test = service["healthcheck"]["test"]
            assert test[:2] == ["CMD", "grpc-health-check"], name
        if re.search(r"coalition (exchange|node) (init|serve)|coalition worker", command):
            assert "PGPASSWORD" in service.get("environment", {}), name


def test_compose_databases_are_the_ones_the_postgres_init_script_makes():
    script = (DEPLOY / "compose" / "postgres" / "init-databases.sh").read_text()
    owners = {}
    for role, databases in re.findall(r"^role_and_database (\w+) \S+ ([\w ]+)$", script, re.M):
        for database in databases.split():
            owners[database] = role
    text = COMPOSE.read_text()
    used = re.findall(r"postgresql\+psycopg2://(\w+)@postgres:5432/(\w+)", text)
    assert len(used) == 4  # the exchange and three nodes
    for role, database in used:
        assert owners.get(database) == role, f"{role}@{database} is not made by the init script"
    assert owners.get("temporal") == owners.get("temporal_visibility") == "temporal"


def test_onboard_script_registers_the_compose_nodes_where_they_serve():
    services = compose_file()["services"]
    script = (DEPLOY / "compose" / "onboard.sh").read_text()
    onboarded = re.findall(r'^onboard ([\w-]+) "', script, re.M)
    nodes = {n for n, s in services.items() if "node serve" in " ".join(s.get("command") or [])}
    assert set(onboarded) == nodes
    assert '--endpoint "$1:50051"' in script and '--node-config "/data/$1/node.toml"' in script
    operator_mounts = {m.split(":")[1] for m in services["operator"]["volumes"]}
    for node in nodes:
        assert f"/data/{node}/node.toml" in " ".join(services[node]["command"])
        assert f"/data/{node}" in operator_mounts
        assert "0.0.0.0:50051" in " ".join(services[f"{node}-init"]["command"])


def test_dockerfile_copies_only_what_its_context_keeps():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    kept = {
        line[1:].rstrip("/")
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    sources = [
        source
        for line in dockerfile.splitlines()
        if line.startswith("COPY ")
        for source in [w for w in line.split()[1:] if not w.startswith("--")][:-1]
    ]
    assert len(sources) > 5
    for source in sources:
        assert (ROOT / source).exists(), source
        assert source.rstrip("/") in kept, f"{source} is excluded from the build context"
    assert "FROM python:3.11-slim" in dockerfile


# --- Kubernetes -----------------------------------------------------------------------------


def kustomization(folder: pathlib.Path) -> dict[str, Any]:
    return yaml.safe_load((folder / "kustomization.yaml").read_text())


def kustomize_folders() -> list[pathlib.Path]:
    return sorted(path.parent for path in K8S.rglob("kustomization.yaml"))


def example_secrets() -> dict[str, set[str]]:
    return {
        doc["metadata"]["name"]: set(doc.get("stringData", {}))
        for doc in yaml_documents(K8S / "secrets.example.yaml")
    }


def test_kustomizations_name_files_that_exist():
    for folder in kustomize_folders():
        k = kustomization(folder)
        for resource in k.get("resources", []):
            assert (folder / resource).exists(), f"{folder}: {resource}"
        for generated in k.get("configMapGenerator", []):
            for file in generated.get("files", []):
                assert (folder / file).is_file(), f"{folder}: {file}"


def test_workloads_reference_only_what_exists():
    secrets = example_secrets()
    for folder in kustomize_folders():
        k = kustomization(folder)
        config_maps = {g["name"]: g.get("files", []) for g in k.get("configMapGenerator", [])}
        docs = [
            doc
            for r in k.get("resources", [])
            if r.endswith(".yaml")
            for doc in yaml_documents(folder / r)
        ]
        pods = [doc for doc in docs if doc["kind"] == "Deployment"]
        for doc in pods:
            name = doc["metadata"]["name"]
            template = doc["spec"]["template"]
            labels = template["metadata"]["labels"]
            assert doc["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
            volumes = {v["name"]: v for v in template["spec"].get("volumes", [])}
            for container in containers_of(doc):
                _check_container(name, container, volumes, config_maps, secrets)
        for service in (doc for doc in docs if doc["kind"] == "Service"):
            selector = service["spec"]["selector"].items()
            targets = [
                p for p in pods if selector <= p["spec"]["template"]["metadata"]["labels"].items()
            ]
            assert targets, f"Service {service['metadata']['name']} selects no Deployment"
            ports = {p["name"] for c in containers_of(targets[0]) for p in c.get("ports", [])}
            for port in service["spec"]["ports"]:
                assert port["targetPort"] in ports, service["metadata"]["name"]


def _check_container(workload, container, volumes, config_maps, secrets):  # type: ignore[no-untyped-def]
    where = f"{workload}/{container['name']}"
    resources = container.get("resources", {})
    assert {"cpu", "memory"} <= set(resources.get("requests", {})), where
    assert {"cpu", "memory"} <= set(resources.get("limits", {})), where
    mounts = {}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]  # KeyError: a mount of no volume
        if "configMap" in volume:
            assert volume["configMap"]["name"] in config_maps, where
            mounts[mount["mountPath"]] = set(config_maps[volume["configMap"]["name"]])
        if "secret" in volume:
            assert volume["secret"]["secretName"] in secrets, where
            mounts[mount["mountPath"]] = secrets[volume["secret"]["secretName"]]
    for env in container.get("env", []):
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["key"] in secrets.get(ref["name"], ()), f"{where}: {ref}"
    # Every file the command or its TOML config names is in a mounted ConfigMap or Secret.
    files = [a for a in container.get("command", []) if a.startswith("/etc/")]
    for config in files:
        _assert_mounted(where, config, mounts)
        toml = _generated_file(config, config_maps)
        for value in toml.values() if toml else []:
            if isinstance(value, str) and value.startswith("/etc/"):
                _assert_mounted(where, value, mounts)
    ports = {p["containerPort"] for p in container.get("ports", [])}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if probe in container:
            command = container[probe]["exec"]["command"]
            assert command[0] == "grpc-health-check", where
            assert int(command[1].rsplit(":", 1)[1]) in ports, f"{where}: {probe} port"
    if ports:
        assert "readinessProbe" in container and "livenessProbe" in container, where


def _assert_mounted(where: str, path: str, mounts: dict[str, set[str]]) -> None:
    folder, name = path.rsplit("/", 1)
    assert name in mounts.get(folder, set()), f"{where}: {path} is not in a mounted volume"


def _generated_file(path: str, config_maps: dict[str, list[str]]) -> dict[str, Any] | None:
    name = path.rsplit("/", 1)[1]
    for files in config_maps.values():
        if name in files:
            for found in K8S.rglob(name):
                data = tomllib.loads(found.read_text())
                return {k: v for section in data.values() for k, v in section.items()}
    return None


def test_kubernetes_configs_load_with_the_real_config_classes(monkeypatch):
    for name in list(os.environ):
        if name.upper().startswith("COALITION_"):
            monkeypatch.delenv(name)
    config = ExchangeConfig.load(K8S / "exchange" / "exchange.toml")
    assert config.listen.startswith("0.0.0.0:") and "@" in config.database_url
    assert ":" not in config.database_url.split("//", 1)[1].split("@", 1)[0], "no password in URL"
    loaded = NodeConfig.load(K8S / "merchant-node" / "node.toml")
    assert loaded.listen.startswith("0.0.0.0:") and loaded.exchange_endpoint
    assert (loaded.admin_token, loaded.notifications.smtp_password) == ("", "")  # not in the file


def manifest_environment() -> Iterator[tuple[str, str]]:
    """(where, variable name) of every variable the manifests give a container."""
    for path, doc in k8s_documents():
        for container in containers_of(doc):
            for env in container.get("env", []):
                yield f"{path.name}: {container['name']}", env["name"]
    for name, service in compose_file()["services"].items():
        environment = service.get("environment", {})
        names = environment if isinstance(environment, list) else list(environment)
        for variable in names:
            yield f"compose: {name}", variable.split("=", 1)[0]


def test_configuration_variables_in_the_manifests_name_real_keys():
    """A misspelt COALITION_NODE__… would be ignored silently (the file's value stands)."""
    classes = {
        "COALITION_NODE": NodeConfig,
        "COALITION_EXCHANGE": ExchangeConfig,
        "COALITION_OPERATOR": OperatorSettings,
    }
    seen = set()
    for where, variable in manifest_environment():
        prefix, _, key = variable.partition("__")
        if prefix not in classes:
            continue
        seen.add(variable)
        owner: Any = classes[prefix]
        *tables, last = key.lower().split("__")
        for table in tables:
            owner = sections(owner)[table]  # KeyError: no such table
        assert last in owner.__dataclass_fields__, f"{where}: {variable} names no config key"
    assert {
        "COALITION_NODE__ADMIN_TOKEN",
        "COALITION_NODE__NOTIFICATIONS__SMTP_PASSWORD",
        "COALITION_OPERATOR__EXCHANGE",
    } <= seen


def test_workers_reach_the_temporal_and_namespaces_of_the_helm_values():
    values = yaml.safe_load((K8S / "temporal" / "values.yaml").read_text())
    config = values["server"]["config"]
    stores = config["persistence"]["datastores"]
    assert {s["sql"]["pluginName"] for s in stores.values()} == {"postgres12"}
    assert {s["sql"]["existingSecret"] for s in stores.values()} <= set(example_secrets())
    namespaces = {n["name"] for n in config["namespaces"]["namespace"]}
    workers = [argv for _, argv in k8s_commands() if argv[0] == "worker"]
    assert len(workers) == 2  # settlement beside the exchange, expiry beside the node
    for argv in workers:
        assert argv[argv.index("--temporal") + 1].startswith("temporal-frontend.temporal.svc")
        namespace = argv[argv.index("--namespace") + 1] if "--namespace" in argv else "default"
        assert namespace in namespaces


def test_readme_names_only_files_that_exist():
    text = (DEPLOY / "README.md").read_text()
    named = re.findall(r"\bdeploy/(?:compose|k8s|Dockerfile|grpc_health_check)[\w./-]*\w", text)
    assert named
    for path in named:
        assert (ROOT / path).exists(), path
    for path in re.findall(r"`((?:compose|k8s)/[\w./-]*)`", text):
        assert (DEPLOY / path).exists(), path


# --- the health probe -----------------------------------------------------------------------


async def _probe(target: str) -> int:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HEALTH_CHECK),
        target,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(process.wait(), timeout=20)


async def test_health_probe_passes_a_serving_server_and_fails_a_stopped_one():
    server = Server([], listen="127.0.0.1:0")
    port = await server.start()
    try:
        assert await _probe(f"127.0.0.1:{port}") == 0
    finally:
        await server.stop(grace=0)
    assert await _probe(f"127.0.0.1:{port}") == 1
