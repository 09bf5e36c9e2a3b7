"""The prediction log: one JSON line per passenger, numbered by ``execute``.

From the logging lessons (P03, P04), same format. Hardened here: whatever the last
line of an existing log holds (not JSON, a bad ``execute``, JSON nested absurdly
deep), the service starts and numbers on.
"""

import io
import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pydantic_core import to_json

from titanic_api.settings import Settings

logger = logging.getLogger("uvicorn.error")


class PredictionLog:
    """An append-only JSON-lines file, shared safely by the thread pool."""

    def __init__(self, path: Path, on_error: Callable[[int], None] = lambda count: None) -> None:
        self.path = path
        self.on_error = on_error  # called with the number of records that were not written
        self._lock = threading.Lock()
        self._file: io.FileIO | None = None
        self._last_execute = 0

    def open(self) -> None:
        """Open for appending; continue after the last whole line already there."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._last_execute = last_execute(self.path)
            self._file = io.FileIO(self.path, "a")
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
                first = self._last_execute + 1
                middle = b"," + to_json(shared)[1:-1] + b","
                lines = [
                    b'{"execute":%d%s%s\n' % (first + i, middle, to_json(record)[1:])
                    for i, record in enumerate(records)
                ]
                self._append(b"".join(lines))
                self._last_execute += len(records)
            except (OSError, ValueError):
                self.on_error(len(records))
                logger.exception("Could not write %d predictions to the log", len(records))

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

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def last_execute(path: Path) -> int:
    """The number of whole lines in the file (0 for a new file): ``execute`` goes on from there.

    As in the final lesson, ``execute`` is a line's number in its file. Read once, at
    start-up; only newlines are counted and no line is parsed, so whatever a damaged
    line holds, the server starts. A torn last line (the server was killed halfway
    through a write) is cut off.
    """
    if not path.is_file():
        return 0
    whole_lines, whole_bytes = 0, 0
    with path.open("rb") as file:
        for line in file:
            if line.endswith(b"\n"):
                whole_lines, whole_bytes = whole_lines + 1, whole_bytes + len(line)
    if path.stat().st_size > whole_bytes:
        logger.warning("Cutting a torn last line off %s", path)
        os.truncate(path, whole_bytes)
    return whole_lines


def default_log_path(settings: Settings) -> Path:
    """A new file per server start, named after the start time and the process id."""
    started = datetime.now(UTC).strftime("%Y%m%dT%H%M%S_%fZ")
    return settings.prediction_log_dir / f"predictions_{started}_{os.getpid()}.jsonl"


def log_path(settings: Settings) -> Path:
    """``PREDICTION_LOG_PATH`` if set, else a new file in ``PREDICTION_LOG_DIR``."""
    return settings.prediction_log_path or default_log_path(settings)
