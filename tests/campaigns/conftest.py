"""Campaign tests reuse the intake pipeline's real database and check helpers."""

from tests.campaigns.test_joining import gw as march  # noqa: F401  (8 March, five women)
from tests.intake.conftest import gateway_settings, gw  # noqa: F401
