"""deploy/kubernetes: every manifest valid against the Kubernetes API schemas
(kubernetes-validate, which ships them: offline), and what the service needs
of them: probes on the health endpoints, resources, secrets by reference,
non-root with a read-only root file system, a PodDisruptionBudget each.
"""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from deploy.tests.documented import GUNICORN_VARIABLES, ROOT, documented_variables

MANIFESTS = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]  # the oldest we support, the newest schemas


def manifest_files() -> list[Path]:
    return sorted(p for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml")


def resources() -> list[dict]:
    found = []
    for path in manifest_files():
        found += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def by_kind(kind: str) -> dict[str, dict]:
    return {r["metadata"]["name"]: r for r in resources() if r["kind"] == kind}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid(version):
    checked = 0
    for resource in resources():
        # strict: no field the schema does not know (a typo is an error).
        kubernetes_validate.validate(resource, version, strict=True)
        checked += 1
    assert checked == 7


def test_the_validator_catches_a_mistake():
    deployment = by_kind("Deployment")["payshift-web"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["livenessProbe"]["httpGet"]["paht"] = "/typo"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == [p.name for p in manifest_files()]


def test_the_expected_objects():
    assert set(by_kind("Deployment")) == {"payshift-web", "payshift-worker"}
    assert set(by_kind("PodDisruptionBudget")) == {"payshift-web", "payshift-worker"}
    assert set(by_kind("Service")) == {"payshift-web"}
    assert set(by_kind("Job")) == {"payshift-migrate"}
    assert set(by_kind("ConfigMap")) == {"payshift-signup"}


def pod_specs() -> dict[str, dict]:
    specs = {name: d["spec"]["template"]["spec"] for name, d in by_kind("Deployment").items()}
    specs |= {name: j["spec"]["template"]["spec"] for name, j in by_kind("Job").items()}
    return specs


def test_selectors_match():
    deployments = by_kind("Deployment")
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items()
        pdb = by_kind("PodDisruptionBudget")[name]
        assert pdb["spec"]["selector"]["matchLabels"] == selector
        assert pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]
    service = by_kind("Service")["payshift-web"]
    assert (
        service["spec"]["selector"]
        == deployments["payshift-web"]["spec"]["selector"]["matchLabels"]
    )


def test_non_root_read_only_with_a_writable_tmp():
    for name, spec in pod_specs().items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] == 10001, name  # the image's user
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            volumes = {v["name"]: v for v in spec["volumes"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], name  # noqa: S108


def test_resources_requested_and_limited():
    for name, spec in pod_specs().items():
        for container in spec["containers"]:
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert {"cpu", "memory"} <= set(resources["limits"]), name


def test_probes_on_the_health_endpoints():
    config = by_kind("ConfigMap")["payshift-signup"]["data"]
    first_host = config["ALLOWED_HOSTS"].split(",")[0]
    web = by_kind("Deployment")["payshift-web"]["spec"]["template"]["spec"]["containers"][0]
    assert web["livenessProbe"]["httpGet"]["path"] == "/api/v1/health/live"
    assert web["startupProbe"]["httpGet"]["path"] == "/api/v1/health/live"
    assert web["readinessProbe"]["httpGet"]["path"] == "/api/v1/health/ready"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        # Django answers 400 to a Host not in ALLOWED_HOSTS (a pod IP is not).
        assert web[probe]["httpGet"]["httpHeaders"] == [{"name": "Host", "value": first_host}]
        assert web[probe]["httpGet"]["port"] == "http"
    assert web["ports"] == [{"name": "http", "containerPort": 8000}]
    worker = by_kind("Deployment")["payshift-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert worker["command"][:3] == ["python", "manage.py", "rundramatiq"]
    assert worker["livenessProbe"]["exec"]["command"] == ["python", "/app/healthcheck.py"]
    assert (ROOT / "deploy" / "image" / "healthcheck.py").exists()


def test_grace_periods():
    deployments = by_kind("Deployment")
    web = deployments["payshift-web"]["spec"]["template"]["spec"]
    pre_stop = web["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    # preStop sleep + gunicorn's graceful timeout (30 s, its default) < grace.
    assert int(pre_stop[1]) + 30 < web["terminationGracePeriodSeconds"]
    worker = deployments["payshift-worker"]["spec"]["template"]["spec"]
    command = worker["containers"][0]["command"]
    shutdown_ms = int(command[command.index("--worker-shutdown-timeout") + 1])
    # Above the actors' time limit (60 s), below the grace period.
    assert 60_000 < shutdown_ms < worker["terminationGracePeriodSeconds"] * 1000


def test_secrets_by_reference_and_variables_the_service_reads():
    known = documented_variables() | GUNICORN_VARIABLES
    secret_keys = {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "MFA_ENCRYPTION_KEY"}
    config = by_kind("ConfigMap")["payshift-signup"]["data"]
    assert set(config) <= known, set(config) - known
    assert not set(config) & (secret_keys | {"EMAIL_HOST_PASSWORD", "METRICS_TOKEN"})
    for name, spec in pod_specs().items():
        container = spec["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert set(env) <= known, set(env) - known
        for key in secret_keys:
            reference = env[key]["valueFrom"]["secretKeyRef"]
            assert reference == {"name": "payshift-signup", "key": key}, name
        for variable in env.values():
            if "valueFrom" in variable:
                assert variable["valueFrom"]["secretKeyRef"]["name"] == "payshift-signup"
            else:
                assert variable["name"] not in secret_keys
        assert container["envFrom"] == [{"configMapRef": {"name": "payshift-signup"}}]
