"""``python -m benchmarks [--quick] [--out FILE]``: see benchmarks/run.py."""

from benchmarks.run import main

raise SystemExit(main())
