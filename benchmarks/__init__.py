"""Serving benchmark: titanic_api against its peers and against the model's own limit.

Run it from the repository root::

    python -m benchmarks            # full run
    python -m benchmarks --quick    # one short round
    python -m benchmarks --out benchmarks/results/<date>-<machine>.md

The peers serve the same committed MLflow model: ``mlflow models serve``,
MLServer (``mlserver-mlflow``) and BentoML (``bentoml.mlflow``), the last two
from virtual environments that ``benchmarks.peers`` makes on first use.

- ``benchmarks.run``: the command line, in order: start, check, measure, report;
- ``benchmarks.lineup`` and ``benchmarks.peers``: the servers, defined;
- ``benchmarks.targets``: the servers' names, protocols and the scenarios;
- ``benchmarks.measure``: starting, checking and measuring the servers in rounds;
- ``benchmarks.limit``: the model called in this process, no HTTP;
- ``benchmarks.load``: the load generator;
- ``benchmarks.figures`` and ``benchmarks.report``: the figures and the Markdown report.

Every comparison is a ratio of two figures taken in the same round, so a
machine that is busy with something else slows both sides alike.
"""
