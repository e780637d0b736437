"""`python -m gateway.simulator --port 8025 --state var/sim.db`"""

from __future__ import annotations

import argparse

from .server import DEFAULT_REPLY_FROM, serve_forever


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.simulator",
        description="A simulated prison e-mail service speaking provider-api.md.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--state", default="var/sim.db", help="SQLite file keeping the state")
    parser.add_argument("--token", default="sim-token", help="the Bearer token clients must send")
    parser.add_argument("--smtp-host", default=None, help="mail replies through this server")
    parser.add_argument("--smtp-port", type=int, default=25)
    parser.add_argument("--reply-from", default=DEFAULT_REPLY_FROM)
    args = parser.parse_args(argv)
    serve_forever(
        args.host,
        args.port,
        args.state,
        args.token,
        args.smtp_host,
        args.smtp_port,
        args.reply_from,
    )


if __name__ == "__main__":
    main()
