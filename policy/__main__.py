"""The kserve-stack policy pack: `pulumi preview --policy-pack policy`."""

import rules
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ResourceValidationPolicy,
    StackValidationPolicy,
)


def _resource_policy(name: str, description: str, check) -> ResourceValidationPolicy:
    def validate(args, report_violation):
        for problem in check(args):
            report_violation(problem)

    return ResourceValidationPolicy(name=name, description=description,
                                    enforcement_level=EnforcementLevel.MANDATORY, validate=validate)


def _modes(args, report_violation):
    mode = rules.deployment_mode_of((r.resource_type, r.props) for r in args.resources)
    for r in args.resources:
        if rules.kind_of(r.resource_type) == "InferenceService":
            for problem in rules.mode_annotation_problems(r.props, mode):
                report_violation(problem, r.urn)


def _models_behind_auth(args, report_violation):
    allow_open = args.get_config().get(rules.ALLOW_OPEN_MODELS) is True
    for urn, problem in rules.models_behind_auth(((r.resource_type, r.urn, r.props) for r in args.resources),
                                                 allow_open):
        report_violation(problem, urn)


PolicyPack(
    name="kserve-stack",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        _resource_policy("workload-resources", "Every workload the stack creates sets CPU and memory requests and "
                         "limits (chart-rendered workloads are the chart's).",
                         lambda a: rules.missing_resources(a.resource_type, a.urn, a.props)),
        _resource_policy("pinned-images", "No image uses latest or no tag.",
                         lambda a: rules.unpinned_images(a.resource_type, a.props)),
        _resource_policy("no-host-path", "No hostPath volume unless the stack enabled model.storage.hostPath.",
                         lambda a: rules.host_paths(a.resource_type, a.props)),
        _resource_policy("tls-secrets-are-secret", "Secrets holding TLS keys are Pulumi secrets.",
                         lambda a: rules.tls_secret_not_secret(a.resource_type, a.props,
                                                               a.opts.additional_secret_outputs or [])),
        StackValidationPolicy(name="inference-service-mode", enforcement_level=EnforcementLevel.MANDATORY,
                              description="Every InferenceService carries the deployment-mode annotation the "
                                          "KServe controller is installed with.",
                              validate=_modes),
        StackValidationPolicy(name="models-behind-auth", enforcement_level=EnforcementLevel.MANDATORY,
                              description="Every InferenceService has an ALLOW AuthorizationPolicy annotated "
                                          f"{rules.POLICY_ANNOTATION}: <namespace>/<name> whose rules all require "
                                          "a request principal and hosts; one annotated "
                                          f"{rules.AUTH_ANNOTATION}: none only with {rules.ALLOW_OPEN_MODELS}.",
                              config_schema=PolicyConfigSchema(properties={rules.ALLOW_OPEN_MODELS: {
                                  "type": "boolean", "default": False,
                                  "description": "Let InferenceServices published with kserve-stack:auth none "
                                                 "(anyone who reaches the gateway calls them) through."}}),
                              validate=_models_behind_auth),
    ],
)
