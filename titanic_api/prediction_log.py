"""The prediction log: one JSON line per passenger, numbered by ``execute``.

From the logging lessons (P03, P04), same format. Hardened here:

- whatever the last line of an existing log holds (not JSON, a bad ``execute``,
  JSON nested absurdly deep, a torn line of any length), the service starts and
  numbers on, reading the file in bounded chunks;
- several worker processes may share one file (``PREDICTION_LOG_PATH`` under
  gunicorn): each write holds an exclusive ``flock`` on it, so the numbers stay
  unique and increasing across the workers, and a failed write's undo (a truncate)
  only ever cuts that write's own bytes;
- the file rotates by size (``PREDICTION_LOG_MAX_BYTES``), keeping
  ``PREDICTION_LOG_BACKUPS`` older files (``predictions.jsonl.1`` the newest); the
  numbering goes on across a rotation, and a write is never split between files;
- a log that cannot be written is counted (``prediction_log_errors_total``), and
  said in the server log once with its traceback, then at most once a minute.
"""

import fcntl
import io
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pydantic_core import to_json

from titanic_api.settings import DEFAULT_LOG_BACKUPS, DEFAULT_LOG_MAX_BYTES, Settings

logger = logging.getLogger("uvicorn.error")

# Files are read in pieces of this size: memory stays bounded whatever a line's length.
CHUNK = 1 << 20
# How far back from the end a writer looks for the last line the service wrote, and in
# pieces of what size (the last line, about 500 bytes, is nearly always in the first piece).
LOOKBACK = 1 << 20
TAIL_CHUNK = 1 << 13
# The exact start of every line this module writes (compact JSON, ``execute`` first): a
# line another program appends, or a damaged one, is never taken for a number.
OWN_LINE = re.compile(rb'(?<![^\n])\{"execute":(\d{1,18}),"execution_time":"')
# The longest prefix OWN_LINE can match, kept between two chunks read backwards.
OWN_LINE_MAX = 64
# After the first failed write (reported with its traceback), at most one line per interval.
ERROR_REPORT_INTERVAL = 60.0


class PredictionLog:
    """An append-only JSON-lines file, shared safely by threads and worker processes."""

    def __init__(
        self,
        path: Path,
        on_error: Callable[[int], None] = lambda count: None,
        max_bytes: int = DEFAULT_LOG_MAX_BYTES,
        backups: int = DEFAULT_LOG_BACKUPS,
    ) -> None:
        self.path = path
        self.on_error = on_error  # called with the number of records that were not written
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        self._file: io.FileIO | None = None
        self._last_execute = 0
        # (inode, size) of the file after this process last wrote or read it: if the file is
        # still so, no other worker wrote since and ``_last_execute`` is the last number.
        self._known: tuple[int, int] | None = None
        self._unreported = 0  # failed records since the last report
        self._next_report: float | None = None

    def open(self) -> None:
        """Open for appending; continue after the last whole line already there."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock:
                self._file = io.FileIO(self.path, "a")
                self._lock_current()
                try:
                    counted = last_execute(self.path)
                    written = self._last_written()
                    self._last_execute = max(counted, written or 0)
                    self._known = self._state()
                finally:
                    self._unlock()
            logger.info("Logging predictions to %s", self.path)
        except OSError:
            logger.exception(
                "Cannot open the prediction log %s; predictions go unlogged", self.path
            )

    def write(self, shared: dict[str, object], records: list[dict[str, object]]) -> None:
        """Number the records and append them as whole lines: all of them or none.

        ``shared`` holds the fields every line has (time, model, kind), encoded once:
        each line is ``{"execute": n, <shared>, <record>}`` spliced from bytes.
        """
        with self._lock:
            try:
                if self._file is None:
                    raise OSError(f"the prediction log {self.path} is not open")
                middle = b"," + to_json(shared)[1:-1] + b","
                bodies = [to_json(record)[1:] for record in records]
                self._lock_current()
                try:
                    data = self._numbered(middle, bodies)
                    if self._too_full(len(data)):
                        self._rotate()
                        data = self._numbered(middle, bodies)
                    self._append(data)
                    self._last_execute += len(records)
                    self._known = self._state()
                finally:
                    self._unlock()
            except (OSError, ValueError) as error:
                self._failed(len(records), error)

    def _numbered(self, middle: bytes, bodies: list[bytes]) -> bytes:
        """The lines, numbered after the last one in the file (whichever worker wrote it)."""
        if self._state() != self._known:
            self._last_execute = max(self._last_execute, self._last_written() or 0)
        first = self._last_execute + 1
        return b"".join(
            b'{"execute":%d%s%s\n' % (first + i, middle, body) for i, body in enumerate(bodies)
        )

    def _too_full(self, adding: int) -> bool:
        """Rotate first if these lines would take a non-empty file past ``max_bytes``."""
        assert self._file is not None
        size = os.fstat(self._file.fileno()).st_size
        return size > 0 and size + adding > self.max_bytes and self.path.is_file()

    def _rotate(self) -> None:
        """``path`` becomes ``path.1``, ``path.1`` becomes ``path.2``... the oldest goes."""
        for number in range(self.backups, 0, -1):
            older = self._backup(number - 1) if number > 1 else self.path
            if older.exists():
                os.replace(older, self._backup(number))
        if not self.backups:
            self.path.unlink(missing_ok=True)
        logger.info("Rotated the prediction log %s", self.path)
        self._unlock()
        self._reopen()
        self._lock_current()

    def _backup(self, number: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{number}")

    def _lock_current(self) -> None:
        """Hold the exclusive lock of the file that ``path`` names now.

        Another worker may have rotated the file while this one waited: then the
        lock is on the old file, and it is taken again on the new one.
        """
        while True:
            assert self._file is not None
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
            opened = os.fstat(self._file.fileno())
            try:
                current = os.stat(self.path)
            except FileNotFoundError:
                current = None
            if current is not None and (current.st_dev, current.st_ino) == (
                opened.st_dev,
                opened.st_ino,
            ):
                return
            self._unlock()
            self._reopen()

    def _unlock(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)

    def _reopen(self) -> None:
        assert self._file is not None
        self._file.close()
        self._file = None
        self._file = io.FileIO(self.path, "a")

    def _state(self) -> tuple[int, int]:
        assert self._file is not None
        stat = os.fstat(self._file.fileno())
        return stat.st_ino, stat.st_size

    def _last_written(self) -> int | None:
        """The number of the last line this service wrote, in the file or else its backup."""
        for path in (self.path, self._backup(1)):
            number = last_written_number(path)
            if number is not None:
                return number
        return None

    def _append(self, data: bytes) -> None:
        """Write all of ``data``, or leave the file as it was (no torn last line)."""
        assert self._file is not None
        start = os.fstat(self._file.fileno()).st_size
        written = 0
        try:
            while written < len(data):
                count = self._file.write(data[written:])
                if not count:
                    raise OSError(f"no progress writing {self.path}")
                written += count
        except OSError:
            if written:
                os.ftruncate(self._file.fileno(), start)
            raise

    def _failed(self, count: int, error: Exception) -> None:
        """Count the lost records; say so once with the traceback, then once per interval."""
        self.on_error(count)
        self._unreported += count
        now = time.monotonic()
        if self._next_report is None:
            logger.exception("Could not write %d predictions to the log", count)
        elif now >= self._next_report:
            logger.error(
                "Could not write %d predictions to the log since the last report: %s",
                self._unreported,
                error,
            )
        else:
            return
        self._unreported = 0
        self._next_report = now + ERROR_REPORT_INTERVAL

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def last_execute(path: Path) -> int:
    """The number of whole lines in the file (0 for a new file): ``execute`` goes on from there.

    As in the final lesson, ``execute`` is a line's number in its file. Read once, at
    start-up, in chunks of ``CHUNK`` bytes (a torn line of any length costs no more
    memory than that); only newlines are counted and no line is parsed, so whatever a
    damaged line holds, the server starts. A torn last line (the server was killed
    halfway through a write) is cut off.
    """
    if not path.is_file():
        return 0
    whole_lines, whole_bytes, offset = 0, 0, 0
    with path.open("rb", buffering=0) as file:
        while chunk := file.read(CHUNK):
            newlines = chunk.count(b"\n")
            if newlines:
                whole_lines += newlines
                whole_bytes = offset + chunk.rindex(b"\n") + 1
            offset += len(chunk)
    if offset > whole_bytes:
        logger.warning("Cutting a torn last line off %s", path)
        os.truncate(path, whole_bytes)
    return whole_lines


def last_written_number(path: Path, lookback: int = LOOKBACK) -> int | None:
    """The ``execute`` of the last line the service wrote in the last ``lookback`` bytes.

    Read backwards in chunks; only lines that start exactly as this module writes them
    count, so a line appended by hand or a damaged one is passed over.
    """
    try:
        file = path.open("rb", buffering=0)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    with file:
        end = position = file.seek(0, os.SEEK_END)
        later = b""  # the start of the chunk read before (it follows this one in the file)
        while position > 0 and end - position < lookback:
            size = min(TAIL_CHUNK, position)
            position -= size
            file.seek(position)
            block = file.read(size) + later
            found = [m for m in OWN_LINE.finditer(block) if m.start() > 0 or position == 0]
            if found:
                return int(found[-1].group(1))
            later = block[:OWN_LINE_MAX]
    return None


def default_log_path(settings: Settings) -> Path:
    """A new file per server start, named after the start time and the process id."""
    started = datetime.now(UTC).strftime("%Y%m%dT%H%M%S_%fZ")
    return settings.prediction_log_dir / f"predictions_{started}_{os.getpid()}.jsonl"


def log_path(settings: Settings) -> Path:
    """``PREDICTION_LOG_PATH`` if set, else a new file in ``PREDICTION_LOG_DIR``."""
    return settings.prediction_log_path or default_log_path(settings)


def open_log(settings: Settings, on_error: Callable[[int], None]) -> PredictionLog:
    """The prediction log these settings describe, opened."""
    log = PredictionLog(
        log_path(settings),
        on_error=on_error,
        max_bytes=settings.prediction_log_max_bytes,
        backups=settings.prediction_log_backups,
    )
    log.open()
    return log
