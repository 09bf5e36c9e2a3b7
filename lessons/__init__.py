"""The numbered lessons of the Titanic MLOps tutorial, one FastAPI app per file.

Each file is self-contained on purpose: read it top to bottom and run it with
``uvicorn lessons.<name>:app --reload`` from the repository root. Compare two
neighbours (``python -m lessons diff A B``) to see exactly what a stage adds.
"""
