"""The model's two Jobs: the copy Job that puts a version of its files on the claim, and the
smoke test that calls it through the gateway as a client would."""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.charts import registry_image
from components.model_service import storage
from components.model_service.access import SMOKE_TEST_LABEL, smoke_account
from components.model_service.urls import Sample
from components.readiness import job_annotations
from settings.config import ImageSource, ModelConfig
from settings.versions import IMAGES

NO_SIDECAR = {"sidecar.istio.io/inject": "false"}
"""A Job's pod never completes while an Istio sidecar runs beside it. Istio 1.27 honours the label
and the annotation, the label first (pkg/kube/inject/inject.go, injectRequired), and istiod's
injection webhook is not even called for a pod labelled "false" (its objectSelector,
manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml)."""
RUNTIME_USER = 1000
"""The user kserve/sklearnserver runs as (kserve v0.20.0 python/sklearn.Dockerfile: `useradd kserve
-u 1000`, `USER 1000`); the predictor only reads, so any user's world-readable files serve."""
SMOKE_TEST_SECONDS = 180
"""How long the smoke test keeps calling: the route may take a moment after the model is Ready."""
TOKEN_DIR = "/var/run/secrets/kserve-stack"
TOKEN_FILE = f"{TOKEN_DIR}/token"
TOKEN_SECONDS = 600
"""The shortest lifetime the kubelet projects (it refreshes the file at 80%)."""
REFUSAL_ATTEMPTS = 15
"""Calls without a token before `up` says the models are open: istiod pushes a new policy to the
gateway within seconds, and the token call before it already went through the policy's gateway."""
JOB_RESOURCES = {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"cpu": "200m", "memory": "64Mi"}}
KEEP_VERSIONS = 3
"""Model versions kept on the claim: the new one, the one being served until the predictor
rolls, and one more to roll back to without copying."""


def copy_security(model: ModelConfig) -> k8s.core.v1.PodSecurityContextArgs | None:
    """On a ReadWriteMany claim (NFS and the like, where exports squash root) the copy Job writes as
    the runtime's user, with fsGroup for the volumes that honour it. Elsewhere it stays root: a
    hostPath or local-path directory gets no fsGroup (the kubelet makes it as root, mode 0755), and
    claims an earlier root Job wrote must keep taking new versions."""
    if model.storage.host_path or model.storage.access_mode != "ReadWriteMany":
        return None
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_user=RUNTIME_USER, run_as_group=RUNTIME_USER, fs_group=RUNTIME_USER, run_as_non_root=True,
    )


def copy_script(base: str, version: str, source_dir: str, keep: int = KEEP_VERSIONS) -> str:
    """Copy a model version into its own directory `<base>/<version>`, never into the one being
    served: into a scratch directory first, then renamed into place, so the predictor only ever
    sees a complete version. A version already there (a rollback) is left as it is. The oldest
    versions beyond `keep` are removed; the predictor serves one of the newest two. Run as a
    non-root user, a base another user wrote (a copy Job that ran as root, on a volume that takes
    no fsGroup) still serves the versions on it, and a new version fails saying so."""
    b, v, src = shlex.quote(base), shlex.quote(version), shlex.quote(source_dir.rstrip("/") + "/.")
    return "\n".join([
        "set -eu",
        f"base={b}; version={v}",
        'unwritable() { echo "$1 is not writable by uid $(id -u) (another user wrote it, e.g. a copy Job that ran as'
        ' root): make it writable for uid $(id -u), or use a new claim"; exit 1; }',
        'mkdir -p "$base" || unwritable "$(dirname "$base")"',
        'if [ -d "$base/$version" ]; then echo "version $version is already on the claim"; else',
        '  [ -w "$base" ] || unwritable "$base"',
        '  rm -rf "$base/.partial-$version"; mkdir "$base/.partial-$version"',
        f'  cp -rL {src} "$base/.partial-$version/"',
        '  mv "$base/.partial-$version" "$base/$version"',
        "fi",
        'if [ -w "$base" ]; then',
        '  touch "$base/$version"',
        f'  ls -1t "$base" | grep -vx "$version" | tail -n +{keep} | while read -r old; do',
        '    rm -rf "${base:?}/$old"',
        "  done",
        "fi",
        'ls -l "$base" "$base/$version"',
    ])


def copy_suffix(model: ModelConfig, digest: str) -> str:
    """The digest's first characters, as before placement existed, unless the model has one."""
    if not model.node_selector and not model.tolerations:
        return digest[:8]
    placement = json.dumps([digest, model.node_selector, model.tolerations], sort_keys=True)
    return hashlib.sha256(placement.encode()).hexdigest()[:8]


def copy_job(name: str, model: ModelConfig, digest: str, labels: dict[str, str], affinity: dict | None,
             image_registry: str | None, waits: bool, parent: pulumi.Resource,
             after: list[pulumi.Resource]) -> k8s.batch.v1.Job:
    """Named after the model's digest, and its placement when it has one: a new version or a new
    place is a new Job (Jobs cannot be updated). It runs where the predictor may run, so that a
    volume bound on first use is made where the predictor can mount it."""
    volumes = [k8s.core.v1.VolumeArgs(
        name="model-store",
        persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(claim_name=storage.claim_name(model)),
    )]
    mounts = [k8s.core.v1.VolumeMountArgs(name="model-store", mount_path=storage.MOUNT)]
    if isinstance(model.source, ImageSource):
        image, source_dir = model.source.image, model.source.path
    else:
        image, source_dir = registry_image(image_registry, IMAGES["busybox"]), "/src"
        volumes.append(k8s.core.v1.VolumeArgs(
            name="model-files", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=storage.files_name(model)),
        ))
        mounts.append(k8s.core.v1.VolumeMountArgs(name="model-files", mount_path="/src", read_only=True))
    return k8s.batch.v1.Job(
        f"{name}-copy",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=f"{model.name}-model-copy-{copy_suffix(model, digest)}", namespace=model.namespace,
            annotations=job_annotations(waits, timeout=600),
        ),
        spec=k8s.batch.v1.JobSpecArgs(
            backoff_limit=2,
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels={**NO_SIDECAR, **labels}, annotations=NO_SIDECAR),
                spec=k8s.core.v1.PodSpecArgs(
                    restart_policy="Never",
                    affinity=affinity,
                    node_selector=dict(model.node_selector) or None,
                    tolerations=[dict(t) for t in model.tolerations] or None,
                    security_context=copy_security(model),
                    containers=[k8s.core.v1.ContainerArgs(
                        name="copy",
                        image=image,
                        command=["/bin/sh", "-c", copy_script(
                            f"{storage.MOUNT}/{model.name}", storage.version_of(digest), source_dir)],
                        volume_mounts=mounts,
                        resources=k8s.core.v1.ResourceRequirementsArgs(**JOB_RESOURCES),
                    )],
                    volumes=volumes,
                ),
            ),
        ),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=after),
    )


def _call(body: str | None) -> str:
    post = ' --header "Content-Type: application/json" --post-data "$body"' if body is not None else ""
    return f'timeout 10 wget -O - --header "Host: $host"{post}'


def smoke_script(url: str, host: str, body: str | None, expected: str, attempts: int = 60, pause: int = 2,
                 token: str | None = None) -> str:
    """A POSIX shell script for busybox's applets (sh, wget, timeout, tail, tr, sleep, cat): call
    until the gateway answers (bounded), then check the reply; `body` None is a GET; `token` the
    file holding the bearer token. `timeout`, not wget's `-T`, bounds a call: `-T` crashes some
    busybox builds. Scripts join: each falls through when its answer is right."""
    q = shlex.quote
    bearer = f' --header "Authorization: Bearer $(cat {q(token)})"' if token else ""
    return "\n".join([
        "set -u",
        f"url={q(url)}; host={q(host)}; {f'body={q(body)}; ' if body is not None else ''}expected={q(expected)}",
        "i=0",
        f'until reply=$({_call(body)}{bearer} "$url" 2>/tmp/wget.log); do',
        "  i=$((i + 1))",
        f"  if [ $i -ge {attempts} ]; then",
        '    echo "no answer from $url (Host: $host): $(tail -n 1 /tmp/wget.log)"; exit 1',
        "  fi",
        f"  sleep {pause}",
        "done",
        'case "$(printf %s "$reply" | tr -d \' \\n\\r\\t\')" in',
        '  *"$expected"*) echo "ok: $reply" ;;',
        '  *) echo "unexpected reply from $url: $reply (expected $expected)"; exit 1 ;;',
        "esac",
    ])


def refusal_script(url: str, host: str, body: str | None, attempts: int = REFUSAL_ATTEMPTS, pause: int = 2) -> str:
    """The same call without a token must be refused (401: a bad token, 403: none, RBAC); `up`
    fails when the gateway still answers it after `attempts` tries."""
    q = shlex.quote
    return "\n".join([
        f"url={q(url)}; host={q(host)}{f'; body={q(body)}' if body is not None else ''}",
        "i=0",
        "while :; do",
        f'  if {_call(body)} "$url" >/dev/null 2>/tmp/refused.log; then',
        "    answered=yes",
        "  else",
        "    answered=no",
        "    if grep -qE ' 40[13] ' /tmp/refused.log; then",
        '      echo "refused without a token: $(tail -n 1 /tmp/refused.log)"; break',
        "    fi",
        "  fi",
        "  i=$((i + 1))",
        f"  if [ $i -ge {attempts} ]; then",
        '    if [ $answered = yes ]; then echo "the models are open: $url (Host: $host) answered a call without a'
        ' token"; else echo "no refusal from $url (Host: $host): $(tail -n 1 /tmp/refused.log)"; fi',
        "    exit 1",
        "  fi",
        f"  sleep {pause}",
        "done",
    ])


@dataclass(frozen=True)
class SmokeAuth:
    """With a token of its own account for `audience`; None: auth is off, no token. Over http
    whatever the gateway's scheme: the Gateway's HTTP listener takes the same routes and the same
    policies, and busybox's own TLS offers no signature algorithm a current server accepts
    (OpenSSL 3 refuses its handshake at security level 1)."""

    audience: str | None


def smoke_test(name: str, model: ModelConfig, call: Sample, host: str, gateway_service: tuple[str, str],
               new_pods: str | None, served: str, image_registry: str | None, waits: bool, parent: pulumi.Resource,
               after: list[pulumi.Resource], auth: SmokeAuth = SmokeAuth(audience=None)) -> k8s.batch.v1.Job:
    """A Job in the model's namespace that calls the model through the gateway Service, as a
    client would, with the Host header that picks its route: it needs no load balancer, so it
    works on every cluster. `up` fails when the model does not answer as its sample says it
    should; the Job's log holds the reply. Mid-rollout the gateway may still reach an old pod:
    with `new_pods` (the new version's pods alone) the answer is checked there, and the route
    through the gateway by what any version answers. With auth on, it calls with a token of its
    own account, then without one, which the gateway must refuse."""
    ns, svc = gateway_service
    gateway = f"http://{svc}.{ns}.svc.cluster.local{call.path}"
    token = TOKEN_FILE if auth.audience else None
    through = smoke_script(gateway, host, call.body, call.expected if new_pods is None else call.routed,
                           token=token)
    scripts = [through]
    if new_pods is not None:
        scripts.insert(0, smoke_script(f"http://{new_pods}.{model.namespace}.svc.cluster.local{call.path}", host,
                                       call.body, call.expected))
    if auth.audience:
        scripts.append(refusal_script(gateway, host, call.body))
    script = "\n".join(scripts)
    volumes, mounts = None, None
    if auth.audience:
        volumes = [k8s.core.v1.VolumeArgs(name="token", projected=k8s.core.v1.ProjectedVolumeSourceArgs(sources=[
            k8s.core.v1.VolumeProjectionArgs(service_account_token=k8s.core.v1.ServiceAccountTokenProjectionArgs(
                audience=auth.audience, expiration_seconds=TOKEN_SECONDS, path="token"))]))]
        mounts = [k8s.core.v1.VolumeMountArgs(name="token", mount_path=TOKEN_DIR, read_only=True)]
    return k8s.batch.v1.Job(
        f"{name}-smoke-test",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            # A new name, so a new call, whenever what is served may change (`served`: the
            # model's bytes and the InferenceService): Jobs cannot be updated.
            name=f"{model.name}-smoke-test-{hashlib.sha256((served + script).encode()).hexdigest()[:8]}",
            namespace=model.namespace,
            annotations=job_annotations(waits, timeout=SMOKE_TEST_SECONDS + 60),
        ),
        spec=k8s.batch.v1.JobSpecArgs(
            backoff_limit=0,
            active_deadline_seconds=SMOKE_TEST_SECONDS,
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels={**NO_SIDECAR, SMOKE_TEST_LABEL: model.name},
                                                    annotations=NO_SIDECAR),
                spec=k8s.core.v1.PodSpecArgs(
                    restart_policy="Never",
                    service_account_name=smoke_account(model),
                    automount_service_account_token=False,
                    containers=[k8s.core.v1.ContainerArgs(
                        name="predict",
                        image=registry_image(image_registry, IMAGES["busybox"]),
                        command=["/bin/sh", "-c", script],
                        # The pod's status then carries the reply for `kubectl describe`.
                        termination_message_policy="FallbackToLogsOnError",
                        resources=k8s.core.v1.ResourceRequirementsArgs(**JOB_RESOURCES),
                        volume_mounts=mounts,
                    )],
                    volumes=volumes,
                ),
            ),
        ),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=after),
    )
