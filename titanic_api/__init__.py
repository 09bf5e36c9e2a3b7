"""The course's final app as a production package.

Start it with ``uvicorn titanic_api.main:app`` (one process) or under gunicorn
with several workers (``gunicorn -c titanic_api/gunicorn_conf.py titanic_api.main:app``).
It keeps the final lesson's public contract (endpoints, metric names and labels,
prediction-log format); see docs/production.md for which lesson part became
which module.
"""
