"""The workflow that publishes the course site: valid YAML, a strict build, GitHub's Pages actions.

No runner is available here, so the workflow is read, not run: its steps must build exactly
what the suite builds (`mkdocs build --strict`, with the versions requirements-dev.txt pins)
and hand it to GitHub Pages with GitHub's own actions.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.servers import REPO_ROOT

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "pages.yml"
SITE_PACKAGES = ("mkdocs", "mkdocs-material", "pymdown-extensions")


def load(text: str) -> dict[str, Any]:
    document = yaml.safe_load(text)
    assert isinstance(document, dict)
    # YAML 1.1 reads the key `on` as True.
    document["on"] = document.pop(True, document.get("on"))
    return document


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def problems(workflow: dict[str, Any]) -> list[str]:
    """What keeps the workflow from publishing a strictly built site (empty: nothing)."""
    found = []
    uses = [step.get("uses", "").split("@")[0] for step in steps(workflow)]
    for action in (
        "actions/checkout",
        "actions/configure-pages",
        "actions/upload-pages-artifact",
        "actions/deploy-pages",
    ):
        if action not in uses:
            found.append(f"no {action}")
    runs = "\n".join(step.get("run", "") for step in steps(workflow))
    build = re.search(r"python -m mkdocs build --strict --site-dir (\S+)", runs)
    if not build:
        found.append("no `python -m mkdocs build --strict`")
    upload = next(
        (s for s in steps(workflow) if s.get("uses", "").startswith("actions/upload-pages")), {}
    )
    if build and upload.get("with", {}).get("path") != build.group(1):
        found.append("the uploaded folder is not the one built")
    if workflow.get("permissions") != {"contents": "read", "pages": "write", "id-token": "write"}:
        found.append("permissions are not exactly contents: read, pages: write, id-token: write")
    if "main" not in workflow["on"].get("push", {}).get("branches", []):
        found.append("does not run on pushes to main")
    deploy = workflow["jobs"].get("deploy", {})
    if (
        deploy.get("needs") != "build"
        or deploy.get("environment", {}).get("name") != "github-pages"
    ):
        found.append("the deploy job does not follow the build into the github-pages environment")
    return found


def schema_errors(path: Path) -> str:
    """check-jsonschema against GitHub's workflow schema (the copy it ships: no network)."""
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows"]
        + [str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return "" if result.returncode == 0 else result.stdout + result.stderr


def test_the_workflow_is_a_valid_github_workflow() -> None:
    assert schema_errors(WORKFLOW) == ""


def test_an_invalid_workflow_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "pages.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "runs_on:"))
    assert "'runs-on' is a required property" in schema_errors(broken)


def test_the_workflow_builds_strictly_and_publishes_with_github_pages() -> None:
    assert problems(load(WORKFLOW.read_text())) == []


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("mkdocs build --strict", "mkdocs build", "no `python -m mkdocs build --strict`"),
        ("actions/deploy-pages@v4", "actions/upload-artifact@v4", "no actions/deploy-pages"),
        ("pages: write", "pages: read", "permissions are not exactly"),
        ("path: _site", "path: site", "the uploaded folder is not the one built"),
    ],
)
def test_a_broken_workflow_is_found(old: str, new: str, expected: str) -> None:
    text = WORKFLOW.read_text()
    assert old in text
    found = problems(load(text.replace(old, new)))
    assert any(problem.startswith(expected) for problem in found), found


def test_the_workflow_installs_the_pinned_site_packages(tmp_path: Path) -> None:
    """Its grep line, run here, picks exactly the site's pins from requirements-dev.txt."""
    runs = "\n".join(step.get("run", "") for step in steps(load(WORKFLOW.read_text())))
    [grep] = [line.strip() for line in runs.splitlines() if line.strip().startswith("grep ")]
    result = subprocess.run(
        grep.replace('"$RUNNER_TEMP/', f'"{tmp_path}/'),
        shell=True,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == ""
    picked = (tmp_path / "site-requirements.txt").read_text().splitlines()
    assert [line.split("==")[0] for line in picked] == list(SITE_PACKAGES)
    dev = (REPO_ROOT / "requirements-dev.txt").read_text().splitlines()
    assert all(line in dev for line in picked)


def test_the_site_build_needs_nothing_but_the_site_packages() -> None:
    """The hook the workflow's build runs imports only the standard library."""
    hook = (REPO_ROOT / "docs" / "hooks" / "lesson_pages.py").read_text()
    imported = re.findall(r"^(?:from|import) (\w+)", hook, re.MULTILINE)
    assert {name for name in imported if name != "__future__"} <= sys.stdlib_module_names
