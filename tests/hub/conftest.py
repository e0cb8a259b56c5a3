"""Fixtures of the real-hub tests."""

# Chromium for the hub tests that drive a browser (an LTI platform's windows): the
# browser tests' fixture, defined once.
from ..browser.conftest import browser  # noqa: F401
