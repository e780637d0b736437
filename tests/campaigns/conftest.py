"""Campaign tests reuse the intake pipeline's real database and check helpers."""

from tests.intake.conftest import gateway_settings, gw  # noqa: F401
