"""A TLS-terminating reverse proxy for tests, as Caddy or nginx would stand in front of the
dashboard: HTTPS outside (a self-signed certificate made with `cryptography`), plain HTTP
to the dashboard inside, with X-Forwarded-Proto/-For/-Host set and any the client sent
dropped. One request per connection (Connection: close upstream) keeps it small."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# Hop-by-hop headers, and the forwarding ones only the proxy may set.
DROPPED = {"connection", "keep-alive", "proxy-connection", "te", "upgrade",
           "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port",
           "x-forwarded-prefix", "forwarded"}


def self_signed(directory: Path, hostname: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(hostname), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "proxy.crt", directory / "proxy.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class TLSProxy:
    def __init__(self, upstream_port: int, directory: Path, hostname: str) -> None:
        self.upstream_port = upstream_port
        self.cert, key = self_signed(directory, hostname)
        self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ssl.load_cert_chain(self.cert, key)
        self.port = 0
        self.requests: list[str] = []  # request lines seen, for the test to check
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> TLSProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(asyncio.start_server(
            self._handle, "127.0.0.1", 0, ssl=self._ssl), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            # Connections the browser opened and left idle: end their handlers too.
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        upstream_writer = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")
            self.requests.append(request_line)
            headers = [h for h in lines if h and h.split(":", 1)[0].strip().lower() not in DROPPED]
            host = next((h.split(":", 1)[1].strip() for h in headers
                         if h.lower().startswith("host:")), "")
            peer = writer.get_extra_info("peername")[0]
            headers += ["X-Forwarded-Proto: https", f"X-Forwarded-For: {peer}",
                        f"X-Forwarded-Host: {host}", "Connection: close"]
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.upstream_port)
            upstream_writer.write("\r\n".join([request_line, *headers, "", ""]).encode("latin-1"))
            await upstream_writer.drain()
            body = asyncio.create_task(self._pipe(reader, upstream_writer))
            await self._pipe(upstream_reader, writer)
            body.cancel()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            for w in (upstream_writer, writer):
                if w is not None:
                    w.close()

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()
