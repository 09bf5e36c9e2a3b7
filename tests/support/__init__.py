"""What several test folders share, and nothing else.

- ``metrics``: one scrape of /metrics, parsed with prometheus_client's own parser
  (``scrape`` takes a TestClient or a live server's URL);
- ``lessons``: the lessons grouped by what they have (a model, metrics, a log);
- ``contracts``, ``validation_contracts``, ``golden_signals_contracts``,
  ``model_metrics_contracts``, ``prediction_log_contracts``, ``simulation_contracts``:
  the behaviours the lessons and the package share, as test classes (``monitoring``:
  what the last four share);
- ``package``: ``titanic_api`` dressed as the lesson module the contracts read,
  and ``PackageServer``, the package started on 127.0.0.1;
- ``git``: the working tree's status, so a run that leaves files behind fails.

Live tests speak HTTP with httpx2, the client FastAPI's ``TestClient`` is built on.
Fixtures live in ``tests/conftest.py``; the example passengers in ``tools/examples.py``.
"""
