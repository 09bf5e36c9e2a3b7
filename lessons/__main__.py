"""``python -m lessons``: list, serve and compare the lessons (see tools/lessons_cli.py)."""

from tools.lessons_cli import main

if __name__ == "__main__":
    raise SystemExit(main())
