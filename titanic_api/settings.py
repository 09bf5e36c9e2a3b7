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
# The prediction log rotates at this size and keeps this many older files: on disk at most
# (DEFAULT_LOG_BACKUPS + 1) x DEFAULT_LOG_MAX_BYTES, 500 MiB, about a million passengers.
DEFAULT_LOG_MAX_BYTES = 100 * 1024 * 1024
DEFAULT_LOG_BACKUPS = 4


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
    prediction_log_max_bytes: int = Field(
        default=DEFAULT_LOG_MAX_BYTES,
        gt=0,
        validation_alias=AliasChoices("PREDICTION_LOG_MAX_BYTES", "prediction_log_max_bytes"),
        description="Size at which the prediction log rotates (a write is never split: a "
        "single request's lines larger than this make a file of their own).",
    )
    prediction_log_backups: int = Field(
        default=DEFAULT_LOG_BACKUPS,
        ge=1,
        validation_alias=AliasChoices("PREDICTION_LOG_BACKUPS", "prediction_log_backups"),
        description="Rotated prediction logs kept (<log>.1 the newest); older ones are deleted.",
    )
    enable_simulation: bool = Field(
        default=False,
        validation_alias=AliasChoices("TITANIC_ENABLE_SIMULATION", "enable_simulation"),
        description="Serve POST /simulate_predictions (random passengers for demos and the "
        "course's dashboard); off: it answers 404.",
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
    feedback_retention_days: float = Field(
        default=30.0,
        gt=0,
        validation_alias=AliasChoices("TITANIC_FEEDBACK_RETENTION_DAYS", "feedback_retention_days"),
        description="Days a prediction waits for its label in the store; older ones are "
        "dropped (their labels then count as unknown), so the store has a bounded size.",
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

    Every limit bounds what one client can make the service hold or do:

    - a connection that sends nothing is closed after ``idle_timeout``;
    - a request's head must arrive within ``header_timeout`` of its first byte,
      its body within ``body_timeout`` of its head (else 408 and the connection
      is closed): a slow client cannot hold a connection for long;
    - an answer the client reads too slowly of is dropped after ``send_timeout``, and
      waiting for the client to read holds no turn;
    - ``limit_concurrency`` counts requests being worked on, not connections
      and not requests still sending their body; the others wait for their
      turn, up to ``queue_timeout`` and ``queue_limit``, then get 503, counted in
      ``/metrics``. Liveness probes and scrapes never wait and are never refused.
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
    header_timeout: float = Field(
        default=5.0,
        gt=0,
        description="Seconds from a request's first byte to the end of its head, else 408 and "
        "the connection is closed (TITANIC_HEADER_TIMEOUT).",
    )
    body_timeout: float = Field(
        default=15.0,
        gt=0,
        description="Seconds from a request's head to the end of its body, else 408 and the "
        "connection is closed: 1 MiB at 0.6 Mbit/s (TITANIC_BODY_TIMEOUT).",
    )
    send_timeout: float = Field(
        default=15.0,
        gt=0,
        description="Seconds the server's full send buffer may wait for the client to read "
        "48 kB of it (asyncio's high to low water mark), else the connection is dropped: a "
        "client must read about 3 kB/s (TITANIC_SEND_TIMEOUT).",
    )
    limit_concurrency: int = Field(
        default=8,
        gt=0,
        description="Requests worked on at once (probes and bodies still arriving not "
        "counted); the others wait for their turn (TITANIC_LIMIT_CONCURRENCY).",
    )
    queue_timeout: float = Field(
        default=5.0,
        gt=0,
        description="Seconds a request may wait for its turn, else 503 with Retry-After "
        "(TITANIC_QUEUE_TIMEOUT).",
    )
    queue_limit: int = Field(
        default=1000,
        gt=0,
        description="Requests waiting for their turn beyond which new ones get 503 at once "
        "(TITANIC_QUEUE_LIMIT).",
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
