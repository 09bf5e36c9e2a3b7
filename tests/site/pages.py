"""What the site's tests read from the lesson pages: their curl calls and highlighted lines."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from tests.support.lessons import LESSONS
from tools.servers import REPO_ROOT

DOCS = REPO_ROOT / "docs"
LESSON_PAGES = DOCS / "lessons"


def changed_lines(name: str) -> list[int]:
    """What a lesson's page must highlight: its lines that the previous lesson lacks."""
    index = LESSONS.index(name)
    if index == 0:
        return []
    old = (REPO_ROOT / "lessons" / f"{LESSONS[index - 1]}.py").read_text().splitlines()
    new = (REPO_ROOT / "lessons" / f"{name}.py").read_text().splitlines()
    return [
        number + 1
        for tag, _, _, start, end in difflib.SequenceMatcher(None, old, new, False).get_opcodes()
        if tag != "equal"
        for number in range(start, end)
    ]


@dataclass
class Call:
    """A ``curl`` command of a page and, when the page shows one, the answer it promises."""

    command: str
    status: int | None = None
    answer: str | None = None
    kind: str | None = None


TRY = re.compile(
    r"```bash\n(curl [^\n]*)\n```"
    r'(?:\n\n```(json|text) title="status (\d{3})"\n(.*?)```)?',
    re.DOTALL,
)


def calls_on(page: Path) -> list[Call]:
    return [
        Call(command, int(status) if status else None, answer or None, kind or None)
        for command, kind, status, answer in TRY.findall(page.read_text())
    ]
