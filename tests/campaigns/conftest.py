"""Campaign tests reuse the intake pipeline's real database and check helpers."""

from tests.intake.conftest import gw  # noqa: F401
