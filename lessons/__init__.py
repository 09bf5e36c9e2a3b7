"""The numbered lessons of the Titanic MLOps tutorial, one FastAPI app per file.

Each file is self-contained on purpose: read it top to bottom and run it with
``uvicorn lessons.<name>:app --reload`` from the repository root. Compare two
neighbours (``python -m lessons diff A B``) to see exactly what a stage adds.

``LESSONS`` is the teaching order, the one list that ``python -m lessons`` and
the tests read. Adding a lesson? Add its module name here, in its place.
"""

LESSONS: tuple[str, ...] = (
    "fastapi_01_test_app",
    "fastapi_02_roles_app",
    "fastapi_03_health_app",
    "fastapi_04_single_app",
    "fastapi_04_02_single_app",
    "fastapi_05_batch_test_app",
    "prometheus_00_simple_monitoring_app",
    "prometheus_01_four_signal_monitor_app",
    "prometheus_02_model_monitor_app",
    "prometheus_03_logging_app",
    "prometheus_04_multi_execute_app",
)
