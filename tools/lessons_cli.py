"""List, serve and compare the lessons: ``python -m lessons [list|serve|diff]``.

lessons/__main__.py only calls ``main`` here, so that lessons/ holds only the
lessons; what the tool knows about them comes from tools/catalog.py. Run from
the repository root::

    python -m lessons                   # the table of lessons (same as `list`)
    python -m lessons serve 04_02       # = uvicorn lessons.fastapi_04_02_single_app:app
    python -m lessons serve p03 --port 8001 --reload
    python -m lessons diff 05 P00       # what P00 adds to 05: endpoints, metrics, code

A lesson is named by its module name or by a short unique id or prefix
(``04_02``, ``P03``, ``prometheus_03``, ``fastapi_05``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from collections.abc import Sequence

from tools import catalog

PROG = "python -m lessons"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="List, serve and compare the lessons of the Titanic MLOps tutorial.",
        epilog="LESSON is a module name or a unique id or prefix: 04_02, P03, prometheus_03.",
    )
    commands = parser.add_subparsers(dest="command", metavar="{list,serve,diff}")
    commands.add_parser(
        "list",
        help="the lessons in teaching order (the default)",
        description="Every lesson: id, module, summary (docstring) and endpoints (OpenAPI).",
    )
    serve = commands.add_parser(
        "serve",
        help="run a lesson under uvicorn",
        description="Run LESSON exactly as `uvicorn lessons.<name>:app` would.",
    )
    serve.add_argument("lesson", metavar="LESSON", help="e.g. 01, 04_02, P03 or a module name")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind (default %(default)s)")
    serve.add_argument("--reload", action="store_true", help="restart when a file changes")
    diff = commands.add_parser(
        "diff",
        help="what lesson B changes in lesson A",
        description="The endpoints and metrics B adds or removes, then a unified diff A -> B.",
    )
    diff.add_argument("a", metavar="A", help="the earlier lesson, e.g. 05")
    diff.add_argument("b", metavar="B", help="the later lesson, e.g. P00")
    diff.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the diff: auto = on a terminal, unless NO_COLOR is set (default)",
    )
    return parser


def resolve_or_exit(query: str, command: str) -> str:
    """The lesson's module name, or one line on stderr and exit code 2 (as argparse does)."""
    try:
        return catalog.resolve(query)
    except catalog.LessonNotFound as error:
        print(f"{PROG} {command}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def list_lessons() -> None:
    # On a terminal, wrap to its width; piped, keep each lesson on two long lines.
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    print(catalog.table(catalog.catalogue(), width))


def serve(name: str, host: str, port: int, reload: bool) -> None:
    import uvicorn

    target = f"lessons.{name}:app"
    flags = ["--host", host, "--port", str(port)] + (["--reload"] if reload else [])
    print(f"Running: {shlex.join(['uvicorn', target, *flags])}", file=sys.stderr, flush=True)
    root = str(catalog.LESSONS_DIR.parent)
    uvicorn.run(
        target,
        host=host,
        port=port,
        reload=reload,
        app_dir=root,
        reload_dirs=root if reload else None,
    )


def use_colour(choice: str) -> bool:
    if choice != "auto":
        return choice == "always"
    # https://no-color.org: any non-empty NO_COLOR turns colour off.
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def diff(a: str, b: str, colour: bool) -> None:
    before, after = catalog.Lesson.load(a), catalog.Lesson.load(b)
    out = sys.stdout
    for line in catalog.summary_lines(before, after):
        out.write(line + "\n")
    out.write("\n")
    lines = list(catalog.unified_diff(a, b))
    if not lines:
        out.write("The two lesson files are identical.\n")
    for line in lines:
        out.write(catalog.colour(line) if colour else line)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            serve(resolve_or_exit(args.lesson, "serve"), args.host, args.port, args.reload)
        elif args.command == "diff":
            a, b = resolve_or_exit(args.a, "diff"), resolve_or_exit(args.b, "diff")
            diff(a, b, use_colour(args.color))
        else:
            list_lessons()
        sys.stdout.flush()
    except BrokenPipeError:
        # `python -m lessons diff 05 P00 | head`: the reader left; stop quietly.
        # (Python's documented recipe: point stdout at devnull so the exit flush is silent.)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
