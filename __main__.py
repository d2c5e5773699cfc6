"""kserve-stack: KServe on any Kubernetes cluster, and a model published on it, in one `pulumi up`."""

from pathlib import Path

import pulumi
from pulumi.runtime import config as runtime_config

from settings import config
from settings.upgrades import Deployed
from stack import build, deployed_outputs

raw = {
    key.split(":", 1)[1]: value
    for key, value in {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}.items()
    if key.startswith(f"{config.PROJECT}:")
}
held_secret = set(runtime_config.get_config_secret_keys_env())
secret_keys = frozenset(key for key in raw if runtime_config.is_config_secret(f"{config.PROJECT}:{key}")
                        or f"{config.PROJECT}:{key}" in held_secret)
stack_config = config.parse(config.decode(raw), Path(__file__).parent, Deployed.from_outputs(deployed_outputs()),
                            secret_keys)
for name, value in build(stack_config).items():
    pulumi.export(name, value)
