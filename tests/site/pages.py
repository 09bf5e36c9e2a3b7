"""Where the site's tests find the pages (the lesson pages' commands: tests/site/commands.py)."""

from __future__ import annotations

from tools.servers import REPO_ROOT

DOCS = REPO_ROOT / "docs"
LESSON_PAGES = DOCS / "lessons"
