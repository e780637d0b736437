"""Coverage-guided fuzzing of the mail parser (atheris / libFuzzer).

Any input must end as a ParsedLetter or UnparseableMessage; nothing a stranger wrote may come
out able to break a header we write. Anything else (another exception, a hang past
-timeout, memory past -rss_limit_mb) is a crash that libFuzzer saves as crash-<sha1>.
See fuzz/README.md for how to run it.
"""

from __future__ import annotations

import re
import resource
import sys

import atheris

with atheris.instrument_imports():
    import email  # noqa: F401 - instrumented: most of the parsing happens in the stdlib
    import email.feedparser  # noqa: F401
    import email.headerregistry  # noqa: F401

    from gateway.mail.parse import UnparseableMessage, parse_message

BREAKS = re.compile(r"[\r\n\0\u2028\u2029\x85]")


def TestOneInput(data: bytes) -> None:  # noqa: N802 - the name atheris looks for
    try:
        letter = parse_message(data)
    except UnparseableMessage:
        return
    values = [letter.subject, letter.sender_name or "", letter.message_id or "",
              letter.sender or "", *(name for name, _ in letter.declined),
              *(a.filename for a in letter.attachments)]
    for value in values:
        if BREAKS.search(value):
            raise AssertionError(f"a parsed value can break a header: {value!r}")
    if letter.message_id and re.search(r"[\s<>]", letter.message_id):
        raise AssertionError(f"message id is not one token: {letter.message_id!r}")


def main() -> None:
    # As in production's bounded parser: a runaway input costs memory, never the machine.
    limit = 2 * 1024 ** 3
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
