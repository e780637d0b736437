"""A throwaway Dovecot IMAP server on loopback, for tests and the demo.

Config follows the tested recipe in docs/research (ecosystem.md §3): plaintext auth on
127.0.0.1 only, passwd-file users, Maildir under `root/mail/<user>`. Dovecot 2.4 rejects
2.3 syntax, so the template is picked from `dovecot --version`. Run as root, the mail
processes run as `nobody` and the whole tree is chowned to it (moved under /tmp if
`nobody` could not reach it).
"""

from __future__ import annotations

import functools
import grp
import os
import pwd
import re
import shutil
import socket
import string
import subprocess
import tempfile
from pathlib import Path

from imapclient import IMAPClient

from gateway.devstack.ports import ensure_free, free_port, wait_for_port
from gateway.devstack.process_group import GroupServer, ProcessGroup

DEFAULT_USERS = {"letters": "secret", "replies": "secret"}
_UNSELECTABLE = {b"\\noselect", b"\\nonexistent"}

_CONFIG_23 = string.Template("""\
protocols = imap
listen = 127.0.0.1
base_dir = $root/run
state_dir = $root/run/state
instance_name = $instance
log_path = $root/dovecot.log
$ssl
disable_plaintext_auth = no
auth_mechanisms = plain login
# Tests try wrong passwords; the default 2 s penalty would only slow them down.
auth_failure_delay = 0
default_internal_user = $user
default_internal_group = $group
default_login_user = $user
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $root/passwd
}
userdb {
  driver = static
  args = uid=$user gid=$group home=$root/mail/%u
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    port = $imaps_port
  }
}
service anvil {
  chroot =
  # No brute-force penalty: after one wrong password in a test, every later login
  # from 127.0.0.1 would be delayed by seconds.
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
""")

# Per the 2.3-to-2.4 upgrade guide; untested here (Debian 12 ships 2.3).
_CONFIG_24 = string.Template("""\
dovecot_config_version = 2.4.0
dovecot_storage_version = 2.4.0
protocols = imap
listen = 127.0.0.1
base_dir = $root/run
state_dir = $root/run/state
instance_name = $instance
log_path = $root/dovecot.log
$ssl
auth_allow_cleartext = yes
auth_mechanisms = plain login
# Tests try wrong passwords; the default 2 s penalty would only slow them down.
auth_failure_delay = 0
default_internal_user = $user
default_internal_group = $group
default_login_user = $user
mail_driver = maildir
mail_path = ~/Maildir
passdb passwd-file {
  passwd_file_path = $root/passwd
}
userdb static {
  fields {
    uid = $user
    gid = $group
    home = $root/mail/%{user}
  }
}
service imap-login {
  chroot =
  inet_listener imap {
    port = $port
  }
  inet_listener imaps {
    port = $imaps_port
  }
}
service anvil {
  chroot =
  # No brute-force penalty: after one wrong password in a test, every later login
  # from 127.0.0.1 would be delayed by seconds.
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
""")


def dovecot_binary() -> str:
    # /usr/sbin is often missing from a non-root PATH.
    found = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise FileNotFoundError(
            "dovecot not found; install it with: apt-get install -y dovecot-imapd"
        )
    return found


@functools.cache
def dovecot_version() -> tuple[int, int]:
    out = subprocess.run(
        [dovecot_binary(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.match(r"(\d+)\.(\d+)", out.strip())
    if not match:
        raise RuntimeError(f"cannot parse `dovecot --version` output: {out!r}")
    return int(match[1]), int(match[2])


def _run_as() -> tuple[str, str]:
    """The account the mail processes run as: nobody/nogroup for root, else ourselves."""
    if os.geteuid() == 0:
        return "nobody", "nogroup"
    return pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name


def _searchable_by_others(root: Path) -> bool:
    return all(os.stat(ancestor).st_mode & 0o001 for ancestor in root.parents)


class DovecotServer(GroupServer):
    """Own Dovecot instance: `DovecotServer(root).start()`, then IMAP on host:port."""
    label = "Dovecot"

    host = "127.0.0.1"

    def __init__(self, root: Path, port: int = 0, users: dict[str, str] | None = None,
                 tls: tuple[Path, Path] | None = None) -> None:
        self.root = Path(root).absolute()
        # Where Dovecot's files live: `root`, unless running as root and `root` sits
        # below a directory `nobody` cannot enter (pytest's tmp_path, /root/...); then
        # a private directory under /tmp, kept for this object's lifetime.
        self.data_dir = self.root
        self.port = port
        self.users = dict(users if users is not None else DEFAULT_USERS)
        self._process: ProcessGroup | None = None
        # (certificate chain, key) PEM files: STARTTLS on `port`, implicit TLS on `tls_port`
        self.tls = tls
        self.tls_port = 0

    @property
    def log_path(self) -> Path:
        return self.data_dir / "dovecot.log"

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> DovecotServer:
        if self._process is not None:
            raise RuntimeError("Dovecot already started")
        if not self.port:
            self.port = free_port()
        ensure_free(self.host, self.port)
        if self.tls and not self.tls_port:
            self.tls_port = free_port()
        user, group = _run_as()
        self.root.mkdir(parents=True, exist_ok=True)
        if (
            os.geteuid() == 0
            and self.data_dir == self.root
            and not _searchable_by_others(self.root)
        ):
            self.data_dir = Path(tempfile.mkdtemp(prefix="gw-dovecot-"))
        conf = self._write_config(user, group)
        self._process = ProcessGroup(
            [dovecot_binary(), "-F", "-c", str(conf)], self.data_dir / "dovecot.stdout"
        )
        self._process.start()
        try:
            wait_for_port(self.host, self.port, timeout=10.0)
            self._wait_for_greeting(timeout=10.0)
        except (TimeoutError, OSError) as exc:
            log = self._log_tail()
            self.stop()
            raise TimeoutError(f"Dovecot did not start: {exc}\n{log}") from None
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None

    # --- mail ------------------------------------------------------------------------

    def client(self, user: str) -> IMAPClient:
        """A logged-in imapclient connection; the caller logs out (use it as a context manager)."""
        imap = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        imap.login(user, self.users[user])
        return imap

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        with self.client(user) as imap:
            if folder.upper() != "INBOX" and not imap.folder_exists(folder):
                imap.create_folder(folder)
            imap.append(folder, raw)

    def messages(self, user: str, folder: str = "INBOX") -> list[bytes]:
        """Raw bytes of every message in the folder, in UID order; [] if it does not exist."""
        with self.client(user) as imap:
            if not imap.folder_exists(folder):
                return []
            imap.select_folder(folder, readonly=True)
            uids = sorted(imap.search("ALL"))
            if not uids:
                return []
            fetched = imap.fetch(uids, [b"BODY.PEEK[]"])
            return [fetched[uid][b"BODY[]"] for uid in uids]

    def folders(self, user: str) -> list[str]:
        with self.client(user) as imap:
            return [name for _flags, _delim, name in imap.list_folders()]

    def reset(self, user: str | None = None) -> None:
        """Empty INBOX and delete every other folder, for one user or all of them."""
        for name in [user] if user else list(self.users):
            with self.client(name) as imap:
                # Deepest first: Dovecot refuses to delete a folder that has children.
                # Skip \Noselect parents Maildir++ only implies ("Archive" of "Archive.2024").
                others = [
                    folder
                    for flags, _delim, folder in imap.list_folders()
                    if folder.upper() != "INBOX" and not _UNSELECTABLE & {f.lower() for f in flags}
                ]
                for folder in sorted(others, key=len, reverse=True):
                    imap.delete_folder(folder)
                imap.select_folder("INBOX")
                uids = imap.search("ALL")
                if uids:
                    imap.delete_messages(uids)
                    imap.expunge()

    # --- internals -------------------------------------------------------------------

    def _write_config(self, user: str, group: str) -> Path:
        template = _CONFIG_24 if dovecot_version() >= (2, 4) else _CONFIG_23
        for sub in ("run", "run/state", "mail"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "dovecot.conf"
        conf.write_text(
            template.substitute(
                root=self.data_dir,
                port=self.port,
                user=user,
                group=group,
                instance=f"gwtest-{self.port}",
                ssl=self._ssl_settings(),
                imaps_port=self.tls_port,
            )
        )
        # `{PLAIN}` is Dovecot's password-scheme prefix.
        (self.data_dir / "passwd").write_text(
            "".join(f"{name}:{{PLAIN}}{password}\n" for name, password in self.users.items())
        )
        for name in self.users:
            (self.data_dir / "mail" / name).mkdir(exist_ok=True)
        if os.geteuid() == 0:
            uid, gid = pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid
            for path in [self.data_dir, *self.data_dir.rglob("*")]:
                os.chown(path, uid, gid)
        return conf

    def _ssl_settings(self) -> str:
        if not self.tls:
            return "ssl = no"
        for src, name in zip(self.tls, ("tls-cert.pem", "tls-key.pem"), strict=True):
            (self.data_dir / name).write_bytes(Path(src).read_bytes())
        cert, key = self.data_dir / "tls-cert.pem", self.data_dir / "tls-key.pem"
        if dovecot_version() >= (2, 4):  # per the upgrade guide; untested (Debian 12: 2.3)
            return f"ssl = yes\nssl_server_cert_file = {cert}\nssl_server_key_file = {key}"
        return f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}"

    def _wait_for_greeting(self, timeout: float) -> None:
        # imap-login greets only once auth is up; a listening port alone is not "ready".
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            greeting = sock.makefile("rb").readline()
        if not greeting.startswith(b"* OK"):
            raise OSError(f"unexpected IMAP greeting {greeting!r}")

    def _log_tail(self) -> str:
        parts = []
        for log in (self.log_path, self.data_dir / "dovecot.stdout"):
            if log.exists():
                lines = log.read_text(errors="replace").splitlines()[-20:]
                parts.append(f"--- {log} ---\n" + "\n".join(lines))
        return "\n".join(parts) or "(Dovecot wrote no log)"
