"""Serving benchmark: titanic_api (and the lessons) against ``mlflow models serve``.

Run it from the repository root::

    python -m benchmarks            # full run, about 6 minutes
    python -m benchmarks --quick    # about a minute
    python -m benchmarks --out benchmarks/results/<date>-<machine>.md

``benchmarks.run`` starts every server itself on 127.0.0.1 (with
``tools.servers``), warms it up, measures it in interleaved rounds and stops
it by its pid; ``benchmarks.load`` is the load generator; ``benchmarks.report``
turns the figures into the Markdown table. Every comparison is a ratio of two
figures taken in the same round, so a machine that is busy with something else
slows both sides alike.
"""
