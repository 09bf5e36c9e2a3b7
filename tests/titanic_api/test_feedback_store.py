"""The feedback store (titanic_api.feedback): on SQLite, then the same on PostgreSQL."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.postgres import postgres
from titanic_api import feedback
from titanic_api.feedback import Outcome, PostgresStore, Prediction, SQLiteStore, StoreUnavailable
from tools.servers import HOST, REPO_ROOT, PostgresServer, free_port

__all__ = ["postgres"]  # the fixture, used by name

SURVIVOR = Prediction("m-1", 0.75, 1)
VICTIM = Prediction("m-1", 0.25, 0)


def counts(outcome: Outcome) -> tuple[list[tuple[Prediction, int]], int, int]:
    return outcome.accepted, outcome.unknown, outcome.already_labelled


def test_ids_grow_with_time_and_are_random_after() -> None:
    before = feedback.time_prefix(time.time())
    ids = feedback.new_ids(1000)
    after = feedback.time_prefix(time.time())
    assert len(set(ids)) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert before <= ids[0][:12] <= after
    assert len({i[:12] for i in ids}) == 1  # one time, then 80 random bits each
    assert feedback.new_ids(0) == []


def test_old_predictions_are_dropped(tmp_path: Path) -> None:
    store = feedback.SQLiteStore(tmp_path / "f.sqlite3", retention_days=1)
    store.open()
    old = feedback.time_prefix(time.time() - 2 * 86_400) + "0" * 20
    store.retention.due()  # not yet: the first prune comes with the next record
    store.record([old], "m-1", [0.75], [1])
    store.retention._next = 0.0  # a prune is due
    [new] = feedback.new_ids(1)
    store.record([new], "m-1", [0.75], [1])
    assert counts(store.label([(old, 1), (new, 1)])) == ([(SURVIVOR, 1)], 1, 0)
    store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.live)])
def make_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], feedback.FeedbackStore]]:
    """Opens stores on one database: each is what one worker or replica holds."""
    opened: list[feedback.FeedbackStore] = []
    if request.param == "sqlite":
        url = str(tmp_path / "feedback.sqlite3")
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.url
        with psycopg.connect(url, autocommit=True) as db:
            db.execute(f"DROP TABLE IF EXISTS {feedback.TABLE}")

    def make() -> feedback.FeedbackStore:
        store = feedback.open_store(url, tmp_path / "unused.sqlite3")
        assert store is not None
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def test_a_label_is_accepted_once(make_store: Callable[[], feedback.FeedbackStore]) -> None:
    store = make_store()
    store.record(["a", "b", "c"], "m-1", [0.75, 0.25, 0.75], [1, 0, 1])
    outcome = store.label([("a", 1), ("b", 1), ("nope", 0), ("a", 0), ("c", 0)])
    assert counts(outcome) == ([(SURVIVOR, 1), (VICTIM, 1), (SURVIVOR, 0)], 1, 1)
    # Sent again: nothing is counted twice, the unknown id stays unknown.
    assert counts(store.label([("a", 1), ("b", 0), ("nope", 1)])) == ([], 1, 2)


def test_another_worker_labels_what_one_predicted(
    make_store: Callable[[], feedback.FeedbackStore],
) -> None:
    predicting, labelling = make_store(), make_store()
    ids = feedback.new_ids(500)
    predicting.record(ids, "m-1", [0.75] * 500, [1] * 500)
    outcome = labelling.label([(i, 1) for i in ids])
    assert (len(outcome.accepted), outcome.unknown, outcome.already_labelled) == (500, 0, 0)
    assert counts(predicting.label([(ids[0], 0)])) == ([], 0, 1)


def test_concurrent_labels_count_once(make_store: Callable[[], feedback.FeedbackStore]) -> None:
    """Four workers send the same 200 labels at once: exactly 200 are accepted in all."""
    stores = [make_store() for _ in range(4)]
    ids = feedback.new_ids(200)
    stores[0].record(ids, "m-1", [0.25] * 200, [0] * 200)
    outcomes: list[Outcome] = []
    start = threading.Barrier(len(stores))

    def send(store: feedback.FeedbackStore) -> None:
        start.wait()
        for chunk in range(0, 200, 20):
            outcomes.append(store.label([(i, 0) for i in ids[chunk : chunk + 20]]))

    threads = [threading.Thread(target=send, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(len(o.accepted) for o in outcomes) == 200
    assert sum(o.already_labelled for o in outcomes) == 600
    assert sum(o.unknown for o in outcomes) == 0


def test_the_setting_chooses_the_store(tmp_path: Path) -> None:
    default = tmp_path / "logs" / "feedback.sqlite3"
    assert feedback.open_store("off", default) is None
    assert feedback.open_store(" OFF ", default) is None
    store = feedback.open_store(None, default)
    assert isinstance(store, SQLiteStore)
    assert (store.path, default.is_file()) == (default, True)
    store.close()
    named = feedback.open_store(f"sqlite:///{tmp_path / 'other.db'}", default)
    assert isinstance(named, SQLiteStore)
    assert named.path == tmp_path / "other.db"
    named.close()


def test_an_unreachable_postgresql_fails_fast(caplog: pytest.LogCaptureFixture) -> None:
    """The service starts without its store, and every call fails at once until a retry."""
    url = f"postgresql://someone:secret@{HOST}:{free_port()}/titanic"
    store = feedback.open_store(url, Path("unused"))
    assert isinstance(store, PostgresStore)
    assert store.url == f"postgresql://{HOST}:{url.rsplit(':', 1)[1].split('/')[0]}/titanic"
    assert "secret" not in caplog.text
    assert "The feedback store is unavailable" in caplog.text
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="retrying soon"):
        store.record(["a"], "m-1", [0.75], [1])
    with pytest.raises(StoreUnavailable, match="retrying soon"):
        store.label([("a", 1)])
    assert time.monotonic() - started < PostgresStore.RETRY_SECONDS


def test_an_unwritable_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    store = feedback.open_store(str(blocked / "feedback.sqlite3"), Path("unused"))
    assert isinstance(store, SQLiteStore)
    with pytest.raises(StoreUnavailable, match="is not open"):
        store.record(["a"], "m-1", [0.75], [1])


def test_ci_installs_and_requires_postgresql() -> None:
    """CI runs the PostgreSQL tests for real: Debian's package, and no silent skip."""
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    [install] = [line for line in ci.splitlines() if line.startswith("apt-get install")]
    assert "postgresql" in install.split()
    assert "export REQUIRE_POSTGRES=1" in ci.splitlines()
