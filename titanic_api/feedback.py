"""The feedback store: every real prediction by id, until its true outcome arrives.

Ground truth comes late (did the passenger survive?) and may reach another worker or
replica than the prediction did, so the state lives in a database every process
shares, chosen by one setting, ``TITANIC_FEEDBACK_STORE``:

- unset: an SQLite file beside the prediction logs (one machine, several workers:
  SQLite's locking makes them take turns, in WAL mode readers never wait);
- ``postgresql://user@host:port/db``: a PostgreSQL server several replicas share
  (psycopg 3);
- ``off``: no store; answers still carry ids, ``POST /feedback`` answers 503.

**Exactly once.** A label is accepted by one statement,
``UPDATE ... SET survived = ? WHERE prediction_id = ? AND survived IS NULL``: the
database applies it to the row at most once, whichever worker or replica runs it and
however many run it at the same time (PostgreSQL re-checks the ``WHERE`` after a
concurrent update; SQLite runs one writer at a time). Its ``RETURNING`` clause gives the
prediction that was labelled, so the quality counters count exactly the accepted labels.
An id the statement did not update is looked up: known means already labelled,
anything else is unknown and never counted.

**The hot path.** A request's predictions are inserted with one ``executemany`` in one
transaction, before the answer is sent (so any id a client holds is already known to
every worker and replica), in a worker thread (the event loop serves others meanwhile).
"""

from __future__ import annotations

import logging
import operator
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

logger = logging.getLogger("uvicorn.error")

OFF = "off"
DEFAULT_RETENTION_DAYS = 30.0
TABLE = "titanic_predictions"
# {options}: SQLite keeps the rows in the primary key's own tree (WITHOUT ROWID): one tree
# to update per insert instead of two.
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    prediction_id TEXT PRIMARY KEY,
    model_version TEXT NOT NULL,
    probability DOUBLE PRECISION NOT NULL,
    predicted SMALLINT NOT NULL,
    survived SMALLINT
){{options}}
"""
INSERT = (
    f"INSERT INTO {TABLE} (prediction_id, model_version, probability, predicted)"
    " VALUES ({p}, {p}, {p}, {p})"
)
# Predictions older than the retention are dropped; their ids start with a smaller time.
PRUNE = f"DELETE FROM {TABLE} WHERE prediction_id < {{p}}"
PRUNE_EVERY = 600.0  # seconds between two prunes by one process
LABEL = (
    f"UPDATE {TABLE} SET survived = {{p}} WHERE prediction_id = {{p}} AND survived IS NULL"
    " RETURNING model_version, probability, predicted, survived"
)
KNOWN = f"SELECT 1 FROM {TABLE} WHERE prediction_id = {{p}}"


def new_ids(count: int) -> list[str]:
    """``count`` new ids, 32 hex digits: the time in milliseconds (12), then 80 random bits (20).

    The layout of RFC 9562's UUIDv7, for its reason: ids that grow with time are
    inserted at the end of the table's index, where random ones (UUID4) land all over
    it. As the table grows past the database's cache, random ids made each
    1,000-passenger insert ten times dearer; time-ordered ones keep it flat. The
    time prefix also makes the retention a range delete. The random part comes from
    the operating system: two workers or replicas in the same millisecond draw the
    same 80 bits with a chance of 2**-80 per pair of ids.
    """
    prefix = time_prefix(time.time())
    digits = os.urandom(10 * count).hex()
    return [prefix + digits[start : start + 20] for start in range(0, 20 * count, 20)]


def time_prefix(seconds: float) -> str:
    return f"{int(seconds * 1000):012x}"


@dataclass(frozen=True)
class Prediction:
    """What the store keeps of one prediction, and gives back when it is labelled."""

    model_version: str
    probability: float  # of survival
    predicted: int


@dataclass
class Outcome:
    """What a batch of labels did: the labelled predictions, and the ids refused."""

    accepted: list[tuple[Prediction, int]] = field(default_factory=list)
    unknown: int = 0
    already_labelled: int = 0


class Retention:
    """When to drop old predictions: at most every ``PRUNE_EVERY`` seconds, per process.

    Labels come days after the prediction, if ever; a table that kept every
    prediction would grow without bound (about 100 bytes a row). A label for a
    dropped prediction counts as unknown.
    """

    def __init__(self, days: float) -> None:
        self.seconds = days * 86_400
        self._next = 0.0

    def due(self) -> str | None:
        """The smallest id to keep, if a prune is due now; else None."""
        now = time.monotonic()
        if now < self._next:
            return None
        self._next = now + PRUNE_EVERY
        return time_prefix(time.time() - self.seconds)


class StoreUnavailable(Exception):
    """The database could not be reached or refused the statement."""


class FeedbackStore(Protocol):
    url: str

    def open(self) -> None: ...

    def record(
        self,
        ids: Sequence[str],
        model_version: str,
        probabilities: Sequence[float],
        predictions: Sequence[int],
    ) -> None: ...

    def label(self, labels: Sequence[tuple[str, int]]) -> Outcome: ...

    def close(self) -> None: ...


class SQLiteStore:
    """One SQLite file, shared by the workers of one machine."""

    def __init__(self, path: Path, retention_days: float = DEFAULT_RETENTION_DAYS) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        self.retention = Retention(retention_days)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit (isolation_level None): the transactions below say BEGIN themselves.
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout = 10000")  # wait for another worker's write
        db.execute("PRAGMA journal_mode = WAL")  # readers never wait for the writer
        db.execute(
            "PRAGMA synchronous = NORMAL"
        )  # WAL stays consistent; a power cut may lose the last commits
        db.execute(SCHEMA.format(options=" WITHOUT ROWID"))
        self._db = db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; ``IMMEDIATE`` takes the write lock at once (no upgrade race)."""
        with self._lock:
            if self._db is None:
                raise StoreUnavailable(f"the feedback store {self.path} is not open")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as error:
                raise StoreUnavailable(str(error)) from error

    def record(
        self,
        ids: Sequence[str],
        model_version: str,
        probabilities: Sequence[float],
        predictions: Sequence[int],
    ) -> None:
        with self._transaction() as db:
            db.executemany(
                INSERT.format(p="?"), rows(ids, model_version, probabilities, predictions)
            )
            if (cutoff := self.retention.due()) is not None:
                db.execute(PRUNE.format(p="?"), (cutoff,))

    def label(self, labels: Sequence[tuple[str, int]]) -> Outcome:
        outcome = Outcome()
        with self._transaction() as db:
            for prediction_id, survived in labels:
                row = db.execute(LABEL.format(p="?"), (survived, prediction_id)).fetchone()
                count(outcome, row, partial(known, db, prediction_id))
        return outcome

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def known(db: sqlite3.Connection, prediction_id: str) -> bool:
    return db.execute(KNOWN.format(p="?"), (prediction_id,)).fetchone() is not None


class PostgresStore:
    """A PostgreSQL database that several replicas share (psycopg 3, one connection per worker).

    If the server cannot be reached, the service still serves: every call fails fast
    with ``StoreUnavailable`` and the next one after ``RETRY_SECONDS`` tries again.
    """

    RETRY_SECONDS = 5.0
    CONNECT_TIMEOUT = 5

    def __init__(self, url: str, retention_days: float = DEFAULT_RETENTION_DAYS) -> None:
        self._url = url
        self.retention = Retention(retention_days)
        parts = urlsplit(url)  # for the logs: no user name or password
        self.url = f"{parts.scheme}://{parts.hostname}:{parts.port or 5432}{parts.path}"
        self._lock = threading.Lock()
        self._connection: Any = None
        self._retry_at = 0.0

    def open(self) -> None:
        try:
            with self._lock:
                self._connect()
        except StoreUnavailable as error:
            logger.error("The feedback store is unavailable (%s); predictions serve on", error)

    def _connect(self) -> Any:
        import psycopg

        if self._connection is not None and not self._connection.closed:
            return self._connection
        if time.monotonic() < self._retry_at:
            raise StoreUnavailable("the feedback store is unavailable (retrying soon)")
        try:
            connection = psycopg.connect(
                self._url, autocommit=True, connect_timeout=self.CONNECT_TIMEOUT
            )
            with connection.transaction():
                # Replicas starting together must not race to create the table.
                connection.execute("SELECT pg_advisory_xact_lock(1957122)")
                connection.execute(SCHEMA.format(options=""))
        except psycopg.Error as error:
            self._retry_at = time.monotonic() + self.RETRY_SECONDS
            raise StoreUnavailable(str(error).strip()) from error
        self._connection = connection
        return connection

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        import psycopg

        with self._lock:
            connection = self._connect()
            try:
                with connection.transaction(), connection.cursor() as cursor:
                    yield cursor
            except psycopg.Error as error:
                if connection.broken:
                    self._connection = None
                raise StoreUnavailable(str(error).strip()) from error

    def record(
        self,
        ids: Sequence[str],
        model_version: str,
        probabilities: Sequence[float],
        predictions: Sequence[int],
    ) -> None:
        with self._transaction() as cursor:
            cursor.executemany(
                INSERT.format(p="%s"), rows(ids, model_version, probabilities, predictions)
            )
            if (cutoff := self.retention.due()) is not None:
                cursor.execute(PRUNE.format(p="%s"), (cutoff,))

    def label(self, labels: Sequence[tuple[str, int]]) -> Outcome:
        """All the updates in one round trip (psycopg pipelines ``executemany``)."""
        outcome = Outcome()
        with self._transaction() as cursor:
            cursor.executemany(
                LABEL.format(p="%s"),
                [(survived, prediction_id) for prediction_id, survived in labels],
                returning=True,
            )
            rows = []
            for _ in cursor.results():
                rows.append(cursor.fetchone())
            refused = [label[0] for label, row in zip(labels, rows, strict=True) if row is None]
            cursor.execute(
                f"SELECT prediction_id FROM {TABLE} WHERE prediction_id = ANY(%s)", (refused,)
            )
            existing = {row[0] for row in cursor.fetchall()}
            for (prediction_id, _), row in zip(labels, rows, strict=True):
                count(outcome, row, partial(operator.contains, existing, prediction_id))
        return outcome

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


def rows(
    ids: Sequence[str],
    model_version: str,
    probabilities: Sequence[float],
    predictions: Sequence[int],
) -> list[tuple[str, str, float, int]]:
    """The rows a request's predictions add to the table."""
    return [
        (prediction_id, model_version, probability, predicted)
        for prediction_id, probability, predicted in zip(
            ids, probabilities, predictions, strict=True
        )
    ]


def count(outcome: Outcome, updated: Any, is_known: Callable[[], bool]) -> None:
    """Count one label: accepted if it updated a row, else already labelled or unknown."""
    if updated is not None:
        model_version, probability, predicted, survived = updated
        outcome.accepted.append((Prediction(model_version, probability, predicted), survived))
    elif is_known():
        outcome.already_labelled += 1
    else:
        outcome.unknown += 1


def open_store(
    setting: str | None, default_path: Path, retention_days: float = DEFAULT_RETENTION_DAYS
) -> FeedbackStore | None:
    """The store ``TITANIC_FEEDBACK_STORE`` names (None when it is ``off``), opened.

    A store that cannot be opened is logged, and the service serves on without it.
    """
    if setting is not None and setting.strip().lower() == OFF:
        return None
    store: FeedbackStore
    if setting and setting.startswith(("postgresql://", "postgres://")):
        store = PostgresStore(setting, retention_days)
    else:
        path = Path(setting.removeprefix("sqlite:///")) if setting else default_path
        store = SQLiteStore(path, retention_days)
    try:
        store.open()
    except (OSError, sqlite3.Error) as error:
        logger.error("Cannot open the feedback store %s (%s); labels answer 503", store.url, error)
        store.close()
    return store
