"""Chart transforms shared by every layer: images from a mirror, fields left to controllers,
nothing kept behind on destroy."""

from __future__ import annotations

import copy

import pulumi

from components.charts import RESOURCE_POLICY, delete_on_destroy, leave_to_controllers, registry_images


def run(transform, kind: str, props: dict, opts: pulumi.ResourceOptions | None = None):
    group = {"Deployment": "apps/v1", "CronJob": "batch/v1", "ClusterRole": "rbac.authorization.k8s.io/v1",
             "ClusterServingRuntime": "serving.kserve.io/v1alpha1"}.get(kind, "v1")
    args = pulumi.ResourceTransformArgs(custom=True, type_=f"kubernetes:{group}:{kind}", name=f"chart:{kind}",
                                        props=copy.deepcopy(props), opts=opts or pulumi.ResourceOptions())
    return transform(args)


def pod(*images: str, init: tuple[str, ...] = ()) -> dict:
    return {"containers": [{"name": f"c{i}", "image": im} for i, im in enumerate(images)],
            "initContainers": [{"name": f"i{i}", "image": im} for i, im in enumerate(init)]}


def images_of(spec: dict) -> list[str]:
    return [c["image"] for key in ("containers", "initContainers") for c in spec.get(key) or []]


def test_every_workload_image_comes_from_the_mirror():
    t = registry_images("mirror.local:5000/up")
    deployment = {"metadata": {"name": "d"}, "spec": {"template": {"spec": pod(
        "quay.io/jetstack/cert-manager-controller:v1.17.0", "kserve/kserve-controller:v0.20.0",
        "auto", "mirror.local:5000/up/already:1", init=("docker.io/istio/proxyv2:1.27.1",))}}}
    out = run(t, "Deployment", deployment).props
    assert images_of(out["spec"]["template"]["spec"]) == [
        "mirror.local:5000/up/jetstack/cert-manager-controller:v1.17.0",
        "mirror.local:5000/up/kserve/kserve-controller:v0.20.0",
        "auto",  # Istio's injector fills this in from istiod's hub
        "mirror.local:5000/up/already:1",
        "mirror.local:5000/up/istio/proxyv2:1.27.1",
    ]
    runtime = {"metadata": {"name": "r"}, "spec": pod("kserve/sklearnserver:v0.16.0")}
    assert images_of(run(t, "ClusterServingRuntime", runtime).props["spec"]) == [
        "mirror.local:5000/up/kserve/sklearnserver:v0.16.0"]
    cron = {"metadata": {"name": "c"}, "spec": {"jobTemplate": {"spec": {"template": {"spec": pod("busybox:1")}}}}}
    assert images_of(run(t, "CronJob", cron).props["spec"]["jobTemplate"]["spec"]["template"]["spec"]) == [
        "mirror.local:5000/up/busybox:1"]
    assert run(t, "ConfigMap", {"metadata": {"name": "x"}, "data": {"image": "kserve/agent"}}) is None


def test_aggregated_cluster_roles_leave_rules_to_the_aggregation_controller():
    aggregated = {"metadata": {"name": "a"}, "aggregationRule": {"clusterRoleSelectors": []}, "rules": []}
    assert "rules" not in run(leave_to_controllers, "ClusterRole", aggregated).props
    plain = {"metadata": {"name": "p"}, "rules": [{"verbs": ["get"]}]}
    assert run(leave_to_controllers, "ClusterRole", plain) is None


def test_objects_a_chart_keeps_are_deleted_on_destroy():
    kept = {"metadata": {"name": "crd", "annotations": {RESOURCE_POLICY: "keep", "other": "x"}}}
    result = run(delete_on_destroy, "ConfigMap", kept, pulumi.ResourceOptions(retain_on_delete=True))
    assert result.props["metadata"]["annotations"] == {"other": "x"}
    assert not result.opts.retain_on_delete
    assert run(delete_on_destroy, "ConfigMap", {"metadata": {"name": "plain"}}) is None
