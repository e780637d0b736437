"""Helpers for the rules tests: drafts and warm singletons (detector, analyzer, lexicons)."""

from __future__ import annotations

import pytest

from gateway.rules import warm_up


@pytest.fixture(scope="session", autouse=True)
def _warm_rules() -> None:
    warm_up()
