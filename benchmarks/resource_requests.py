"""Benchmark: the CPU and memory the pods of each mode request, per profile.

A pod is Pending until a node has its *requests* free, so these sums are the smallest node (or
nodes) each mode fits on, besides the node's own system pods (kube-system: the control plane,
CoreDNS, the CNI), which are not counted here.

Nothing is deployed. The program runs under the recording mock monitor (as tests/components
does) with every chart from ../shared/upstream-charts/<kserve>/. Rendering a chart needs the
engine (Helm is inside the provider), so each chart's pods take their requests from its
values.yaml with the program's values merged on top, as Helm merges them; the script first
checks that the chart's template reads each of those values, so a chart that stops doing so
fails here instead of being miscounted. Pods outside the charts come from their upstream
sources: Knative Serving's from the manifests the Knative Operator bundles (with the
KnativeServing's `workloads` merged per resource, as the operator does), the gateway istiod
makes for a Gateway API Gateway from istiod's `global.proxy.resources` (its kube-gateway
template), the model's predictor from the InferenceService (plus Knative's queue-proxy).
One-off Jobs are listed apart.

    .venv/bin/python benchmarks/resource_requests.py [--kserve v0.20.0]
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from settings import config  # noqa: E402
from settings.config.reader import parse_quantity  # noqa: E402
from stack import build  # noqa: E402
from tests.conftest import SHARED_DIR, gateway_api_objects, stack_raw  # noqa: E402
from tools.graph import Registration, capture  # noqa: E402

MODES = ("standard", "serverless")
PROFILES = ("default", "small")
Values = Mapping[str, Any]


@dataclass(frozen=True)
class ChartPod:
    """A workload a chart renders: its template, and per container the value holding its resources."""

    workload: str
    template: str
    containers: tuple[tuple[str, str], ...]
    replicas: Callable[[Values], int] = lambda values: 1


def _get(values: Values, path: str) -> Any:
    node: Any = values
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _autoscaled(enabled: str, minimum: str, fixed: str) -> Callable[[Values], int]:
    return lambda v: int(_get(v, minimum) if _get(v, enabled) else (_get(v, fixed) or 1))


CHART_PODS: dict[str, tuple[ChartPod, ...]] = {
    "cert-manager": (
        ChartPod("cert-manager", "templates/deployment.yaml", (("cert-manager-controller", "resources"),),
                 lambda v: int(v["replicaCount"])),
        ChartPod("cert-manager-webhook", "templates/webhook-deployment.yaml",
                 (("cert-manager-webhook", "webhook.resources"),), lambda v: int(v["webhook"]["replicaCount"])),
        ChartPod("cert-manager-cainjector", "templates/cainjector-deployment.yaml",
                 (("cert-manager-cainjector", "cainjector.resources"),),
                 lambda v: int(v["cainjector"]["replicaCount"]) if v["cainjector"]["enabled"] else 0),
    ),
    "istiod": (ChartPod("istiod", "templates/deployment.yaml", (("discovery", "resources"),),
                        _autoscaled("autoscaleEnabled", "autoscaleMin", "replicaCount")),),
    "gateway": (ChartPod("istio-ingressgateway", "templates/deployment.yaml", (("istio-proxy", "resources"),),
                         _autoscaled("autoscaling.enabled", "autoscaling.minReplicas", "replicaCount")),),
    "knative-operator": (
        ChartPod("knative-operator", "templates/operator.yaml",
                 (("knative-operator", "knative_operator.knative_operator.resources"),)),
        ChartPod("operator-webhook", "templates/operator.yaml",
                 (("operator-webhook", "knative_operator.operator_webhook.resources"),)),
    ),
    "kserve-resources": (ChartPod("kserve-controller-manager", "files/kserve/deployment-patch.yaml", (
        ("manager", "kserve.controller.resources"), ("kube-rbac-proxy", "kserve.controller.rbacProxy.resources"))),),
    "kserve": (ChartPod("kserve-controller-manager", "templates/deployment.yaml", (
        ("manager", "kserve.controller.resources"), ("kube-rbac-proxy", "kserve.controller.rbacProxy.resources"))),),
    "base": (), "kserve-crd": (), "kserve-runtime-configs": (), "kserve-stack-cluster-check": (),
}
"""The charts' Deployments (runtimes run only in the model's pod; Helm hooks are dropped by the
provider, so cert-manager's startupapicheck Job never runs; the cluster check renders nothing)."""

LAYERS = {"cert-manager": "cert-manager", "istiod": "istio", "gateway": "istio", "knative-operator": "knative",
          "kserve-resources": "kserve", "kserve": "kserve"}
LAYER_ORDER = ("cert-manager", "istio", "knative", "kserve", "model")

ISTIOD_GATEWAY_TEMPLATE = ("files/kube-gateway.yaml", "global.proxy.resources")
"""Standard mode: the Deployment istiod makes for the KServe Gateway (one replica)."""

_SERVING = {
    ("activator", "activator"): ("300m", "60Mi"),
    ("autoscaler", "autoscaler"): ("100m", "100Mi"),
    ("controller", "controller"): ("100m", "100Mi"),
    ("webhook", "webhook"): ("100m", "100Mi"),
    ("autoscaler-hpa", "autoscaler-hpa"): ("30m", "40Mi"),
    ("net-istio-controller", "controller"): ("30m", "40Mi"),
    ("net-istio-webhook", "webhook"): ("20m", "20Mi"),
}
KNATIVE_SERVING = {version: _SERVING for version in ("1.15.2", "1.16.0", "1.21.1")}
"""(Deployment, container) → requests, one replica each, read from knative/operator
cmd/operator/kodata/knative-serving/<Serving>/{2-serving-core,3-serving-hpa}.yaml and
kodata/ingress/<minor>/istio/net-istio.yaml at knative-v1.15.7, knative-v1.16.0, knative-v1.21.1
(the operator applies every file of the version's directory; without `high-availability` every
Deployment keeps one replica)."""
KNATIVE_JOBS = {("storage-version-migration-serving-", "migrate"): ("100m", "100Mi"),
                ("cleanup-serving-", "cleanup"): ("100m", "100Mi")}
"""4-serving-post-install-jobs.yaml of the same three bundles (identical): run once, after install."""
QUEUE_PROXY_CPU = "25m"
"""Knative's queue-proxy request when config-deployment sets none (knative/serving
pkg/deployment/config.go, QueueSidecarCPURequestDefault; no memory request by default)."""


def merge(base: Any, override: Any) -> Any:
    """Helm's merge of user values over a chart's (maps merge, anything else replaces)."""
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(override)


def chart_values(chart_dir: Path, given: Values) -> dict[str, Any]:
    """values.yaml with Istio's defaults wrapper taken off (its zzz_profile template merges it under
    the user's values), then the program's values on top."""
    values = yaml.safe_load((chart_dir / "values.yaml").read_text()) or {}
    for wrapper in ("defaults", "_internal_defaults_do_not_set"):
        if isinstance(values.get(wrapper), dict):
            values = merge(values.pop(wrapper), values)
    return merge(values, given)


def requests(resources: Any) -> tuple[Decimal, Decimal]:
    """(CPU cores, memory bytes) of a resources block; an absent request is zero."""
    req = (resources or {}).get("requests") or {}
    return parse_quantity(req.get("cpu", 0)) or Decimal(0), parse_quantity(req.get("memory", 0)) or Decimal(0)


@dataclass
class Row:
    layer: str
    pod: str
    cpu: Decimal
    memory: Decimal
    replicas: int = 1


def _read_from_template(chart_dir: Path, template: str, path: str) -> None:
    text = (chart_dir / template).read_text()
    if f".Values.{path}" not in text:
        raise SystemExit(f"{chart_dir}/{template} no longer reads .Values.{path}: update CHART_PODS")


def chart_rows(reg: Registration, mode: str) -> list[Row]:
    chart_dir = ROOT / reg.inputs["chart"]  # a project chart's path is relative to the project
    name = yaml.safe_load((chart_dir / "Chart.yaml").read_text())["name"]
    if name not in CHART_PODS:
        raise SystemExit(f"no pod table for chart {name}")
    if not CHART_PODS[name]:
        return []
    values = chart_values(chart_dir, reg.inputs.get("values") or {})
    rows = []
    for pod in CHART_PODS[name]:
        cpu = memory = Decimal(0)
        for _, path in pod.containers:
            _read_from_template(chart_dir, pod.template, path)
            c, m = requests(_get(values, path))
            cpu, memory = cpu + c, memory + m
        rows.append(Row(LAYERS[name], pod.workload, cpu, memory, pod.replicas(values)))
    if name == "istiod" and mode == "standard":
        rows.append(_istiod_gateway(chart_dir, values))
    return rows


def _istiod_gateway(chart_dir: Path, values: Values) -> Row:
    template, path = ISTIOD_GATEWAY_TEMPLATE
    _read_from_template(chart_dir, template, path)
    return Row("istio", "kserve-ingress-gateway-istio (made by istiod)", *requests(_get(values, path)))


def knative_rows(serving: Registration) -> tuple[list[Row], list[Row]]:
    spec = serving.inputs["spec"]
    version = spec["version"]
    if version not in KNATIVE_SERVING:
        raise SystemExit(f"no Knative Serving table for {version}: read it from the operator's kodata")
    overrides = {(w["name"], r["container"]): r.get("requests") or {}
                 for w in spec.get("workloads") or [] for r in w.get("resources") or []}

    def row(workload: str, container: str, cpu: str, memory: str, label: str = "") -> Row:
        given = {"cpu": cpu, "memory": memory} | overrides.get((workload, container), {})
        return Row("knative", label + workload, *requests({"requests": given}))

    pods = [row(d, c, *req) for (d, c), req in KNATIVE_SERVING[version].items()]
    jobs = [row(j, c, *req, label="Job ") for (j, c), req in KNATIVE_JOBS.items()]
    return pods, jobs


def model_rows(run: dict[str, Registration], serverless: bool) -> list[Row]:
    [isvc] = [r for r in run.values() if r.type.endswith(":InferenceService")]
    model = isvc.inputs["spec"]["predictor"]["model"]
    if not str(model.get("storageUri", "")).startswith("pvc://"):
        raise SystemExit("the model is not on a claim: its storage-initializer is not counted here")
    cpu, memory = requests(model.get("resources"))
    if serverless:
        cpu += parse_quantity(QUEUE_PROXY_CPU)
    sidecar = ", queue-proxy" if serverless else ""
    return [Row("model", f"{isvc.inputs['metadata']['name']} predictor (one pod{sidecar})", cpu, memory)]


def job_rows(run: dict[str, Registration]) -> list[Row]:
    rows = []
    for reg in run.values():
        if reg.type == "kubernetes:batch/v1:Job":
            cpu = memory = Decimal(0)
            for container in reg.inputs["spec"]["template"]["spec"]["containers"]:
                c, m = requests(container.get("resources"))
                cpu, memory = cpu + c, memory + m
            rows.append(Row("model", f"Job {reg.name}", cpu, memory))
    return rows


def measure(kserve: str, mode: str, profile: str) -> tuple[list[Row], list[Row], dict[str, Any]]:
    charts = SHARED_DIR / "upstream-charts" / kserve
    raw = {**stack_raw(mode), "profile": profile, "versions": {"kserve": kserve},
           "sources": {p.name: {"path": str(p)} for p in sorted(charts.iterdir()) if (p / "Chart.yaml").exists()}}
    cfg = config.parse(raw, ROOT)
    regs = capture(lambda: build(cfg, load_manifest=lambda _: gateway_api_objects())).registrations
    pods: list[Row] = []
    jobs = job_rows(regs)
    inputs: dict[str, Any] = {}
    for reg in regs.values():
        if reg.type == "kubernetes:helm.sh/v4:Chart":
            pods += chart_rows(reg, mode)
            inputs[reg.name] = reg.inputs.get("values")
        elif reg.type.endswith(":KnativeServing"):
            serving, serving_jobs = knative_rows(reg)
            pods += serving
            jobs += serving_jobs
            inputs[reg.name] = reg.inputs["spec"]
    pods += model_rows(regs, mode == "serverless")
    return sorted(pods, key=lambda r: LAYER_ORDER.index(r.layer)), jobs, inputs


def cpu_text(cores: Decimal) -> str:
    return f"{int(cores * 1000)}m"


def memory_text(size: Decimal) -> str:
    return f"{int(size / 2**20)}Mi"


def total(rows: list[Row]) -> tuple[Decimal, Decimal]:
    return sum((r.cpu * r.replicas for r in rows), Decimal(0)), sum((r.memory * r.replicas for r in rows), Decimal(0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kserve", default="v0.20.0",
                        help="a release with its charts in ../shared/upstream-charts (default v0.20.0)")
    args = parser.parse_args(argv)
    summary = []
    for mode in MODES:
        measured = {profile: measure(args.kserve, mode, profile) for profile in PROFILES}
        if measured["small"][2] == measured["default"][2]:
            raise SystemExit("profile small changes no value: stack.py does not pass `profile` to the layers")
        for profile, (pods, jobs, _) in measured.items():
            print(f"\n{mode}, profile {profile} (KServe {args.kserve}):")
            for row in pods:
                times = f" x{row.replicas}" if row.replicas != 1 else ""
                print(f"  {row.layer:13} {row.pod:48} {cpu_text(row.cpu):>6} {memory_text(row.memory):>7}{times}")
            cpu, memory = total(pods)
            job_cpu, job_memory = max((r.cpu for r in jobs), default=0), max((r.memory for r in jobs), default=0)
            print(f"  {'total':62} {cpu_text(cpu):>6} {memory_text(memory):>7}")
            for row in jobs:
                print(f"  (once) {row.pod:55} {cpu_text(row.cpu):>6} {memory_text(row.memory):>7}")
            summary.append((mode, profile, cpu, memory, Decimal(job_cpu), Decimal(job_memory)))
    print("\nmode        profile   CPU requests  memory requests   (largest one-off Job)")
    for mode, profile, cpu, memory, job_cpu, job_memory in summary:
        print(f"{mode:11} {profile:9} {cpu_text(cpu):>12}  {memory_text(memory):>15}   "
              f"({cpu_text(job_cpu)}, {memory_text(job_memory)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
