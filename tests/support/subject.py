"""The app a contract class checks, described the same way for a lesson and for the package.

A contract class (``tests/support/contracts.py``, ``tests/support/*_contracts.py``) reads
only a ``Subject``: its app, the dependency that hands out the model, the committed
model, the ``Passenger`` schema, where its prediction log goes by default and its metrics
registry. ``lesson_subject`` reads them from a lesson module; the package's tests build
theirs from ``titanic_api`` itself (``tests/support/package.py``).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry


class Subject:
    """One app under test.

    ``name`` is the lesson's module name (or ``titanic_api``); ``keeps`` names the
    lesson whose contract it keeps (a lesson keeps its own, the package the final
    lesson's). The app is built on first use, so a test can set the environment first.
    """

    def __init__(
        self,
        name: str,
        keeps: str,
        make_app: Callable[[], FastAPI],
        *,
        get_model: Callable[..., Any],
        committed_model: Path,
        passenger: type[Any],
        loader: ModuleType,
        default_log_path: Callable[[], Path] | None = None,
        registry: Callable[[FastAPI], CollectorRegistry | None] = lambda app: None,
        added_answer_fields: frozenset[str] = frozenset(),
        added_log_keys: frozenset[str] = frozenset(),
        added_families: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.keeps = keeps
        self._make_app = make_app
        self.get_model = get_model
        self.committed_model = committed_model
        self.passenger = passenger
        self.loader = loader
        self._default_log_path = default_log_path
        self._registry = registry
        # What an app adds to the contract it keeps (the package's model monitoring).
        self.added_answer_fields = added_answer_fields
        self.added_log_keys = added_log_keys
        self.added_families = dict(added_families or {})

    def __repr__(self) -> str:
        return f"Subject({self.name})"

    @functools.cached_property
    def app(self) -> FastAPI:
        return self._make_app()

    @property
    def registry(self) -> CollectorRegistry | None:
        return self._registry(self.app)

    def default_log_path(self) -> Path:
        assert self._default_log_path is not None, f"{self.name} writes no prediction log"
        return self._default_log_path()


def lesson_subject(name: str) -> Subject:
    """A lesson, as the contracts read it: the attributes its module declares."""
    lesson = importlib.import_module(f"lessons.{name}")
    return Subject(
        name,
        name,
        lambda: lesson.app,
        get_model=getattr(lesson, "get_model", lambda: None),
        committed_model=getattr(lesson, "COMMITTED_MODEL", Path()),
        passenger=getattr(lesson, "Passenger", dict),
        loader=lesson.mlflow.sklearn if hasattr(lesson, "mlflow") else lesson,
        default_log_path=getattr(lesson, "default_log_path", None),
        registry=lambda app: getattr(lesson, "registry", None),
    )
