"""Serve a model directory with the real KServe Python model server, loaded the way the
`kserve-sklearnserver` runtime loads it: exactly one .joblib/.pkl/.pickle file in the
directory, read with joblib. Runs in the model virtualenv (scripts/model_env.sh):

    python -m tools.model_server --model_dir model --model_name model --http_port 8080
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import joblib
import kserve
from kserve.errors import InferenceError, InvalidInput, ModelMissingError
from kserve.model_server import parser as kserve_parser
from kserve.utils.utils import get_predict_input, get_predict_response

MODEL_EXTENSIONS = (".joblib", ".pkl", ".pickle")


def model_file(model_dir: Path) -> Path:
    """The one model file, as the runtime insists: none or two is an error, not a guess."""
    found = sorted(p for p in model_dir.iterdir() if p.is_file() and p.name.endswith(MODEL_EXTENSIONS))
    if not found:
        raise ModelMissingError(str(model_dir))
    if len(found) > 1:
        raise RuntimeError(f"more than one model file in {model_dir}: {[p.name for p in found]}; only one is allowed")
    return found[0]


class SKLearnModel(kserve.Model):
    def __init__(self, name: str, model_dir: str):
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.ready = False

    def load(self) -> bool:
        self._model = joblib.load(model_file(self.model_dir))
        self.ready = True
        return self.ready

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if isinstance(payload, bytes | str):
            try:
                payload = json.loads(payload)
            except ValueError as err:
                raise InvalidInput(f"the request body is not JSON: {err}") from err
        if not isinstance(payload, dict) and not hasattr(payload, "inputs"):
            raise InvalidInput('expected a JSON object with "instances": a non-empty list of words')
        if isinstance(payload, dict):
            instances = payload.get("instances")
            if not isinstance(instances, list) or not instances:
                raise InvalidInput('expected a JSON object with "instances": a non-empty list of words')
            if not all(isinstance(word, str) for word in instances):
                raise InvalidInput('every item of "instances" must be a string (one word to classify)')
        instances = get_predict_input(payload)
        try:
            result = self._model.predict(instances)
        except Exception as err:
            raise InferenceError(str(err)) from err
        return get_predict_response(payload, result, self.name)


def main() -> None:
    parser = argparse.ArgumentParser(parents=[kserve_parser])
    parser.add_argument("--model_dir", required=True, help="directory holding exactly one model file")
    args, _ = parser.parse_known_args()
    model = SKLearnModel(args.model_name, args.model_dir)
    model.load()
    kserve.ModelServer().start([model])


if __name__ == "__main__":
    main()
