"""A private Postfix (the Debian package) for what an aiosmtpd sink cannot show:
STARTTLS and implicit TLS with a certificate from a private CA, a real 550
for an unknown user, SMTPUTF8 as a real MTA does it.

One instance per use, in its own config_directory under /tmp (readable by
the postfix user), listening on two free 127.0.0.1 ports: `port` (plain,
STARTTLS offered) and `tls_port` (implicit TLS). Mail for example.com and
payshift.test is delivered to one Maildir, except local parts starting
with `unknown-`, which Postfix refuses: 550 5.1.1 User unknown.

Installs postfix with apt-get when it is missing (CI is a fresh machine);
needs root for that and to run master.
"""

import email
import email.policy
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from core.testing import free_port

POSTFIX_DIRS = ("/usr/sbin/postfix", "/usr/lib/postfix/sbin/master")
DOMAINS = ("example.com", "payshift.test")

MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
127.0.0.1:{tls_port} inet n - n - - smtpd
  -o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
virtual   unix  - n n - - virtual
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
tlsmgr    unix  - - n 1000? 1 tlsmgr
showq     unix  n - n - - showq
postlog   unix-dgram n - n - 1 postlogd
"""


def ensure_postfix() -> None:
    """apt-get install postfix (no system configuration) where it is missing."""
    if all(Path(p).exists() for p in POSTFIX_DIRS):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(
        ["debconf-set-selections"],
        input="postfix postfix/main_mailer_type select No configuration\n",
        text=True, env=env, check=True,
    )  # fmt: skip
    subprocess.run(["apt-get", "update", "-q"], env=env, check=True, capture_output=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "postfix"], env=env, check=True, capture_output=True
    )


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Postfix:
    def __init__(self, *, hostname: str = "mta.payshift.test") -> None:
        self.port = free_port()
        self.tls_port = free_port()
        self.hostname = hostname
        self.dir = Path(tempfile.mkdtemp(prefix="payshift-postfix-"))
        os.chmod(self.dir, 0o755)  # noqa: S103 (the postfix user reads its config here)
        self.etc = self.dir / "etc"
        self.maildir = self.dir / "mail" / "all" / "new"

    @property
    def ca_file(self) -> str:
        """The certificate the server presents (self-signed: it is its own CA)."""
        return str(self.etc / "cert.pem")

    def _write_config(self) -> None:
        d = self.dir
        for sub in ("etc", "spool", "data", "mail"):
            (d / sub).mkdir(exist_ok=True)
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-keyout", str(self.etc / "key.pem"), "-out", self.ca_file],
            check=True, capture_output=True,
        )  # fmt: skip
        domains = "|".join(x.replace(".", r"\.") for x in DOMAINS)
        (self.etc / "mailboxes").write_text(f"if /@({domains})$/\n!/^unknown-/ all/\nendif\n")
        uid = int(subprocess.run(["id", "-u", "postfix"], capture_output=True, text=True).stdout)
        gid = int(subprocess.run(["id", "-g", "postfix"], capture_output=True, text=True).stdout)
        main = {
            "compatibility_level": "3.6",
            "queue_directory": d / "spool",
            "data_directory": d / "data",
            "meta_directory": "/etc/postfix",
            "command_directory": "/usr/sbin",
            "daemon_directory": "/usr/lib/postfix/sbin",
            "shlib_directory": "no",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": self.hostname,
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "alias_maps": "",
            "alias_database": "",
            "smtputf8_enable": "yes",
            "virtual_mailbox_domains": " ".join(DOMAINS),
            "virtual_mailbox_base": d / "mail",
            "virtual_mailbox_maps": f"regexp:{self.etc / 'mailboxes'}",
            "virtual_uid_maps": f"static:{uid}",
            "virtual_gid_maps": f"static:{gid}",
            "maillog_file": d / "maillog",
            "maillog_file_prefixes": d,
            "smtpd_tls_cert_file": self.ca_file,
            "smtpd_tls_key_file": self.etc / "key.pem",
            "smtpd_tls_security_level": "may",
            "smtpd_tls_received_header": "yes",
            "smtpd_client_connection_rate_limit": "0",
            "smtpd_client_message_rate_limit": "0",
            "default_process_limit": "200",
        }
        (self.etc / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
        (self.etc / "master.cf").write_text(
            MASTER_CF.format(port=self.port, tls_port=self.tls_port)
        )
        shutil.chown(d / "mail", uid, gid)
        shutil.chown(d / "data", uid, gid)

    def _postfix(self, command: str) -> subprocess.CompletedProcess:
        # script(1): postfix reports its errors only to a terminal or syslog.
        return subprocess.run(
            ["script", "-qec", f"postfix -c {self.etc} {command}", "/dev/null"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    def start(self) -> "Postfix":
        ensure_postfix()
        self._write_config()
        result = self._postfix("start")
        deadline = time.monotonic() + 20
        while not (_listening(self.port) and _listening(self.tls_port)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"postfix did not start: {result.stdout}\n{self.log()}")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        self._postfix("stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Postfix":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log(self) -> str:
        path = self.dir / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def deliveries(self) -> list[dict]:
        """Each delivered message: to (Delivered-To), subject, body, received_at, headers."""
        out = []
        if not self.maildir.exists():
            return out
        for path in sorted(self.maildir.iterdir()):
            try:
                raw = path.read_bytes()
                received_at = path.stat().st_mtime
            except FileNotFoundError:
                continue
            message = email.message_from_bytes(raw, policy=email.policy.default)
            body = message.get_body(preferencelist=("plain",))
            out.append(
                {
                    "to": str(message["Delivered-To"]).lower(),
                    "subject": str(message["Subject"]),
                    "body": body.get_content() if body is not None else "",
                    "received": [str(h) for h in message.get_all("Received", [])],
                    "message_id": str(message["Message-ID"]),
                    "received_at": received_at,
                }
            )
        return out

    def wait_for(self, address: str, count: int = 1, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.deliveries() if m["to"] == address.lower()]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.1)
