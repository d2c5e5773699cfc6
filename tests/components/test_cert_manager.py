from components.cert_manager import CertManagerArgs, chart_values
from settings.versions import DEFAULT_CHARTS


def test_chart_installs_crds_and_removes_them_on_destroy(run_stack):
    chart = run_stack("standard").named("cert-manager-chart")
    assert chart.inputs["chart"] == "cert-manager"
    assert chart.inputs["repositoryOpts"] == {"repo": "https://charts.jetstack.io"}
    assert chart.inputs["version"] == "v1.17.0"
    assert chart.inputs["values"]["crds"] == {"enabled": True, "keep": False}


def test_issuer_waits_for_ready(run_stack):
    issuer = run_stack("standard").named("cert-manager-selfsigned-issuer")
    assert issuer.inputs["kind"] == "ClusterIssuer"
    assert issuer.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Ready"


def test_private_registry_sets_the_image_only_an_argument_names():
    """The chart's pods get their images from the chart transform; the ACME solver's image is
    an argument of the controller, so it is passed as a value."""
    values = chart_values(CertManagerArgs("v1.17.0", DEFAULT_CHARTS["certManager"], True, "mirror.local:5000"))
    assert values == {"crds": {"enabled": True, "keep": False},
                      "acmesolver": {"image": {"repository": "mirror.local:5000/jetstack/cert-manager-acmesolver"}}}
