"""``clickstream-anomaly sagemaker prepare|train|deploy|invoke|cleanup|estimate-cost``.

The SageMaker workflows of :mod:`clickstream_anomaly.aws.training` (imported lazily, with boto3, inside the
command functions, so the core CLI starts without them). ``--local`` on train/deploy/invoke runs the numpy
twins instead: ``train`` writes the model to ``--model-dir``, ``deploy`` only records which model the local
endpoint serves, and ``invoke`` scores through the same request/response bodies as an endpoint.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..records import write_detections_csv

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

    import pandas as pd

    from ..aws.training.invoke import DeepAREndpointDetector, EndpointTransport, RCFEndpointDetector, Transport
    from ..aws.training.prepare import Scaling

ALGORITHMS = ("rcf", "deepar")
DEFAULT_PREFIX = "clickstream-anomaly"


def _training() -> ModuleType:
    """The SageMaker workflows (:mod:`clickstream_anomaly.aws.training`), imported on first use so the rest
    of the CLI starts without boto3."""
    from ..aws import training
    from ..aws.training import errors, prepare, session  # noqa: F401  (loads the submodules used below)

    return training


# --------------------------------------------------------------------------- options
def _aws_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--region", default=None, help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION / profile)")
    p.add_argument("--profile", default=None, help="AWS profile name (default: the default credential chain)")


def _wait_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--poll-seconds", type=float, default=30.0, help="seconds between status checks (default 30)")
    p.add_argument("--timeout", type=float, default=None, help="give up waiting after this many seconds")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _local_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--local", action="store_true", help="use the numpy twin instead of SageMaker (no AWS account needed)"
    )
    p.add_argument(
        "--model-dir",
        type=Path,
        default=Path("sagemaker-local"),
        help="with --local: folder for the local model (default sagemaker-local)",
    )


def _key_values(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--hp takes NAME=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def register(sub: argparse._SubParsersAction) -> None:
    top = sub.add_parser(
        "sagemaker",
        help="SageMaker RCF and DeepAR: prepare, train, deploy, invoke, clean up",
        description="Run the SageMaker workflows for the batch RCF and DeepAR detectors, or "
        "their numpy twins with --local.",
    )
    steps = top.add_subparsers(dest="step", metavar="STEP", required=True)

    p = steps.add_parser("prepare", help="write and upload the RCF and DeepAR training files")
    p.add_argument("--input", required=True, type=Path, help="windows CSV or clicks CSV")
    p.add_argument(
        "--labels",
        type=Path,
        default=None,
        help="labels CSV (window_start,is_anomaly): adds the labelled RCF test channel",
    )
    p.add_argument("--bucket", default=None, help="S3 bucket to upload to (omit with --output-dir only)")
    p.add_argument("--prefix", default=DEFAULT_PREFIX, help=f"S3 key prefix (default {DEFAULT_PREFIX})")
    p.add_argument("--output-dir", type=Path, default=None, help="also write the files to this folder")
    p.add_argument("--prediction-length", type=int, default=144, help="DeepAR hold-out length (default 144)")
    p.add_argument("--column", default="clicks", help="DeepAR target column (default clicks)")
    p.add_argument("--no-deepar", action="store_true", help="RCF files only")
    p.add_argument(
        "--raw-features",
        action="store_true",
        help="send RCF unscaled features (default: robust scaling, as the local twin)",
    )
    _aws_options(p)
    p.set_defaults(func=run_prepare)

    p = steps.add_parser("train", help="start a training job and wait for it (or train the twin with --local)")
    p.add_argument("algorithm", choices=ALGORITHMS)
    p.add_argument("--role", default=None, help="SageMaker execution role ARN")
    p.add_argument("--bucket", default=None, help="S3 bucket holding the prepared data")
    p.add_argument("--prefix", default=DEFAULT_PREFIX, help=f"S3 key prefix (default {DEFAULT_PREFIX})")
    p.add_argument("--instance-type", default=None, help="training instance (rcf ml.m5.large, deepar ml.c5.2xlarge)")
    p.add_argument("--instance-count", type=int, default=1)
    p.add_argument("--volume-gb", type=int, default=10)
    p.add_argument("--max-runtime", type=int, default=3600, help="seconds (default 3600)")
    p.add_argument("--job-name", default=None, help="default clickstream-anomaly-<algorithm>-<timestamp>")
    p.add_argument("--no-test", action="store_true", help="no test channel (no test metrics)")
    p.add_argument("--no-wait", action="store_true", help="start the job and return")
    p.add_argument("--num-trees", type=int, default=None, help="RCF: 50-1000 (default 100)")
    p.add_argument("--num-samples-per-tree", type=int, default=None, help="RCF: 1-2048 (default 256)")
    p.add_argument("--feature-dim", type=int, default=None, help="RCF: 1-10000 (default 4)")
    p.add_argument("--eval-metrics", default=None, help="RCF: accuracy,precision_recall_fscore")
    p.add_argument(
        "--hp",
        action="append",
        metavar="NAME=VALUE",
        help="any hyperparameter (repeatable), e.g. --hp epochs=100; for DeepAR these override the blog's values",
    )
    p.add_argument("--input", type=Path, default=None, help="with --local: windows or clicks CSV to train on")
    _aws_options(p)
    _wait_options(p)
    _local_options(p)
    p.set_defaults(func=run_train)

    p = steps.add_parser("deploy", help="model + endpoint config + endpoint (create or update), wait InService")
    p.add_argument("algorithm", choices=ALGORITHMS)
    p.add_argument("--training-job", default=None, help="default: the newest completed job of this algorithm")
    p.add_argument("--role", default=None, help="model execution role (default: the training job's)")
    p.add_argument("--endpoint-name", default=None, help="default clickstream-anomaly-<algorithm>")
    p.add_argument("--instance-type", default=None, help="endpoint instance (rcf ml.c5.xlarge, deepar ml.m5.large)")
    p.add_argument("--instance-count", type=int, default=1)
    _aws_options(p)
    _wait_options(p)
    _local_options(p)
    p.set_defaults(func=run_deploy)

    p = steps.add_parser("invoke", help="detect anomalies in a windows CSV through the endpoint")
    p.add_argument("algorithm", choices=ALGORITHMS)
    p.add_argument("--input", required=True, type=Path, help="windows CSV or clicks CSV")
    p.add_argument("-o", "--output", type=Path, default=None, help="detections CSV (default: stdout)")
    p.add_argument("--endpoint-name", default=None, help="default clickstream-anomaly-<algorithm>")
    p.add_argument("--threshold", default="sigma:3", help="RCF score threshold rule (default sigma:3)")
    p.add_argument("--labels", type=Path, default=None, help="labels CSV, needed by --threshold f1")
    p.add_argument(
        "--scaling",
        type=Path,
        default=None,
        help="RCF: the rcf/scaling.json written by prepare (default: read it from --bucket/--prefix)",
    )
    p.add_argument("--bucket", default=None, help="RCF: bucket of the prepared data, to read the scaling")
    p.add_argument("--prefix", default=DEFAULT_PREFIX)
    p.add_argument("--batch-size", type=int, default=500, help="RCF rows per request (default 500)")
    p.add_argument(
        "--prediction-length",
        type=int,
        default=None,
        help="DeepAR: the model's prediction_length (default: the training job's, else 144)",
    )
    p.add_argument(
        "--score-from", default=None, help="DeepAR: first window to score (default: the last prediction_length windows)"
    )
    p.add_argument("--quiet", action="store_true")
    _aws_options(p)
    _local_options(p)
    p.set_defaults(func=run_invoke)

    p = steps.add_parser("cleanup", help="delete the endpoints, endpoint configs and models this project created")
    p.add_argument("--algorithm", choices=ALGORITHMS, default=None, help="only this algorithm's resources")
    p.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    _aws_options(p)
    p.set_defaults(func=run_cleanup)

    p = steps.add_parser("estimate-cost", help="approximate cost of the configured instances")
    p.add_argument("--endpoints", default="rcf,deepar", help="which endpoints run (default rcf,deepar)")
    p.add_argument("--rcf-instance", default=None, help="RCF endpoint instance (default ml.c5.xlarge)")
    p.add_argument("--deepar-instance", default=None, help="DeepAR endpoint instance (default ml.m5.large)")
    p.add_argument("--instance-count", type=int, default=1, help="instances per endpoint")
    p.add_argument("--training-hours", type=float, default=1.0, help="hours per training job (default 1)")
    p.add_argument(
        "--price", action="append", metavar="INSTANCE=USD", help="override a price per instance-hour (repeatable)"
    )
    p.set_defaults(func=run_estimate_cost)


# --------------------------------------------------------------------------- helpers
def _say(args: argparse.Namespace) -> Callable[[str], None]:
    quiet = getattr(args, "quiet", False)
    return (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))


def _session(args: argparse.Namespace) -> Any:
    return _training().session.make_session(args.region, args.profile)


def _failures(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run a command; AWS-side failures (jobs, endpoints, refused calls) print and exit with status 1."""

    def wrapper(args: argparse.Namespace) -> int:
        errors = _training().errors
        try:
            return fn(args)
        except errors.SageMakerError as exc:
            print(f"clickstream-anomaly sagemaker {args.step}: {exc}", file=sys.stderr)
            return 1

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def _windows(path: Path) -> pd.DataFrame:
    return _training().prepare.load_windows(path)


def _labels(path: Path | None) -> pd.DataFrame | None:
    if path is None:
        return None
    from ..generator import read_labels

    return read_labels(path)


# --------------------------------------------------------------------------- commands
@_failures
def run_prepare(args: argparse.Namespace) -> int:
    _training()
    from clickstream_anomaly.aws.training import prepare
    from clickstream_anomaly.sagemaker_config import validate_bucket, validate_prefix

    say = _say(args)
    if args.bucket is None and args.output_dir is None:
        raise ValueError("missing S3 bucket: pass --bucket NAME (or --output-dir DIR to only write files)")
    if args.bucket is not None:
        validate_bucket(args.bucket)
    validate_prefix(args.prefix)
    windows = prepare.load_windows(args.input)
    scaling = prepare.Scaling.identity() if args.raw_features else None
    datasets = prepare.build_datasets(
        windows,
        _labels(args.labels),
        prediction_length=args.prediction_length,
        column=args.column,
        include_deepar=not args.no_deepar,
        scaling=scaling,
    )
    if args.output_dir is not None:
        for path in prepare.write_local(datasets, args.output_dir):
            say(f"wrote {path}")
    if args.bucket is not None:
        session = _session(args)
        try:
            uris = prepare.upload(session.client("s3"), datasets, args.bucket, args.prefix)
        except Exception as exc:  # botocore errors: keep the message, drop the traceback
            if exc.__class__.__module__.startswith("botocore"):
                raise _training().errors.SageMakerError(f"upload to s3://{args.bucket} failed: {exc}") from exc
            raise
        for name, uri in uris.items():
            print(f"{name}\t{uri}")
    say(f"prepared {len(windows):,} windows: {', '.join(d.name for d in datasets)}")
    return 0


def _hyperparameters(args: argparse.Namespace) -> dict[str, Any]:
    hp: dict[str, Any] = _key_values(args.hp)
    if args.algorithm == "rcf":
        for name in ("num_trees", "num_samples_per_tree", "feature_dim", "eval_metrics"):
            value = getattr(args, name)
            if value is not None:
                hp[name] = value
    else:
        for name in ("num_trees", "num_samples_per_tree", "feature_dim", "eval_metrics"):
            if getattr(args, name) is not None:
                raise ValueError(f"--{name.replace('_', '-')} is an RCF option; use --hp NAME=VALUE for DeepAR")
    return hp


@_failures
def run_train(args: argparse.Namespace) -> int:
    _training()
    from clickstream_anomaly.aws.training import jobs, local

    say = _say(args)
    hp = _hyperparameters(args)
    if args.local:
        if args.input is None:
            raise ValueError("train --local needs --input windows.csv")
        windows = _windows(args.input)
        train = local.train_rcf if args.algorithm == "rcf" else local.train_deepar
        path = train(windows, args.model_dir, hp)
        print(f"local {args.algorithm} model: {path}")
        return 0
    from clickstream_anomaly.sagemaker_config import validate_bucket, validate_role_arn

    validate_role_arn(args.role)
    validate_bucket(args.bucket)
    session = _session(args)
    settings = jobs.TrainingSettings(
        role_arn=args.role,
        bucket=args.bucket,
        region=session.region_name,
        prefix=args.prefix,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        volume_gb=args.volume_gb,
        max_runtime_s=args.max_runtime,
        job_name=args.job_name,
    )
    build = jobs.rcf_training_request if args.algorithm == "rcf" else jobs.deepar_training_request
    request = build(settings, hp, with_test=not args.no_test)
    client = session.client("sagemaker")
    name = jobs.start_training_job(client, request)
    say(
        f"started training job {name} ({request['ResourceConfig']['InstanceCount']} x "
        f"{request['ResourceConfig']['InstanceType']})"
    )
    if args.no_wait:
        print(name)
        return 0
    result = jobs.wait_for_training_job(
        client, name, poll_seconds=args.poll_seconds, timeout_s=args.timeout or 6 * 3600, on_progress=say
    )
    print(jobs.format_result(args.algorithm, result))
    return 0


@_failures
def run_deploy(args: argparse.Namespace) -> int:
    _training()
    from clickstream_anomaly.aws.training import endpoints, local

    say = _say(args)
    if args.local:
        record = local.deploy(args.algorithm, args.model_dir)
        print(
            f"local {args.algorithm} endpoint: nothing deployed; invoke --local will serve "
            f"{local.model_path(args.model_dir, args.algorithm)} (recorded in {record})"
        )
        return 0
    session = _session(args)
    dep = endpoints.deploy(
        session.client("sagemaker"),
        args.algorithm,
        training_job=args.training_job,
        role_arn=args.role,
        endpoint_name=args.endpoint_name,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        poll_seconds=args.poll_seconds,
        timeout_s=args.timeout or 3600.0,
        on_progress=say,
    )
    print(
        f"endpoint {dep.endpoint_name} {dep.action}: {dep.status} (config {dep.endpoint_config_name}, "
        f"model {dep.model_data_url})"
    )
    return 0


def _rcf_scaling(args: argparse.Namespace, session: Any) -> Scaling:
    from clickstream_anomaly.aws.training.prepare import CHANNEL_KEYS, Scaling

    if args.scaling is not None:
        return Scaling.from_json(args.scaling.read_text(encoding="utf-8"))
    if args.bucket is None:
        raise ValueError("invoke rcf needs the scaling written by prepare: pass --scaling FILE or --bucket NAME")
    key = (
        f"{args.prefix.strip('/')}/{CHANNEL_KEYS['rcf-scaling']}"
        if args.prefix.strip("/")
        else CHANNEL_KEYS["rcf-scaling"]
    )
    try:
        body = session.client("s3").get_object(Bucket=args.bucket, Key=key)["Body"].read()
    except Exception as exc:
        if exc.__class__.__module__.startswith("botocore"):
            raise _training().errors.SageMakerError(f"cannot read s3://{args.bucket}/{key}: {exc}") from exc
        raise
    return Scaling.from_json(body)


def _endpoint_transport(args: argparse.Namespace, session: Any) -> EndpointTransport:
    from clickstream_anomaly.aws.training import invoke
    from clickstream_anomaly.aws.training.tags import endpoint_name

    return invoke.EndpointTransport(
        session.client("sagemaker-runtime"), args.endpoint_name or endpoint_name(args.algorithm)
    )


def _rcf_endpoint_detector(args: argparse.Namespace) -> RCFEndpointDetector:
    """The RCF endpoint of ``invoke`` (the local twin with ``--local``) and the scaling of its training data."""
    from clickstream_anomaly.aws.training import invoke, local

    transport: Transport
    if args.local:
        model = local.endpoint("rcf", args.model_dir)
        transport, scaling = model, model.scaling
    else:
        session = _session(args)
        transport = _endpoint_transport(args, session)
        scaling = _rcf_scaling(args, session)
    return invoke.RCFEndpointDetector(transport, scaling=scaling, threshold=args.threshold, batch_size=args.batch_size)


def _deepar_endpoint_detector(args: argparse.Namespace, say: Callable[[str], None]) -> DeepAREndpointDetector:
    """The DeepAR endpoint of ``invoke`` (the local twin with ``--local``); ``prediction_length`` defaults to
    the model's (the training job's hyperparameter for an endpoint)."""
    from clickstream_anomaly.aws.training import invoke, local

    length = args.prediction_length
    transport: Transport
    if args.local:
        model = local.endpoint("deepar", args.model_dir)
        transport = model
        if length is None:
            length = model.prediction_length
    else:
        session = _session(args)
        transport = cloud = _endpoint_transport(args, session)
        if length is None:
            from clickstream_anomaly.aws.training.endpoints import endpoint_hyperparameters

            hp = endpoint_hyperparameters(session.client("sagemaker"), cloud.endpoint_name)
            length = int(hp.get("prediction_length", 144))
            say(f"prediction_length {length} ({'from the training job' if hp else 'default'})")
    return invoke.DeepAREndpointDetector(transport, prediction_length=length, score_from=args.score_from)


@_failures
def run_invoke(args: argparse.Namespace) -> int:
    _training()
    say = _say(args)
    windows = _windows(args.input)
    labels = None
    if args.labels is not None:
        import pandas as pd

        from ..generator import read_labels

        lab = read_labels(args.labels).set_index("window_start")["is_anomaly"]
        starts = pd.to_datetime(windows["window_start"], utc=True)
        labels = lab.reindex(starts).fillna(0).astype("int64").to_numpy()
    detector = _rcf_endpoint_detector(args) if args.algorithm == "rcf" else _deepar_endpoint_detector(args, say)
    detections = detector.detect(windows, labels)
    if args.output is None:
        write_detections_csv(detections, sys.stdout)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        with open(args.output, "w", newline="", encoding="utf-8") as fh:
            write_detections_csv(detections, fh)
    n_anom = sum(d.is_anomaly for d in detections)
    say(
        f"{len(detections):,} windows scored by {'local ' if args.local else ''}{args.algorithm} "
        f"({getattr(detector.transport, 'calls', '?')} requests): {n_anom} anomalous"
    )
    return 0


@_failures
def run_cleanup(args: argparse.Namespace) -> int:
    _training()
    from clickstream_anomaly.aws.training import cleanup

    session = _session(args)
    done = cleanup.cleanup(
        session.client("sagemaker"),
        algorithm=args.algorithm,
        dry_run=args.dry_run,
        on_progress=lambda m: print(m, file=sys.stderr),
    )
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{verb} {len(done)} resource(s)" + (": " + ", ".join(f"{r.kind} {r.name}" for r in done) if done else ""))
    return 0


def run_estimate_cost(args: argparse.Namespace) -> int:
    _training()
    from clickstream_anomaly.aws.training import costs, endpoints, jobs

    overrides = costs.parse_price_overrides(args.price)
    chosen = [a.strip() for a in args.endpoints.split(",") if a.strip()]
    bad = [a for a in chosen if a not in ALGORITHMS]
    if bad:
        raise ValueError(f"--endpoints takes {','.join(ALGORITHMS)}, got {bad}")
    instance = {
        "rcf": args.rcf_instance or endpoints.DEFAULT_ENDPOINT_INSTANCE["rcf"],
        "deepar": args.deepar_instance or endpoints.DEFAULT_ENDPOINT_INSTANCE["deepar"],
    }
    lines = [costs.endpoint_cost(f"{a} endpoint", instance[a], args.instance_count, overrides) for a in chosen]
    training = [
        (
            f"{a} training job",
            jobs.DEFAULT_TRAINING_INSTANCE[a],
            args.training_hours,
            costs.training_cost(jobs.DEFAULT_TRAINING_INSTANCE[a], args.training_hours, 1, overrides),
        )
        for a in chosen
    ]
    print(costs.format_costs(lines, training))
    return 0
