"""A hostile prison e-mail service over real HTTP (the provider is an adversary in our
threat model), and a second server on another origin that records what reaches it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import flask
from werkzeug.serving import make_server

from gateway.devstack.ports import free_port


class HttpServer:
    """A Flask app on 127.0.0.1:<free port> in a thread; `seen` lists (path, Authorization)."""

    def __init__(self, app: flask.Flask) -> None:
        self.app, self.port = app, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.seen: list[tuple[str, str | None]] = []

        @app.before_request
        def _record() -> None:
            self.seen.append((flask.request.path, flask.request.headers.get("Authorization")))

        self._server = make_server("127.0.0.1", self.port, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> HttpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._thread.join()


def elsewhere() -> HttpServer:
    """Any other origin: a tracker, or a place to collect our token."""
    app = flask.Flask("elsewhere")

    @app.get("/<path:anything>")
    def anything(anything: str):
        return flask.Response(b"\xff\xd8\xff nothing", content_type="image/jpeg")

    return HttpServer(app)


class HostileProvider(HttpServer):
    """Speaks just enough of provider-api.md: GET /v1/replies lists `replies`; each page
    is served from `pages[name]` = (declared type, bytes or a chunk generator factory)."""

    def __init__(self, token: str) -> None:
        self.replies: list[dict] = []
        self.pages: dict[str, tuple[str, bytes | Callable[[], Iterator[bytes]]]] = {}
        self.sent_bytes = 0
        self.listing: bytes | None = None  # set: /v1/replies answers these bytes as HTML
        app = flask.Flask("hostile")

        @app.get("/v1/replies")
        def replies():
            if flask.request.headers.get("Authorization") != f"Bearer {token}":
                return {"error": "unauthorized"}, 401
            if self.listing is not None:
                return flask.Response(self.listing, content_type="text/html")
            after = flask.request.args.get("after")
            items = [] if after else self.replies
            return {"replies": items, "next": items[-1]["id"] if items else after}

        @app.get("/pages/<name>")
        def page(name: str):
            content_type, body = self.pages[name]
            if callable(body):
                def counted():
                    for chunk in body():
                        self.sent_bytes += len(chunk)
                        yield chunk
                return flask.Response(counted(), content_type=content_type)  # chunked
            return flask.Response(body, content_type=content_type)

        super().__init__(app)

    def add_reply(self, reply_id: str, number: str, *pages: tuple[str, str]) -> None:
        """pages: (url as the provider reports it, declared type)."""
        self.replies.append({"id": reply_id, "letter_number": number,
                             "received_at": "2026-12-01T10:00:00Z",
                             "pages": [{"n": n, "content_type": ct, "url": url}
                                       for n, (url, ct) in enumerate(pages, start=1)]})


def pdf_with_remote_references(beacon: str) -> bytes:
    """A one-page PDF that calls `beacon` when opened (OpenAction URI) and when its link
    is clicked (a Link annotation with a URI action)."""
    content = b"BT /F1 36 Tf 72 700 Td (Reply from the colony) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction 5 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 6 0 R >> >> /Annots [7 0 R] >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /S /URI /URI (" + beacon.encode() + b"/opened) >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /Annot /Subtype /Link /Rect [72 690 400 740] /Border [0 0 0] "
        b"/A << /S /URI /URI (" + beacon.encode() + b"/clicked) >> >>",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)
