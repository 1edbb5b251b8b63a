"""Fixtures: a real genledger server (GENLEDGER_BIN, default build/genledger of the repo),
started once per test session on an ephemeral port with a temporary data directory and three
tokens (admin, gate, read); helpers to probe which routes it serves."""

import http.client
import json
import os
import pathlib
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import pytest

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[2]

try:
    import genledger  # an installed copy (tools/test.sh installs one) wins
except ImportError:
    sys.path.insert(0, str(HERE.parent))
    import genledger  # noqa: E402


class Server:
    def __init__(self, proc, port, tokens, data_dir):
        self.proc = proc
        self.port = port
        self.url = "http://127.0.0.1:%d" % port
        self.admin, self.gate, self.read = tokens
        self.data_dir = data_dir

    def raw(self, method, path, body=None, token=None):
        """(status, parsed body) of one request, outside the client under test."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            headers = {"Authorization": "Bearer " + (token or self.admin)}
            conn.request(method, path, body=None if body is None else json.dumps(body),
                         headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            ctype = resp.getheader("Content-Type", "")
        finally:
            conn.close()
        return resp.status, (json.loads(data) if data and "json" in ctype else data)

    def serves(self, method, path):
        """False when the server answers 404 not_found or 405 for the route: it does not
        have it yet (issue 15's routes land on other branches)."""
        status, body = self.raw(method, path)
        if status == 405:
            return False
        return not (status == 404 and isinstance(body, dict)
                    and body.get("error", {}).get("code") == "not_found")


def _start_server():
    binary = pathlib.Path(os.environ.get("GENLEDGER_BIN", REPO / "build" / "genledger"))
    if not binary.is_absolute():
        binary = REPO / binary
    if not binary.exists():
        pytest.exit("genledger server binary not found at %s (build it, or set GENLEDGER_BIN)"
                    % binary, returncode=3)
    data_dir = tempfile.mkdtemp(prefix="genledger-pytest-")
    tokens = tuple(secrets.token_hex(16) for _ in range(3))
    env = dict(os.environ, GENLEDGER_ADMIN_TOKEN=tokens[0], GENLEDGER_GATE_TOKEN=tokens[1],
               GENLEDGER_READ_TOKEN=tokens[2])
    env.pop("GLIBC_TUNABLES", None)
    proc = subprocess.Popen(
        [str(binary), "--listen", "127.0.0.1:0", "--data-dir", data_dir, "--threads", "2",
         "--log-level", "warn"],
        stdout=subprocess.PIPE, stderr=sys.stderr, env=env, text=True)
    line = proc.stdout.readline()  # "genledger X listening on 127.0.0.1:PORT, ..."
    if "listening on" not in line:
        proc.kill()
        pytest.exit("genledger did not start: %r" % line, returncode=3)
    port = int(line.split("listening on ")[1].split(",")[0].rsplit(":", 1)[1])
    server = Server(proc, port, tokens, data_dir)
    for _ in range(600):  # wait for /healthz (start-up is normally instant)
        try:
            if server.raw("GET", "/healthz")[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.05)
    proc.kill()
    pytest.exit("genledger /healthz never answered 200", returncode=3)


@pytest.fixture(scope="session")
def server():
    s = _start_server()
    yield s
    s.proc.terminate()
    try:
        s.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        s.proc.kill()


@pytest.fixture
def client(server):
    c = genledger.Client(server.url, token=server.admin, timeout=30)
    yield c
    c.close()


@pytest.fixture
def ws(client):
    """A fresh workspace with 1,000 generations."""
    name = "t-" + uuid.uuid4().hex[:12]
    client.put_workspace(name, limit=1000)
    return name


@pytest.fixture
def dead_url():
    """A URL where nothing listens: connections are refused."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return "http://127.0.0.1:%d" % port


@pytest.fixture
def silent_url():
    """A URL that accepts connections (the kernel's backlog) and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    yield "http://127.0.0.1:%d" % s.getsockname()[1]
    s.close()


class Proxy:
    """A TCP proxy in front of the server, for failures a real network has:

    - ``answer_503 = n``: the next n HTTP requests get ``503 overloaded`` without reaching
      the server;
    - ``drop_replies = n``: the next n HTTP requests reach the server, and the connection is
      closed instead of passing the answer on (the outcome is unknown to the client);
    - ``hold = True`` (WebSocket mode): bytes from the server are swallowed; ``cut()`` closes
      every open connection.
    """

    def __init__(self, port, http_mode=True):
        self.upstream = port
        self.http_mode = http_mode
        self.answer_503 = 0
        self.drop_replies = 0
        self.forwarded = 0
        self.hold = False
        self.accepted = 0
        self._conns = []
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.url = "http://127.0.0.1:%d" % self._sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self._sock.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.upstream))
            with self._lock:
                self.accepted += 1
                self._conns += [c, u]
            if self.http_mode:
                threading.Thread(target=self._http, args=(c, u), daemon=True).start()
            else:
                threading.Thread(target=self._pipe, args=(c, u, False), daemon=True).start()
                threading.Thread(target=self._pipe, args=(u, c, True), daemon=True).start()

    def _pipe(self, src, dst, from_server):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not (from_server and self.hold):
                    dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            _close(s)

    @staticmethod
    def _read_message(sock, buf):
        while b"\r\n\r\n" not in buf:
            data = sock.recv(65536)
            if not data:
                return None, buf
            buf += data
        head, rest = buf.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v.strip())
        while len(rest) < length:
            data = sock.recv(65536)
            if not data:
                return None, buf
            rest += data
        return head + b"\r\n\r\n" + rest[:length], rest[length:]

    def _http(self, c, u):
        cbuf = ubuf = b""
        try:
            while True:
                req, cbuf = self._read_message(c, cbuf)
                if req is None:
                    break
                if self.answer_503 > 0:
                    self.answer_503 -= 1
                    body = b'{"error":{"code":"overloaded","message":"proxy says no"}}'
                    c.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json"
                              b"\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                    continue
                u.sendall(req)
                resp, ubuf = self._read_message(u, ubuf)
                if resp is None:
                    break
                self.forwarded += 1
                if self.drop_replies > 0:
                    self.drop_replies -= 1
                    break
                c.sendall(resp)
        except OSError:
            pass
        _close(c)
        _close(u)

    def cut(self):
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            _close(s)

    def close(self):
        _close(self._sock)
        self.cut()


def _close(s):
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


@pytest.fixture
def proxy(server):
    p = Proxy(server.port)
    yield p
    p.close()


@pytest.fixture
def ws_proxy(server):
    p = Proxy(server.port, http_mode=False)
    yield p
    p.close()


def wait_until(predicate, what, attempts=600):
    """Polls ``predicate`` (no timing is asserted: it only bounds a hang)."""
    for _ in range(attempts):
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("never happened: " + what)


def pytest_report_header(config):
    return "genledger client under test: %s" % os.path.dirname(genledger.__file__)
