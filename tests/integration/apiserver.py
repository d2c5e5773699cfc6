"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
and on request kube-scheduler with KWOK and one node.

No kubelet and no container registry here, so no container runs; but the API server is the
real one, validating objects against built-in schemas and installed CRDs, and the controller
manager finishes namespace deletion and garbage collection. With KWOK (the Kubernetes SIG's
kubelet stand-in, driven by its own upstream stages) scheduled pods turn Ready and get an IP,
so Deployments become Available, Services get endpoints, and Job pods complete.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

TOKEN = "kserve-stack-integration-token"
NODE = "kwok-node-0"
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
omitManagedFields: true
rules:
- level: None
  verbs: [get, list, watch]
- level: None
  resources: [{group: coordination.k8s.io}, {group: "", resources: [events]}, {group: events.k8s.io}]
- level: Request
  verbs: [update, patch]
  resources:
  - {group: batch, resources: [jobs/status]}
  - {group: apiextensions.k8s.io, resources: [customresourcedefinitions/status]}
  - {group: serving.kserve.io, resources: [inferenceservices/status]}
  - {group: policy, resources: [poddisruptionbudgets/status]}
- level: Metadata
"""
"""Every write, in order, and the bodies of the status writes that say when a Job completed, a
CRD was Established, an InferenceService turned Ready or a PodDisruptionBudget saw a Ready pod:
the API server's own record of what happened when."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalApiServer:
    """Start with `with LocalApiServer(bin_dir) as api:`; `api.kubeconfig` is a kubeconfig path."""

    def __init__(self, bin_dir: Path, controller_manager: bool = True, admission_webhooks: bool = True,
                 kwok: Path | None = None, audit: bool = False):
        """`admission_webhooks=False` stops the API server calling webhooks: the webhook
        configurations a chart installs are still created and validated, but no pod runs here
        to answer them, so with the calls on every object they intercept would be refused.
        `kwok`: the directory with the kwok binary and its stages.yaml; adds kube-scheduler
        (from `bin_dir`), KWOK and its node. `audit`: keep the API server's audit log (`audit()`)."""
        self.bin_dir = Path(bin_dir)
        self.with_controller_manager = controller_manager or kwok is not None
        self.admission_webhooks = admission_webhooks
        self.kwok = Path(kwok) if kwok else None
        self.with_audit = audit
        self.procs: list[subprocess.Popen] = []
        self.dir = Path(tempfile.mkdtemp(prefix="kserve-stack-apiserver-"))
        self.port = free_port()
        self.server = f"https://127.0.0.1:{self.port}"
        self.kubeconfig = self.dir / "kubeconfig"

    def _start(self, name: str, args: list[str], bin_dir: Path | None = None) -> subprocess.Popen:
        log = (self.dir / f"{name}.log").open("w")
        proc = subprocess.Popen([str((bin_dir or self.bin_dir) / name), *args], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text()[-4000:] if path.exists() else ""

    def __enter__(self) -> LocalApiServer:
        try:
            self._up()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _up(self) -> None:
        d = self.dir
        subprocess.run(["openssl", "genrsa", "-out", str(d / "sa.key"), "2048"], check=True, capture_output=True)
        subprocess.run(["openssl", "rsa", "-in", str(d / "sa.key"), "-pubout", "-out", str(d / "sa.pub")],
                       check=True, capture_output=True)
        (d / "tokens.csv").write_text(f'{TOKEN},admin,admin,"system:masters"\n')
        etcd_client, etcd_peer = free_port(), free_port()
        self._start("etcd", [
            f"--data-dir={d / 'etcd'}", f"--listen-client-urls=http://127.0.0.1:{etcd_client}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_client}",
            f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-cluster=default=http://127.0.0.1:{etcd_peer}", "--log-level=warn",
        ])
        self._start("kube-apiserver", [
            f"--etcd-servers=http://127.0.0.1:{etcd_client}", "--bind-address=127.0.0.1",
            f"--secure-port={self.port}", f"--cert-dir={d / 'certs'}", f"--token-auth-file={d / 'tokens.csv'}",
            "--authorization-mode=RBAC", f"--service-account-key-file={d / 'sa.pub'}",
            f"--service-account-signing-key-file={d / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc", "--service-cluster-ip-range=10.0.0.0/24",
            "--advertise-address=127.0.0.1", "--allow-privileged=true",
            *self._disabled_admission(),
            *self._audit_args(),
        ])
        self.kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n"
            f"    server: {self.server}\n    insecure-skip-tls-verify: true\n"
            f"users:\n- name: admin\n  user:\n    token: {TOKEN}\n"
            "contexts:\n- name: local\n  context: {cluster: local, user: admin}\ncurrent-context: local\n"
        )
        self._wait_ready(deadline=time.monotonic() + 120)
        if self.with_controller_manager:
            self._start("kube-controller-manager", [
                f"--kubeconfig={self.kubeconfig}", f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}", "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}", f"--service-account-private-key-file={d / 'sa.key'}",
                # What every namespace's kube-root-ca.crt then holds, as kubeadm sets it.
                f"--root-ca-file={d / 'certs' / 'apiserver.crt'}",
                "--use-service-account-credentials=false", "--leader-elect=false",
                "--controllers=*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-service-lb-controller",
            ])
            self._wait_settled(deadline=time.monotonic() + 120)
        if self.kwok:
            self._start_kwok()

    def _disabled_admission(self) -> list[str]:
        """Webhook calls off on request. With KWOK, no not-ready taint on the new node either:
        lifting it is the node lifecycle controller's job, which is off (KWOK renews no node
        lease here, so that controller would soon mark the node's pods not Ready)."""
        plugins = ([] if self.admission_webhooks else ["ValidatingAdmissionWebhook", "MutatingAdmissionWebhook"]) + (
            ["TaintNodesByCondition"] if self.kwok else [])
        return [f"--disable-admission-plugins={','.join(plugins)}"] if plugins else []

    def _audit_args(self) -> list[str]:
        if not self.with_audit:
            return []
        (self.dir / "audit-policy.yaml").write_text(AUDIT_POLICY)
        return [f"--audit-policy-file={self.dir / 'audit-policy.yaml'}", f"--audit-log-path={self.dir / 'audit.log'}",
                "--audit-log-mode=blocking", "--audit-log-maxsize=100000"]  # MB: never rotated

    def audit(self) -> list[dict]:
        """The audit events so far (stage ResponseComplete), in the order the API server wrote them."""
        path = self.dir / "audit.log"
        return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []

    def ca_bundle(self) -> bytes:
        """A real PEM certificate (the API server's own), for CA bundles a test writes."""
        return next((self.dir / "certs").glob("*.crt")).read_bytes()

    def _start_kwok(self) -> None:
        """kube-scheduler places pods on the one node; KWOK plays its kubelet with the stages
        `scripts/toolchain.sh` took from the kwok module (node initialise, pod ready, Job pod
        complete, pod delete)."""
        from kubernetes import client

        kc = str(self.kubeconfig)
        self._start("kube-scheduler", [
            f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1", f"--secure-port={free_port()}", "--leader-elect=false",
        ])
        self._start("kwok", [
            f"--kubeconfig={kc}", f"--config={self.kwok / 'stages.yaml'}", f"--manage-single-node={NODE}",
            "--cidr=10.244.0.0/16", "--node-ip=10.0.0.10",
        ], bin_dir=self.kwok)
        core = client.CoreV1Api(self.client())
        core.create_node({"metadata": {
            "name": NODE,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                       "type": "kwok"},
        }})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self._check_running()
            node = core.read_node(NODE)
            ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
            if ready and not node.spec.taints:
                return
            time.sleep(0.25)
        raise TimeoutError(f"KWOK did not make node {NODE} Ready:\n{self.log('kwok')}")

    def _check_running(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[0]} exited {proc.returncode}:\n{self.log(Path(proc.args[0]).name)}")

    def _wait_ready(self, deadline: float) -> None:
        """Polls the real /readyz endpoint until it answers ok: a readiness check, bounded in time."""
        context = ssl._create_unverified_context()
        request = urllib.request.Request(f"{self.server}/readyz", headers={"Authorization": f"Bearer {TOKEN}"})
        while time.monotonic() < deadline:
            self._check_running()
            try:
                with urllib.request.urlopen(request, context=context, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"kube-apiserver not ready:\n{self.log('kube-apiserver')}")

    def _wait_settled(self, deadline: float) -> None:
        """Until the controller manager has given every built-in namespace its `default`
        ServiceAccount and `kube-root-ca.crt` ConfigMap, so that what tests see appear later is
        theirs."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        core = client.CoreV1Api(self.client())
        pending = {"default", "kube-system", "kube-public", "kube-node-lease"}
        while pending and time.monotonic() < deadline:
            for ns in sorted(pending):
                try:
                    core.read_namespaced_service_account("default", ns)
                    core.read_namespaced_config_map("kube-root-ca.crt", ns)
                    pending.discard(ns)
                except ApiException as err:
                    if err.status != 404:
                        raise
            time.sleep(0.25)
        if pending:
            raise TimeoutError(f"kube-controller-manager did not settle namespaces {sorted(pending)}:\n"
                               f"{self.log('kube-controller-manager')}")

    def client(self):
        import urllib3
        from kubernetes import config

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def __exit__(self, *exc) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:  # throwaway data: a short grace, then kill
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
