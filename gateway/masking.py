"""Addresses in free text we store (SMTP and DSN errors, notes, alerts) are masked first.

Mail servers repeat the recipient in their answers ("550 5.1.1 <anna@example.org>: no such
user"); stored as is, a seized database would list writers in its error columns. The
stored text keeps what a person needs to act (the code, the reason, a masked address that
tells two writers apart), never the address itself. Columns typed `MaskedText` in
gateway/models.py pass through `mask_addresses` on every write, whoever writes them.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from gateway.crypto import mask

# Local part and domain as people and servers write them, Unicode (IDN, EAI) included;
# url-encoded '@' (%40) too, as in a quoted mailto: link.
_ADDRESS = re.compile(
    r"(?<![\w.!#$%&'*+/=?^`{|}~-])"
    r"[\w.!#$%&'*+/=?^`{|}~-]+(?:@|%40)[\w-]+(?:\.[\w-]+)+", re.UNICODE)


def mask_addresses(text: str | None) -> str | None:
    """The text with every e-mail address in it masked (m***@e***.org)."""
    if not text or ("@" not in text and "%40" not in text.lower()):
        return text
    return _ADDRESS.sub(lambda m: mask(unquote(m.group(0))), text)
