"""Helpers for tests that look at pages in a real browser."""

from __future__ import annotations

# The image's natural width once it has loaded (0 if it failed to). "Visible" only says the
# element is laid out: on a loaded machine its bytes may still be on the way.
_LOADED_WIDTH = """img => (img.complete ? img.naturalWidth : new Promise(done => {
    img.addEventListener("load", () => done(img.naturalWidth), {once: true});
    img.addEventListener("error", () => done(0), {once: true});
}))"""


def image_width(locator) -> int:
    """A Playwright locator's <img>, waited for until it has loaded or failed."""
    return locator.evaluate(_LOADED_WIDTH)
