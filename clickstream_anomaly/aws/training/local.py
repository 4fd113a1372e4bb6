"""The ``--local`` backend: the numpy twins behind the same request/response bodies as the endpoints.

* ``train --local`` fits the twin and writes it to ``--model-dir``: RCF as ``rcf-model.bin`` (a versioned
  state, :mod:`clickstream_anomaly.persist`: the fitted forest, the scaling and the hyperparameters;
  a version-1 ``rcf-model.npz``, which held the training features and regrew the forest, still loads),
  DeepAR as ``deepar-model.bin`` (:meth:`clickstream_anomaly.deepar.DeepAR.save`; a ``deepar-model.npz``
  of earlier versions still loads).
* ``deploy --local`` is a no-op that records which model file the local "endpoint" serves
  (``endpoint-<algorithm>.json`` in the model folder).
* ``invoke --local`` loads that model and answers the same bodies an endpoint would
  (:class:`LocalRCFEndpoint`, :class:`LocalDeepAREndpoint`), so the detectors of
  :mod:`clickstream_anomaly.aws.training.invoke` run unchanged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
import pandas as pd

from clickstream_anomaly import persist
from clickstream_anomaly import sagemaker_formats as fmt
from clickstream_anomaly.sagemaker_config import SageMakerConfigError, deepar_hyperparameters, rcf_hyperparameters
from clickstream_anomaly.scaling import Scaling

from .tags import check_algorithm

MODEL_FILES: dict[str, str] = {"rcf": "rcf-model.bin", "deepar": "deepar-model.bin"}
LEGACY_RCF_FILE = "rcf-model.npz"  # version 1: the training features, the forest regrown on load
RCF_STATE_KIND = "aws.local-rcf"
LOCAL_RCF_SEED = 0


def model_path(model_dir: str | Path, algorithm: str) -> Path:
    return Path(model_dir) / MODEL_FILES[check_algorithm(algorithm)]


# --------------------------------------------------------------------------- RCF
def train_rcf(
    windows: pd.DataFrame,
    model_dir: str | Path,
    hyperparameters: Mapping[str, Any] | None = None,
    scaling: Scaling | None = None,
) -> Path:
    """Validate ``hyperparameters`` exactly as for SageMaker, fit the scaling, save the local RCF model."""
    hp = rcf_hyperparameters({"feature_dim": 4, **(hyperparameters or {})})
    scaling = scaling or Scaling.fit(windows)
    if int(hp["feature_dim"]) != len(scaling.columns):
        raise SageMakerConfigError(
            f"feature_dim={hp['feature_dim']} but the scaling has {len(scaling.columns)} columns"
        )
    from clickstream_anomaly.rcf import RandomCutForest

    train = scaling.apply(windows)
    forest = RandomCutForest(
        num_trees=int(hp["num_trees"]),
        num_samples_per_tree=min(int(hp["num_samples_per_tree"]), len(train)),
        random_state=LOCAL_RCF_SEED,
        threshold=None,  # an endpoint returns scores; the caller thresholds them
    ).fit(train)
    meta = {"hyperparameters": hp, "scaling": json.loads(scaling.to_json())}
    path = model_path(model_dir, "rcf")
    persist.save(path, persist.dumps(RCF_STATE_KIND, 2, meta, {"forest": np.frombuffer(forest.to_bytes(), np.uint8)}))
    return path


class LocalRCFEndpoint:
    """Answers RCF ``InvokeEndpoint`` bodies (``text/csv`` rows -> ``{"scores": [...]}``) with the numpy
    :class:`clickstream_anomaly.rcf.RandomCutForest` grown from a saved local model."""

    def __init__(self, path: str | Path) -> None:
        from clickstream_anomaly.rcf import RandomCutForest

        path = Path(path)
        if not path.exists() and (path.parent / LEGACY_RCF_FILE).exists():
            path = path.parent / LEGACY_RCF_FILE
        if path.suffix != ".npz":
            try:
                st = persist.loads(persist.load(path), RCF_STATE_KIND, versions={2})
            except persist.StateFormatError as exc:
                raise SageMakerConfigError(f"{path}: not a local RCF model ({exc})") from exc
            self.scaling = Scaling.from_json(json.dumps(st.meta["scaling"]))
            self.forest = RandomCutForest.from_bytes(st.arrays["forest"].tobytes())
            self.calls = 0
            return
        with np.load(path, allow_pickle=False) as data:
            if "header" not in data:
                raise SageMakerConfigError(f"{path}: not a local RCF model")
            header = json.loads(str(data["header"]))
            train = np.asarray(data["train"])
        if header.get("format") != "clickstream-anomaly-local-rcf":
            raise SageMakerConfigError(f"{path}: not a local RCF model")
        hp = header["hyperparameters"]
        self.scaling = Scaling.from_json(json.dumps(header["scaling"]))
        self.forest = RandomCutForest(
            num_trees=int(hp["num_trees"]),
            num_samples_per_tree=min(int(hp["num_samples_per_tree"]), len(train)),
            random_state=int(header["random_state"]),
        )
        self.forest.fit(train)
        self.calls = 0

    def invoke(self, body: str, content_type: str, accept: str = "application/json") -> bytes:
        if not content_type.startswith(fmt.RCF_INFERENCE_CONTENT_TYPE):
            raise ValueError(f"local RCF endpoint takes {fmt.RCF_INFERENCE_CONTENT_TYPE}, got {content_type}")
        self.calls += 1
        return fmt.rcf_response_body(self.forest.score(fmt.parse_rcf_request(body))).encode("utf-8")


# --------------------------------------------------------------------------- DeepAR
def train_deepar(
    windows: pd.DataFrame,
    model_dir: str | Path,
    hyperparameters: Mapping[str, Any] | None = None,
    column: str = "clicks",
    random_state: int = 0,
) -> Path:
    """Fit the numpy DeepAR on the same series SageMaker's ``train`` channel gets (all windows but the last
    ``prediction_length``), with the same validated hyperparameters; save it."""
    from clickstream_anomaly.deepar import DeepAR

    hp = deepar_hyperparameters(hyperparameters)
    model = DeepAR.from_hyperparameters(hp, random_state=random_state)
    train, _ = fmt.train_test_split(fmt.series_from_windows(windows, column), int(hp["prediction_length"]))
    model.fit([train])
    path = model_path(model_dir, "deepar")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


class LocalDeepAREndpoint:
    """Answers DeepAR ``InvokeEndpoint`` bodies with :meth:`clickstream_anomaly.deepar.DeepAR.predict`."""

    def __init__(self, path: str | Path) -> None:
        from clickstream_anomaly.deepar import DeepAR

        path = Path(path)
        legacy = path.with_suffix(".npz")
        self.model = DeepAR.load(legacy if not path.exists() and legacy.exists() else path)
        self.calls = 0

    @property
    def prediction_length(self) -> int:
        return self.model.resolved_lengths()[1]  # (a DeepAR's prediction_length is always set)

    def invoke(self, body: str, content_type: str, accept: str = "application/json") -> bytes:
        if content_type != fmt.DEEPAR_CONTENT_TYPE:
            raise ValueError(f"local DeepAR endpoint takes {fmt.DEEPAR_CONTENT_TYPE}, got {content_type}")
        self.calls += 1
        return json.dumps(self.model.predict(body)).encode("utf-8")


# --------------------------------------------------------------------------- deploy / load
def deploy(algorithm: str, model_dir: str | Path) -> Path:
    """No-op "deployment": record which model file the local endpoint serves; returns the record's path."""
    path = model_path(model_dir, algorithm)
    if not path.exists():
        raise SageMakerConfigError(
            f"no local {algorithm} model at {path}; run `sagemaker train {algorithm} "
            f"--local --model-dir {model_dir}` first"
        )
    record = Path(model_dir) / f"endpoint-{algorithm}.json"
    record.write_text(
        json.dumps(
            {
                "algorithm": algorithm,
                "model": path.name,
                "deployed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
        + "\n"
    )
    return record


@overload
def endpoint(algorithm: Literal["rcf"], model_dir: str | Path) -> LocalRCFEndpoint: ...
@overload
def endpoint(algorithm: Literal["deepar"], model_dir: str | Path) -> LocalDeepAREndpoint: ...
@overload
def endpoint(algorithm: str, model_dir: str | Path) -> LocalRCFEndpoint | LocalDeepAREndpoint: ...
def endpoint(algorithm: str, model_dir: str | Path) -> LocalRCFEndpoint | LocalDeepAREndpoint:
    """The local endpoint recorded by :func:`deploy`."""
    record = Path(model_dir) / f"endpoint-{check_algorithm(algorithm)}.json"
    if not record.exists():
        raise SageMakerConfigError(
            f"no local {algorithm} endpoint in {model_dir}; run `sagemaker deploy "
            f"{algorithm} --local --model-dir {model_dir}` first"
        )
    path = Path(model_dir) / json.loads(record.read_text())["model"]
    return LocalRCFEndpoint(path) if algorithm == "rcf" else LocalDeepAREndpoint(path)
