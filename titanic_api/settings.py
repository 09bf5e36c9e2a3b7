"""Settings, read from the environment once per start by pydantic-settings.

The environment variables are the lessons' own, so a learner's shell works
unchanged:

- ``TITANIC_MODEL_URI``: the MLflow model to serve (default: the committed model,
  when the package runs from the course's checkout; installed elsewhere with
  ``pip install .`` there is no committed model beside it, so it must be set);
- ``PREDICTION_LOG_PATH``: the prediction log file (default: a new file per start
  in ``PREDICTION_LOG_DIR``, named after the start time and the process id);
- ``PREDICTION_LOG_DIR``: where those files go (default: ``logs/`` in the checkout,
  or in the working directory when the package is installed elsewhere).

``PROMETHEUS_MULTIPROC_DIR`` (read by prometheus_client itself) switches on
multiprocess mode; see ``titanic_api.metrics``.
"""

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]
# The committed champion model, found relative to the package (not the current
# directory), so the service starts from any working directory of the checkout.
# The one place that names it: tools, tests and benchmarks import it from here.
COMMITTED_MODEL = (
    REPO_ROOT / "mlruns/titanic-survival/models/m-5c784fcf692248669a11bef6a1632938/artifacts"
)
# Installed with ``pip install .``, the package lives in site-packages, with no model beside it.
IN_CHECKOUT = COMMITTED_MODEL.is_dir()
LOG_DIR = REPO_ROOT / "logs" if IN_CHECKOUT else Path("logs")


class Settings(BaseSettings):
    """Everything the service reads from its environment, with documented defaults."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    model_uri: str | None = Field(
        default=str(COMMITTED_MODEL) if IN_CHECKOUT else None,
        validation_alias=AliasChoices("TITANIC_MODEL_URI", "model_uri"),
        description="MLflow model URI or folder to serve (required outside the checkout).",
    )
    prediction_log_path: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("PREDICTION_LOG_PATH", "prediction_log_path"),
        description="The prediction log file; unset: a new file per start in the log folder.",
    )
    prediction_log_dir: Path = Field(
        default=LOG_DIR,
        validation_alias=AliasChoices("PREDICTION_LOG_DIR", "prediction_log_dir"),
        description="Folder of the per-start prediction logs.",
    )
    multiproc_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("PROMETHEUS_MULTIPROC_DIR", "multiproc_dir"),
        description="Set (to an empty folder) for several worker processes: metrics are "
        "written there and /metrics adds them up.",
    )
    # Model monitoring (titanic_api.feedback_metrics): the benchmark switches both off to
    # measure their cost.
    feedback_store: str | None = Field(
        default=None,
        validation_alias=AliasChoices("TITANIC_FEEDBACK_STORE", "feedback_store"),
        description="Where prediction ids and labels are kept: unset, an SQLite file "
        "feedback.sqlite3 beside the prediction logs; a file path; postgresql://... (replicas "
        "sharing a server); 'off' (none: POST /feedback answers 503).",
    )
    drift_metrics: bool = Field(
        default=True,
        validation_alias=AliasChoices("TITANIC_DRIFT_METRICS", "drift_metrics"),
        description="Count real passengers into the model's reference profile's bins "
        "(false: the profile is not loaded, as for a model without one).",
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        description="Larger request bodies get 413 before they are read "
        "(a 1,000-passenger batch is about 110 kB).",
    )


class ServerSettings(BaseSettings):
    """The server's limits (``python -m titanic_api`` and the gunicorn workers).

    Every connection holds a file descriptor. uvicorn closes a connection that
    stays idle after an answer (keep-alive timeout) but, on its own, never one
    that sends no request at all: a few hundred such connections would exhaust
    the descriptors. ``titanic_api.server`` closes those after the same timeout,
    and ``limit_concurrency`` answers 503 instead of accepting work without bound.
    """

    model_config = SettingsConfigDict(env_prefix="TITANIC_", frozen=True, extra="ignore")

    host: str = Field(default="127.0.0.1", description="Address to listen on (TITANIC_HOST).")
    port: int = Field(default=8000, description="Port to listen on (TITANIC_PORT).")
    bind: str = Field(
        default="127.0.0.1:8000", description="gunicorn's address, host:port (TITANIC_BIND)."
    )
    workers: int = Field(
        default=2,
        gt=0,
        validation_alias=AliasChoices("WEB_CONCURRENCY", "workers"),
        description="gunicorn's worker processes (WEB_CONCURRENCY, the name gunicorn reads).",
    )
    idle_timeout: float = Field(
        default=5.0,
        gt=0,
        description="Seconds a connection may stay without a request, before its first one or "
        "between two (TITANIC_IDLE_TIMEOUT).",
    )
    limit_concurrency: int = Field(
        default=200,
        gt=0,
        description="Open connections and requests beyond which new requests get 503 "
        "(TITANIC_LIMIT_CONCURRENCY).",
    )
    backlog: int = Field(
        default=2048, gt=0, description="Connections the kernel queues before accepting them."
    )
    graceful_timeout: float = Field(
        default=20.0,
        gt=0,
        description="Seconds a stop (SIGTERM) waits for requests in flight: under Kubernetes' "
        "default grace period of 30 s (TITANIC_GRACEFUL_TIMEOUT).",
    )
