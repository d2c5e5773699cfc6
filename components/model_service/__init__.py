"""The models layer: a ModelService per model (storage, jobs, InferenceService, URLs), and the
namespaces the models share."""

from components.model_service.component import ModelService, ModelServiceArgs
from components.model_service.inference_service import (
    DIGEST_ANNOTATION,
    RAW_MODE_WAIT,
    SERVING_LABEL,
    inference_service_spec,
    serving_version,
)
from components.model_service.jobs import RUNTIME_USER, copy_script, smoke_script
from components.model_service.namespaces import ModelNamespaces, ModelNamespacesArgs
from components.model_service.storage import CLAIM_LABEL, HOST_PATH_ANNOTATION, ISVC_POD_LABEL, claim_affinity
from components.model_service.urls import SAMPLE, Sample, curl_command, expected_fragment, request_body, sample

__all__ = [
    "CLAIM_LABEL", "DIGEST_ANNOTATION", "HOST_PATH_ANNOTATION", "ISVC_POD_LABEL", "RAW_MODE_WAIT", "RUNTIME_USER",
    "SAMPLE", "SERVING_LABEL", "ModelNamespaces", "ModelNamespacesArgs", "ModelService", "ModelServiceArgs",
    "Sample", "claim_affinity", "copy_script", "curl_command", "expected_fragment", "inference_service_spec",
    "request_body", "sample", "serving_version", "smoke_script",
]
