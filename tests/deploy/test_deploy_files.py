"""deploy/ validated offline: Compose against the Compose specification, the Kubernetes
manifests against the Kubernetes schemas, the systemd units with systemd-analyze.

The schemas come bundled with the validators (the test extra): check-jsonschema ships
the compose-spec JSON schema (vendor.compose-spec), kubernetes-validate the Kubernetes
OpenAPI schemas of 1.25 to 1.37 (strict variants: an unknown field is an error). No
network at test time. KEDA's ScaledObject and TriggerAuthentication are custom
resources that no bundled schema covers: what they reference is checked here instead
(the Deployment, the Secret key), and their query runs against the real jobs table.

Beyond the schemas, the files must agree with the code: every LTXSERVE_* variable they
set is a setting, and every ltxserve command line they run parses with the real CLI.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from sqlalchemy import create_engine, insert

from ltxserve.config import Settings
from ltxserve.jobs.store import tables
from tests.store.conftest import pg_database
from tests.support import ROOT

DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
K8S = DEPLOY / "k8s"
SYSTEMD = DEPLOY / "systemd"
# The oldest Kubernetes these manifests promise to work on, and the newest bundled.
K8S_VERSIONS = ["1.29", kubernetes_validate.utils.latest_version()]
# Custom resources: no bundled schema (see the module docstring).
CRD_API_VERSIONS = {"keda.sh/v1alpha1", "kustomize.config.k8s.io/v1beta1"}


# Named in #13 item 1 for the S3 store, which another change makes selectable; until
# then they are read by storage/s3.py's callers rather than by Settings.
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())  # resolves << merges
    return data


def manifests() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                yield path, doc


def by_kind(kind: str, name: str) -> dict[str, Any]:
    found = [d for _, d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


# -- Compose ---------------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
        + [str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok -- validation done" in out.stdout


def test_compose_runs_migrate_once_then_two_apis_behind_the_proxy_and_gpu_workers() -> None:
    services = compose()["services"]
    apis = sorted(n for n, s in services.items() if s.get("command", [None])[0] == "serve")
    workers = sorted(n for n, s in services.items() if s.get("command", [None])[0] == "worker")
    assert apis == ["api-1", "api-2"]
    assert services["migrate"]["command"] == ["migrate"]
    caddyfile = (DEPLOY / "caddy" / "Caddyfile").read_text()
    assert re.search(r"reverse_proxy api-1:8000 api-2:8000", caddyfile)
    assert "./caddy/Caddyfile:/etc/caddy/Caddyfile:ro" in services["proxy"]["volumes"]
    assert workers, "no GPU worker"
    for name in apis + workers:
        svc = services[name]
        assert svc["environment"]["LTXSERVE_MIGRATE"] == "never", name
        assert svc["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    gpus = []
    for name in workers:
        (device,) = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"], name
        gpus += device["device_ids"]
    assert len(gpus) == len(set(gpus)) == len(workers)  # one GPU each, none shared


def test_compose_builds_targets_the_dockerfile_defines() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", dockerfile, re.M))
    for name, svc in compose()["services"].items():
        if "build" in svc:
            context = COMPOSE.parent / svc["build"]["context"]
            built_from = (context / svc["build"]["dockerfile"]).resolve()
            assert built_from == (DEPLOY / "Dockerfile").resolve(), name
            assert context.resolve() == ROOT.resolve(), name  # COPY src/ ... from the root
            assert svc["build"]["target"] in stages, name
    for src in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.M):
        for part in src.split():
            assert (ROOT / part).exists(), part
    # the base install is the SDK alone: each image names the extra it runs
    installs = dict(re.findall(r"^FROM \S+ AS (\S+)\nRUN pip install (.*)$", dockerfile, re.M))
    assert "[server]" in installs["api"] and "[ltx]" in installs["worker"], installs


def test_the_image_build_context_makes_a_wheel_with_the_migrations(tmp_path: Path) -> None:
    """The Dockerfile's build stage, offline: the files Dockerfile.dockerignore lets into
    the context make a wheel, and it carries what `ltxserve migrate` and `serve` read
    from the package (migrations, model table, web files)."""
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    admitted = [line[1:].rstrip("/") for line in ignore if line.startswith("!")]
    assert "*" in ignore and sorted(admitted) == ["README.md", "pyproject.toml", "src"]
    context = tmp_path / "context"
    context.mkdir()
    for name in admitted:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, context / name)
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["--wheel-dir", str(tmp_path / "wheels"), str(context)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    (wheel,) = (tmp_path / "wheels").glob("ltxserve-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    versions = ROOT / "src" / "ltxserve" / "jobs" / "store" / "migrations" / "versions"
    for migration in versions.glob("*.py"):
        assert f"ltxserve/jobs/store/migrations/versions/{migration.name}" in names
    for needed in ("migrations/env.py", "migrations/script.py.mako"):
        assert f"ltxserve/jobs/store/{needed}" in names
    assert "ltxserve/data/models.json" in names
    assert any(n.startswith("ltxserve/web/") for n in names)


# -- Kubernetes ------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_are_valid_against_the_kubernetes_schemas(version: str) -> None:
    validated, custom = [], []
    for path, doc in manifests():
        if doc["apiVersion"] in CRD_API_VERSIONS:
            custom.append(doc["kind"])
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{path.name}: {doc['kind']} {doc['metadata']['name']}: {exc.message}")
        validated.append(doc["kind"])
    assert sorted(validated) == sorted(
        ["ConfigMap", "Secret", "Deployment", "Service", "PodDisruptionBudget"]
        + ["Deployment", "PersistentVolumeClaim", "Job"]
    )
    assert sorted(custom) == ["Kustomization", "ScaledObject", "TriggerAuthentication"]


def test_manifests_refer_to_what_exists() -> None:
    api = by_kind("Deployment", "ltxserve-api")
    worker = by_kind("Deployment", "ltxserve-worker")
    job = by_kind("Job", "ltxserve-migrate")
    service = by_kind("Service", "ltxserve-api")
    secret = by_kind("Secret", "ltxserve-secrets")
    config = by_kind("ConfigMap", "ltxserve-config")

    labels = api["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert api["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (container,) = pod_spec(api)["containers"]
    ports = {p["name"] for p in container["ports"]}
    assert service["spec"]["ports"][0]["targetPort"] in ports
    paths = {"readinessProbe": "/readyz", "livenessProbe": "/healthz"}  # docs/operations.md
    for probe, path in paths.items():
        assert container[probe]["httpGet"]["path"] == path
        assert container[probe]["httpGet"]["port"] in ports

    assert "LTXSERVE_SECRET" in secret["stringData"]
    assert "LTXSERVE_DATABASE_URL" in secret["stringData"]
    assert config["data"]["LTXSERVE_MIGRATE"] == "never"
    for owner in (api, worker, job):
        (c,) = pod_spec(owner)["containers"]
        refs = {next(iter(e.values()))["name"] for e in c["envFrom"]}
        assert refs == {"ltxserve-config", "ltxserve-secrets"}
    (wc,) = pod_spec(worker)["containers"]
    assert wc["resources"]["requests"]["nvidia.com/gpu"] == 1
    assert wc["resources"]["limits"]["nvidia.com/gpu"] == 1
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in pod_spec(worker)["volumes"]
        if "persistentVolumeClaim" in v
    }
    for claim in claims:
        by_kind("PersistentVolumeClaim", claim)
    assert pod_spec(job)["containers"][0]["args"] == ["migrate"]

    scaled = by_kind("ScaledObject", "ltxserve-worker")
    assert scaled["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "postgresql"
    auth = by_kind("TriggerAuthentication", trigger["authenticationRef"]["name"])
    (ref,) = auth["spec"]["secretTargetRef"]
    assert ref["parameter"] == "connection" and ref["name"] == secret["metadata"]["name"]
    assert secret["stringData"][ref["key"]].startswith("postgresql://")  # libpq, for KEDA

    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for resource in kust["resources"]:
        assert (K8S / resource).is_file(), resource


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from pg_database()


def test_keda_query_counts_the_jobs_waiting_for_or_holding_a_worker(
    pg_url: str, tmp_path: Path
) -> None:
    """The autoscaling query runs on the real jobs table, as migrations make it."""
    out = subprocess.run(
        [sys.executable, "-m", "ltxserve.cli", "migrate", "--data-dir", str(tmp_path)],
        env={**os.environ, "LTXSERVE_DATABASE_URL": pg_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    (trigger,) = by_kind("ScaledObject", "ltxserve-worker")["spec"]["triggers"]
    statuses = ["pending"] * 3 + ["processing"] * 2 + ["completed"] * 4 + ["failed"]
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            for n, status in enumerate(statuses):
                conn.execute(
                    insert(tables.jobs).values(
                        id=f"job-{n}",
                        api_key_id="k",
                        endpoint="text-to-video",
                        status=status,
                        request={},
                        created_at=n,
                    )
                )
        with engine.connect() as conn:
            (count,) = conn.exec_driver_sql(trigger["metadata"]["query"]).one()
    finally:
        engine.dispose()
    assert count == 5


# -- systemd ---------------------------------------------------------------------------


def test_systemd_units_verify(tmp_path: Path) -> None:
    """systemd-analyze verify, with the one thing this machine lacks supplied: the
    ltxserve executable the units name (a stub at another path; the rest as written).
    verify exits 0 on settings it ignores, so any line naming a unit fails too."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    stub = tmp_path / "bin" / "ltxserve"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    units = sorted(SYSTEMD.glob("*.service"))
    assert {u.name for u in units} == {
        "ltxserve-api@.service",
        "ltxserve-worker@.service",
        "ltxserve-migrate.service",
    }
    for unit in units:
        text = unit.read_text()
        assert "ExecStart=/opt/ltxserve/venv/bin/ltxserve " in text, unit.name
        (tmp_path / unit.name).write_text(
            text.replace("/opt/ltxserve/venv/bin/ltxserve", str(stub))
        )
    names = [u.name.replace("@.", "@8001.") for u in units]
    out = subprocess.run(
        [analyze, "verify", *names],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    complaints = [line for line in (out.stdout + out.stderr).splitlines() if "ltxserve" in line]
    assert out.returncode == 0 and not complaints, out.stdout + out.stderr


# -- agreement with the code -----------------------------------------------------------


def deploy_texts() -> dict[str, str]:
    files = [COMPOSE, DEPLOY / "example.env", *K8S.glob("*.yaml"), *SYSTEMD.glob("*")]
    return {str(f.relative_to(ROOT)): f.read_text() for f in files}


def test_every_ltxserve_variable_set_is_a_setting() -> None:
    known = {f"LTXSERVE_{name.upper()}" for name in Settings.model_fields}
    used: dict[str, set[str]] = {}
    for name, text in deploy_texts().items():
        for var in re.findall(r"\b(LTXSERVE_[A-Z0-9_]+)\s*[:=]", text):
            used.setdefault(var, set()).add(name)
    for var in re.findall(r"name: (LTXSERVE_[A-Z0-9_]+)", "\n".join(deploy_texts().values())):
        used.setdefault(var, set()).add("k8s env")
    assert {"LTXSERVE_DATABASE_URL", "LTXSERVE_SECRET", "LTXSERVE_MIGRATE"} <= used.keys()
    unknown = {var: files for var, files in used.items() if var not in known}
    assert not unknown, unknown


def command_lines() -> Iterator[tuple[str, list[str]]]:
    for name, svc in compose()["services"].items():
        if str(svc.get("image", "")).startswith("ltxserve:"):
            yield f"compose {name}", svc["command"]
    for path, doc in manifests():
        if doc["kind"] in ("Deployment", "Job"):
            for c in pod_spec(doc)["containers"]:
                yield f"{path.name} {c['name']}", c["args"]
    for unit in SYSTEMD.glob("*.service"):
        (line,) = re.findall(r"^ExecStart=\S+ (.*)$", unit.read_text(), re.M)
        yield unit.name, shlex.split(line.replace("%i", "8001"))
    for cmd in re.findall(r"^CMD (\[.*\])$", (DEPLOY / "Dockerfile").read_text(), re.M):
        yield "Dockerfile", json.loads(cmd)


def test_every_command_line_parses_with_the_real_cli() -> None:
    """`--help` after the arguments: click parses them all first, so an option the CLI
    does not have fails (exit 2) where a correct line prints the help (exit 0)."""
    seen = set()
    for where, argv in command_lines():
        seen.add(argv[0])
        out = subprocess.run(
            [sys.executable, "-m", "ltxserve.cli", *argv, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, (where, argv, out.stderr)
    assert seen == {"serve", "worker", "migrate"}
