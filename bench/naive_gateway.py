"""The naive one-file gateway the benchmark compares against: what a volunteer would write
in an evening. imaplib, one message at a time; parse; one HTTP POST per letter over one
keep-alive connection. No checks, no state, no notices, no retries: a crash loses letters,
a restart sends them twice.

    python bench/naive_gateway.py --imap-port 1143 --user naive --password secret \
        --provider http://127.0.0.1:8025 --token sim-token --directory prisoners.csv

Prints one JSON line: {"letters": n, "posted": n, "seconds": s, "first_fetch": t, ...}."""

from __future__ import annotations

import argparse
import base64
import csv
import email
import http.client
import imaplib
import json
import re
import sys
import time
from email import policy
from urllib.parse import urlsplit


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--imap-host", default="127.0.0.1")
    ap.add_argument("--imap-port", type=int, default=1143)
    ap.add_argument("--user", default="naive")
    ap.add_argument("--password", default="secret")
    ap.add_argument("--provider", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--directory", required=True, help="prisoners CSV")
    ap.add_argument("--key-prefix", default="naive-",
                    help="of each POST's idempotency key: a second run over the same mailbox "
                         "is new letters to the provider, not answers it has stored")
    args = ap.parse_args(argv)

    # The only "addressing": a directory code or a surname anywhere in the subject or the
    # first line; else the first prisoner. No declension, no typos, no ambiguity.
    with open(args.directory, encoding="utf-8") as fh:
        prisoners = list(csv.DictReader(fh))
    by_code = {p["code"]: p for p in prisoners}
    by_stem = {p["last_name"].rstrip("а")[:-1].lower(): p for p in prisoners}

    def whom(subject: str, text: str) -> dict:
        for word in re.findall(r"\w+", subject + " " + text.split("\n", 1)[0]):
            if word in by_code:
                return by_code[word]
            if (p := by_stem.get(word.rstrip("ауеыойю")[:-1].lower())) is not None:
                return p
        return prisoners[0]

    url = urlsplit(args.provider)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    started = time.monotonic()
    imap = imaplib.IMAP4(args.imap_host, args.imap_port)
    imap.login(args.user, args.password)
    imap.select("INBOX")
    _typ, data = imap.uid("SEARCH", "ALL")
    uids = data[0].split()
    posted = failed = 0
    for uid in uids:
        _typ, fetched = imap.uid("FETCH", uid, "(BODY.PEEK[])")
        raw = fetched[0][1]
        msg = email.message_from_bytes(raw, policy=policy.default)
        body = msg.get_body(("plain", "html"))
        text = body.get_content() if body is not None else ""
        if body is not None and body.get_content_type() == "text/html":
            text = re.sub(r"<[^>]+>", "", text)
        photos = [{"filename": part.get_filename() or "photo.jpg",
                   "content_type": part.get_content_type(),
                   "data": base64.b64encode(part.get_payload(decode=True)).decode()}
                  for part in msg.iter_attachments() if part.get_content_maintype() == "image"]
        p = whom(str(msg["Subject"] or ""), text)
        payload = {
            "facility_id": p["facility_id"],
            "recipient": {"last_name": p["last_name"], "first_name": p["first_name"],
                          "middle_name": p["middle_name"] or None,
                          "birth_year": int(p["birth_year"]) if p["birth_year"] else None},
            "author": {"name": "Друг", "email": "replies@gateway.local", "phone": "+70000000000"},
            "text": text, "photos": photos, "reply_ordered": True,
            "client_ref": f"{args.key_prefix}{uid.decode()}",
        }
        conn.request("POST", "/v1/letters", body=json.dumps(payload).encode(), headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {args.token}",
            "Idempotency-Key": f"{args.key_prefix}{uid.decode()}"})
        response = conn.getresponse()
        response.read()
        if response.status in (200, 201):
            posted += 1
        else:
            failed += 1
    seconds = time.monotonic() - started
    imap.logout()
    print(json.dumps({"letters": len(uids), "posted": posted, "failed": failed,
                      "seconds": seconds, "lps": len(uids) / seconds if seconds else 0.0}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
