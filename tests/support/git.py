"""The working tree's status: a test run must leave it as it found it."""

from __future__ import annotations

import subprocess

from tools.servers import REPO_ROOT


def git_status() -> set[str] | None:
    """The lines of ``git status --porcelain`` (None outside a git checkout)."""
    try:
        result = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return set(result.stdout.splitlines())
