"""The real engine against a real API server: preview, up, a no-change preview, destroy.

Needs the Pulumi CLI with its Python language host and the kubernetes and command plugins
at the versions the wheels pin. They cannot be built in this project's air-gapped CI (the
Go module proxy it reaches has no release of pulumi-language-python, pulumi-command's
provider or a released pulumi-kubernetes provider), so these tests run wherever those
tools are installed and skip, saying why, where they are not.

No pod can run here, so the stack runs with `readiness: skip` (its documented switch for
render-and-apply environments) and every chart source points at a local stand-in chart with
the upstream name, value keys and object kinds. The CRDs in those charts are the real
upstream files from shared/, so the API server validates our custom resources against the
real schemas.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_DIR, UPSTREAM_CRDS

CHARTS = Path(__file__).parent / "charts"
OUR_NAMESPACES = {"cert-manager", "istio-system", "kserve", "knative-operator", "knative-serving"}
KEPT_CRD_GROUPS = {"networking.istio.io", "security.istio.io", "telemetry.istio.io", "extensions.istio.io"}
"""Istio's base chart marks its CRDs helm.sh/resource-policy: keep; they outlive a destroy (README)."""


def _crds(*paths: Path) -> str:
    return "\n---\n".join(p.read_text() for p in paths)


@pytest.fixture(scope="module")
def local_charts(tmp_path_factory) -> Path:
    """The stand-in charts, with the real upstream CRDs placed where the real charts keep theirs."""
    root = tmp_path_factory.mktemp("charts")
    shutil.copytree(CHARTS, root, dirs_exist_ok=True)
    cert = sorted((UPSTREAM_CRDS / "cert-manager").glob("*.yaml"))
    (root / "cert-manager/templates/crds.yaml").write_text(
        "{{- if .Values.crds.enabled }}\n" + _crds(*cert) + "\n{{- end }}\n")
    (root / "base/templates/crds.yaml").write_text(_crds(UPSTREAM_CRDS / "istio/crd-all.gen.yaml"))
    (root / "knative-operator/templates/crds.yaml").write_text(
        _crds(*sorted((UPSTREAM_CRDS / "knative-operator").glob("*.yaml"))))
    (root / "kserve-crd/templates/crds.yaml").write_text(_crds(*sorted((UPSTREAM_CRDS / "kserve").glob("*.yaml"))))
    return root


def stack_config(stack: str, charts: Path) -> dict:
    doc = yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]
    names = {
        "certManager": "cert-manager", "istioBase": "base", "istiod": "istiod", "istioGateway": "gateway",
        "knativeOperator": "knative-operator", "kserveCrd": "kserve-crd", "kserve": "kserve-resources",
        "kserveRuntimes": "kserve-runtime-configs",
    }
    sources = {key: {"path": str(charts / name)} for key, name in names.items()}
    sources["gatewayApiCrds"] = {"path": str(UPSTREAM_CRDS / "gateway-api")}
    doc["kserve-stack:readiness"] = "skip"
    doc["kserve-stack:sources"] = sources
    return doc


@pytest.fixture(scope="module")
def pulumi_cli() -> str:
    cli = shutil.which("pulumi")
    host = shutil.which("pulumi-language-python")
    if cli and not host:
        host = next(iter(Path(cli).parent.glob("pulumi-language-python")), None)
    if not cli or not host:
        pytest.skip("the Pulumi CLI and pulumi-language-python are not installed, and no Go module source for "
                    "the language host is reachable here to build them")
    plugins = subprocess.run([cli, "plugin", "ls", "--json"], capture_output=True, text=True, timeout=60)
    names = {p.get("name") for p in json.loads(plugins.stdout or "[]")} if plugins.returncode == 0 else set()
    if not {"kubernetes", "command"} <= names:
        pytest.skip(f"the kubernetes and command resource plugins are not installed (have: {sorted(names)})")
    return cli


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the program whose Pulumi.yaml points at the project's virtualenv."""
    work = tmp_path / "project"
    work.mkdir()
    for name in ("__main__.py", "components", "kserve_stack", "model"):
        src = PROJECT_DIR / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / name)
    meta = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())
    meta["runtime"]["options"]["virtualenv"] = str(PROJECT_DIR / ".venv")
    meta.pop("backend")
    (work / "Pulumi.yaml").write_text(yaml.safe_dump(meta))
    return work


def run_pulumi(project: Path, env: dict, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    result = subprocess.run(["pulumi", *args, "--non-interactive"], cwd=project, env=env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"pulumi {' '.join(args)} failed:\n{result.stdout[-6000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.mark.parametrize("stack", ["standard", "serverless"])
def test_preview_up_no_change_preview_destroy(stack, pulumi_cli, apiserver, local_charts, project, tmp_path):
    from kubernetes import client
    from kubernetes import config as kube_config

    api = kube_config.new_client_from_config(config_file=str(apiserver.kubeconfig))
    env = {
        **os.environ,
        "KUBECONFIG": str(apiserver.kubeconfig),
        "PULUMI_BACKEND_URL": f"file://{tmp_path / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": "integration",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "KSERVE_STACK_CACHE": str(tmp_path / "cache"),
    }
    (tmp_path / "state").mkdir()
    (project / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": stack_config(stack, local_charts)}))
    run_pulumi(project, env, "stack", "init", stack)

    run_pulumi(project, env, "preview", "-s", stack)
    run_pulumi(project, env, "up", "--yes", "--skip-preview", "-s", stack)
    run_pulumi(project, env, "preview", "--expect-no-changes", "-s", stack)

    outputs = json.loads(run_pulumi(project, env, "stack", "output", "--json", "-s", stack).stdout)
    sep = "-" if stack == "standard" else "."
    assert outputs["mode"] == stack
    assert outputs["predict_url"] == f"http://model{sep}default.example.com/v1/models/model:predict"
    assert outputs["internal_predict_url"] == "http://model-predictor.default.svc.cluster.local/v1/models/model:predict"

    custom = client.CustomObjectsApi(api)
    isvc = custom.get_namespaced_custom_object("serving.kserve.io", "v1beta1", "default", "inferenceservices", "model")
    mode = "Standard" if stack == "standard" else "Knative"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == mode
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "pvc://model-model-store/model"
    runtime = custom.get_cluster_custom_object("serving.kserve.io", "v1alpha1", "clusterservingruntimes",
                                               "kserve-sklearnserver")
    assert runtime["spec"]["supportedModelFormats"][0]["name"] == "sklearn"
    config_map = client.CoreV1Api(api).read_namespaced_config_map("inferenceservice-config", "kserve")
    assert json.loads(config_map.data["deploy"]) == {"defaultDeploymentMode": mode}
    if stack == "standard":
        gw = custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", "kserve", "gateways",
                                                 "kserve-ingress-gateway")
        assert gw["spec"]["gatewayClassName"] == "istio"
    else:
        ks = custom.get_namespaced_custom_object("operator.knative.dev", "v1beta1", "knative-serving",
                                                 "knativeservings", "knative-serving")
        assert ks["spec"]["config"]["domain"] == {"example.com": ""}

    run_pulumi(project, env, "destroy", "--yes", "-s", stack)

    core = client.CoreV1Api(api)
    left = {ns.metadata.name for ns in core.list_namespace().items} & OUR_NAMESPACES
    assert not left, f"namespaces left behind: {left}"
    crds = client.ApiextensionsV1Api(api).list_custom_resource_definition().items
    left_crds = {c.metadata.name for c in crds if c.spec.group not in KEPT_CRD_GROUPS}
    assert not left_crds, f"CRDs left behind: {left_crds}"
    hooks = client.AdmissionregistrationV1Api(api)
    assert not [w.metadata.name for w in hooks.list_validating_webhook_configuration().items]
    assert not core.list_namespaced_persistent_volume_claim("default").items
    assert not client.BatchV1Api(api).list_namespaced_job("default").items
    for group in KEPT_CRD_GROUPS & {c.spec.group for c in crds}:
        assert group.endswith("istio.io")
