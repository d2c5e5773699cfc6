"""The GitHub workflows pass actionlint here, so a broken one fails CI, not a user's first PR."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import PROJECT_DIR, missing_tool

WORKFLOWS = sorted((PROJECT_DIR / ".github" / "workflows").glob("*.yml"))


@pytest.fixture(scope="module")
def actionlint() -> str:
    path = shutil.which("actionlint")
    if not path:
        missing_tool("actionlint not built: run `eval \"$(bash scripts/toolchain.sh)\"`")
    return path


def test_workflows_exist():
    assert {p.name for p in WORKFLOWS} == {"preview.yml", "e2e.yml"}


def test_workflows_are_clean(actionlint):
    out = subprocess.run([actionlint, "-no-color", *map(str, WORKFLOWS)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize(("break_it", "expected"), [
    (lambda wf: wf["jobs"]["preview"].update({"runs-onn": wf["jobs"]["preview"].pop("runs-on")}), "runs-onn"),
    (lambda wf: wf["jobs"]["preview"]["steps"][-1]["with"].update(stack=wf["jobs"]["preview"]["steps"][-1]["with"]
                                                                  .pop("stack-name")), "stack"),
    (lambda wf: wf["jobs"]["preview"]["steps"][-1]["with"].update({"stack-name": "${{ matrix.stak }}"}), "stak"),
])
def test_a_broken_workflow_is_reported(actionlint, tmp_path, break_it, expected):
    wf = yaml.safe_load((PROJECT_DIR / ".github/workflows/preview.yml").read_text())
    wf["on"] = wf.pop(True)
    break_it(wf)
    broken = tmp_path / "preview.yml"
    broken.write_text(yaml.safe_dump(wf, sort_keys=False))
    out = subprocess.run([actionlint, "-no-color", str(broken)], capture_output=True, text=True)
    assert out.returncode == 1 and expected in out.stdout, out.stdout + out.stderr


def test_both_stacks_run_through_the_pulumi_action_with_the_policy_pack():
    wf = yaml.safe_load((PROJECT_DIR / ".github/workflows/preview.yml").read_text())
    job = wf["jobs"]["preview"]
    assert job["strategy"]["matrix"]["stack"] == ["standard", "serverless"]
    action = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@"))
    assert action["with"]["command"] == "preview" and action["with"]["comment-on-pr"] is True
    assert action["with"]["policyPacks"] == "policy"
    e2e = yaml.safe_load((PROJECT_DIR / ".github/workflows/e2e.yml").read_text())["jobs"]["e2e"]
    script = "\n".join(s.get("run", "") for s in e2e["steps"])
    for needle in ("pulumi up", "--expect 1,0,2", "preview --expect-no-changes", "pulumi destroy", "kubectl get crd"):
        assert needle in script, needle


def run_backend_steps(env: dict[str, str], tmp_path) -> str:
    """The preview job's steps that choose the state backend, run as the runner would: each
    step's `if` evaluated against `env`, its script run by bash; returns the backend URL the
    Pulumi step then sees."""
    import re

    job = yaml.safe_load((PROJECT_DIR / ".github/workflows/preview.yml").read_text())["jobs"]["preview"]
    github_env = tmp_path / "github_env"
    github_env.write_text("")
    state = dict(env)
    for step in job["steps"]:
        if "PULUMI_BACKEND_URL=" not in step.get("run", ""):
            continue
        condition = re.sub(r"env\.(\w+)", lambda m: repr(state.get(m[1], "")), step["if"]).replace("&&", "and")
        if not eval(condition, {}):  # noqa: S307 - the workflow's own two-operator expressions
            continue
        subprocess.run(["bash", "-c", step["run"]], check=True, env={
            "PATH": os.environ["PATH"], "GITHUB_ENV": str(github_env), "RUNNER_TEMP": str(tmp_path), **state})
        for line in github_env.read_text().splitlines():
            key, _, value = line.partition("=")
            state[key] = value
    return state.get("PULUMI_BACKEND_URL", "")


@pytest.mark.parametrize(("secrets", "backend"), [
    ({"PULUMI_ACCESS_TOKEN": "pul-x"}, "https://api.pulumi.com"),
    ({"PULUMI_ACCESS_TOKEN": "pul-x", "PULUMI_BACKEND_URL": "s3://bucket/state"}, "s3://bucket/state"),
    ({"PULUMI_BACKEND_URL": "s3://bucket/state"}, "s3://bucket/state"),
    ({}, "file://{tmp}/state"),
])
def test_preview_state_goes_where_the_repository_says(secrets, backend, tmp_path):
    """Pulumi.yaml names a file backend, and it outranks a logged-in Pulumi Cloud; only
    PULUMI_BACKEND_URL outranks it (the engine tests show the CLI doing so)."""
    assert run_backend_steps(secrets, tmp_path) == backend.format(tmp=tmp_path)
