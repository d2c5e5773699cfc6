"""Layers a cluster already runs before kserve-stack comes: cert-manager and Istio (base, istiod)
from their released charts, installed the way a platform team's own program would, not with the
stack's components (tests/integration/test_engine.py, `install: false`).

With `check` set it renders only the stack's cluster-check chart, with those values, so the test
sees each of the chart's verdicts from the real provider's Helm against the real API server."""

import pulumi
import pulumi_kubernetes as k8s

config = pulumi.Config()
charts = config.require_object("charts")
check = config.get_object("check")
if check:
    k8s.helm.v4.Chart("check", chart=charts["clusterCheck"], skip_await=True, values=check)
else:
    cert_ns = k8s.core.v1.Namespace("cert-manager", metadata={"name": "cert-manager"})
    k8s.helm.v4.Chart("cert-manager", chart=charts["certManager"], name="cert-manager", namespace="cert-manager",
                      values={"crds": {"enabled": True}}, skip_await=True,
                      opts=pulumi.ResourceOptions(depends_on=[cert_ns]))
    istio_ns = k8s.core.v1.Namespace("istio-system", metadata={"name": "istio-system"})
    base = k8s.helm.v4.Chart("istio-base", chart=charts["istioBase"], name="istio-base", namespace="istio-system",
                             values={"defaultRevision": "default"}, skip_await=True,
                             opts=pulumi.ResourceOptions(depends_on=[istio_ns]))
    k8s.helm.v4.Chart("istiod", chart=charts["istiod"], name="istiod", namespace="istio-system", skip_await=True,
                      opts=pulumi.ResourceOptions(depends_on=[base]))
