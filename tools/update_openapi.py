"""The committed OpenAPI snapshots: one JSON file per lesson in ``tests/lessons/openapi/``.

Each lesson's whole public contract (paths, parameters, request and response
schemas, examples, descriptions) is committed as ``tests/lessons/openapi/<lesson>.json``
and compared with the app's live schema by ``OpenAPISnapshotContract``, so any
change to it shows in review. After an intended change, rewrite the snapshots
and commit them with the change::

    python -m tools.update_openapi            # every lesson
    python -m tools.update_openapi P03 04_02  # some lessons (ids or module names)
"""

from __future__ import annotations

import difflib
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from lessons import LESSONS
from tools.catalog import LessonNotFound, resolve
from tools.servers import REPO_ROOT

SNAPSHOTS = REPO_ROOT / "tests" / "lessons" / "openapi"


def snapshot_path(name: str) -> Path:
    return SNAPSHOTS / f"{name}.json"


def as_text(schema: dict[str, Any]) -> str:
    """The schema as the snapshot files hold it: indented JSON, keys in the app's order."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def live_schema(name: str) -> dict[str, Any]:
    """The lesson's OpenAPI schema as /openapi.json serves it (the app is not started)."""
    app = importlib.import_module(f"lessons.{name}").app
    return json.loads(json.dumps(app.openapi()))


def differences(live: dict[str, Any], snapshot_text: str, name: str) -> str:
    """A unified diff from the snapshot to the live schema; empty when they are equal."""
    if live == json.loads(snapshot_text):
        return ""
    return "".join(
        difflib.unified_diff(
            snapshot_text.splitlines(keepends=True),
            as_text(live).splitlines(keepends=True),
            f"{snapshot_path(name).relative_to(REPO_ROOT)} (committed)",
            f"lessons/{name}.py (live)",
        )
    )


def _resolve(query: str) -> str:
    """A lesson's module name from its name or id (``04_02``, ``P03``), as ``python -m lessons``."""
    try:
        return resolve(query)
    except LessonNotFound as error:
        raise SystemExit(str(error)) from None


def main(argv: list[str]) -> int:
    names = [_resolve(query) for query in argv] or list(LESSONS)
    SNAPSHOTS.mkdir(exist_ok=True)
    for name in names:
        path = snapshot_path(name)
        text = as_text(live_schema(name))
        changed = not path.exists() or path.read_text(encoding="utf-8") != text
        path.write_text(text, encoding="utf-8")
        print(f"{'updated' if changed else 'unchanged'}: {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
