"""A real ``docker-registry`` (distribution 2.8) and small HTTP servers for tests.

:class:`RegistryProcess` runs ``/usr/bin/docker-registry serve config.yml`` on
127.0.0.1 with its own storage directory, optionally behind htpasswd or token
auth. :class:`TokenServer` issues the RS256 JWTs distribution's ``token`` auth
verifies (``x5c`` header chaining to ``rootcertbundle``). :class:`FakeServer`
answers from a handler function, for registries that lie, throttle or 404.
Everything binds 127.0.0.1 and is stopped by ``close()``.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import json
import secrets
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

REGISTRY_BIN = Path("/usr/bin/docker-registry")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class RegistryProcess:
    """One ``docker-registry`` on ``127.0.0.1:<port>``; ``host`` is ``127.0.0.1:<port>``."""

    def __init__(
        self,
        base: Path,
        auth: dict[str, Any] | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.base = base
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log = base / "registry.log"
        auth_yaml = ""
        if auth:
            auth_yaml = "auth:\n" + "".join(
                f"  {kind}:\n" + "".join(f"    {k}: {v}\n" for k, v in opts.items())
                for kind, opts in auth.items()
            )
        (base / "config.yml").write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {base / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n  secret: {secrets.token_hex(8)}\n"
            + (f"  tls:\n    certificate: {tls[0]}\n    key: {tls[1]}\n" if tls else "")
            + auth_yaml
        )
        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen(
            [str(REGISTRY_BIN), "serve", str(base / "config.yml")],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.close()
        raise RuntimeError("docker-registry did not start listening in 15 s")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()
        shutil.rmtree(self.base / "data", ignore_errors=True)


def make_tls(base: Path, hostname: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """A CA and a server certificate for ``hostname`` (an IP SAN): ``(ca, cert, key)`` PEMs."""
    import ipaddress

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = datetime.datetime.now(datetime.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("pycontainerd test CA"))
        .issuer_name(name("pycontainerd test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name(hostname))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(hostname))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (base / "ca.pem", base / "server.pem", base / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return paths


def htpasswd_line(user: str, password: str) -> str:
    """An htpasswd entry with a bcrypt hash (what distribution's htpasswd auth accepts)."""
    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}\n"


Handler = Callable[[http.server.BaseHTTPRequestHandler, str, str], None]
"""``(request, method, path-with-query)``: write the whole response."""


class FakeServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 answering from ``handler``.

    ``requests`` records ``(method, path, headers)`` of everything received.
    """

    def __init__(self, handler: Handler) -> None:
        server = self
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.peers: set[tuple[str, int]] = set()
        """Client addresses seen: one per TCP connection (keep-alive reuses them)."""

        class _Request(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                server.requests.append((self.command, self.path, dict(self.headers.items())))
                server.peers.add(self.client_address)
                handler(self, self.command, self.path)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _handle

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Request)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


def reply(
    request: http.server.BaseHTTPRequestHandler,
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    content_length: int | None = None,
) -> None:
    """Write one response; ``content_length`` may lie about ``body``."""
    request.send_response(status)
    for name, value in (headers or {}).items():
        request.send_header(name, value)
    request.send_header(
        "Content-Length", str(len(body) if content_length is None else content_length)
    )
    request.end_headers()
    if request.command != "HEAD":
        request.wfile.write(body)


class TokenServer:
    """A token issuer for distribution's ``auth: token`` (RS256, ``x5c`` header).

    Accepts ``POST`` (``grant_type=password``) and ``GET`` with Basic
    credentials; grants every requested action to ``user``/``password``;
    anonymous requests are refused. ``grants`` records ``(method, grant_type, scopes)``.
    """

    def __init__(self, base: Path, user: str, password: str, *, expires_in: int = 300) -> None:
        self.service = "pycontainerd-test-registry"
        self.issuer = "pycontainerd-test-issuer"
        self.user, self.password, self.expires_in = user, password, expires_in
        self.grants: list[tuple[str, str, list[str]]] = []
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pycontainerd token signer")])
        now = datetime.datetime.now(datetime.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_path = base / "token-root.pem"
        self.cert_path.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self.server = FakeServer(self._handle)
        self.realm = f"http://{self.server.host}/token"

    def registry_auth(self) -> dict[str, Any]:
        """The ``auth:`` section for :class:`RegistryProcess`."""
        return {
            "token": {
                "realm": self.realm,
                "service": self.service,
                "issuer": self.issuer,
                "rootcertbundle": str(self.cert_path),
            }
        }

    def _token(self, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        cert_der = self._cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(cert_der).decode()]}
        claims = {
            "iss": self.issuer,
            "sub": self.user,
            "aud": self.service,
            "exp": now + self.expires_in,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def _handle(self, request: http.server.BaseHTTPRequestHandler, method: str, path: str) -> None:
        url = urllib.parse.urlsplit(path)
        if url.path != "/token":
            reply(request, 404)
            return
        if method == "POST":
            length = int(request.headers.get("Content-Length", "0"))
            form = urllib.parse.parse_qs(request.rfile.read(length).decode())
            grant = form.get("grant_type", [""])[0]
            scopes = form.get("scope", [""])[0].split()
            ok = grant == "password" and (
                form.get("username", [""])[0] == self.user
                and form.get("password", [""])[0] == self.password
            )
        else:
            query = urllib.parse.parse_qs(url.query)
            grant = "basic" if request.headers.get("Authorization") else "anonymous"
            scopes = query.get("scope", [])
            expected = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            ok = request.headers.get("Authorization", "") == f"Basic {expected}"
        self.grants.append((method, grant, scopes))
        if not ok:
            reply(request, 401, b'{"details":"bad credentials"}')
            return
        body = json.dumps({"token": self._token(scopes), "expires_in": self.expires_in})
        reply(request, 200, body.encode(), {"Content-Type": "application/json"})

    def close(self) -> None:
        self.server.close()


def fetch_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())
