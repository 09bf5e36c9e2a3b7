"""The course's final app as a production package.

Start it with ``python -m titanic_api`` (one process, with the package's server
limits), ``uvicorn titanic_api.main:app``, or under gunicorn with several workers
(``gunicorn -c titanic_api/gunicorn_conf.py titanic_api.main:app``). It keeps the
final lesson's public contract (endpoints, metric names and labels, prediction-log
format); see docs/production.md for which lesson part became which module.

The layers, from the outside in:

- ``server`` and ``gunicorn_conf``: the HTTP server and its limits;
- ``app``: the app factory, which builds everything from one ``Settings``;
- ``routes``: the endpoints, which only speak HTTP;
- ``service``: predicting, recording (metrics and log) and simulating;
- ``model``, ``metrics``, ``prediction_log``, ``simulation``: what the service uses;
- ``schemas`` and ``settings``: the shapes of the bodies and of the configuration.
"""

SERVICE_NAME = "titanic-api"
__version__ = "1.0.0"
