"""A thread-safe pool of keep-alive HTTP/1.1 connections (standard library only).

One pool per Client. A request takes an idle connection (or opens one), sends, reads the whole
answer and gives the connection back unless the server asked to close it. The transport only
classifies failures; what to retry is the client's decision:

- ConnectFailed: no connection could be made: the request was certainly not sent.
- Broken: the connection failed after the request may have been sent (reset, timeout, EOF):
  the outcome is unknown.
"""

import http.client
import socket
import threading
import time
import urllib.parse


class TransportError(Exception):
    """Base of the two failures below; ``cause`` is the original exception."""

    def __init__(self, message, cause=None):
        super().__init__(message)
        self.cause = cause


class ConnectFailed(TransportError):
    pass


class Broken(TransportError):
    pass


# A pooled connection idle longer than this is closed rather than reused: the server drops
# keep-alive connections after --idle-timeout-ms (60 s by default), and a request sent on a
# connection the server is closing fails with an unknown outcome.
MAX_IDLE_SECONDS = 20.0


def parse_url(url):
    """(scheme, host, port, base_path) of ``http://host:port[/prefix]``."""
    u = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
    if u.scheme not in ("http", "https"):
        raise ValueError("genledger URL must be http:// or https://, not %r" % url)
    port = u.port or (443 if u.scheme == "https" else 80)
    return u.scheme, u.hostname or "127.0.0.1", port, u.path.rstrip("/")


class Pool:
    def __init__(self, url, token=None, timeout=5.0, max_idle=32, ssl_context=None):
        self.scheme, self.host, self.port, self.base = parse_url(url)
        self.timeout = timeout
        self.max_idle = max_idle
        self.ssl_context = ssl_context
        self._idle = []  # (connection, last used), most recent last
        self._lock = threading.Lock()
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            self._headers["Authorization"] = "Bearer " + token

    def _new(self):
        if self.scheme == "https":
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                               context=self.ssl_context)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as e:
            conn.close()
            raise ConnectFailed("cannot connect to %s:%d: %s" % (self.host, self.port, e), e) from e
        return conn

    def _take(self):
        now = time.monotonic()
        with self._lock:
            while self._idle:
                conn, used = self._idle.pop()
                if now - used < MAX_IDLE_SECONDS:
                    return conn
                conn.close()
        return self._new()

    def _give_back(self, conn):
        with self._lock:
            if len(self._idle) < self.max_idle:
                self._idle.append((conn, time.monotonic()))
                return
        conn.close()

    def request(self, method, path, body=None, accept=None):
        """Sends one request; returns (status, content type, body bytes). Raises ConnectFailed
        or Broken. Nothing is retried here: even a reused connection found closed may have
        carried the request to a server that then died, so only the caller knows whether
        sending it again is safe.
        """
        headers = self._headers
        if accept:
            headers = dict(headers, Accept=accept)
        payload = body.encode() if isinstance(body, str) else body
        conn = self._take()
        try:
            conn.request(method, self.base + path, body=payload, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise Broken("request to %s:%d failed: %s" % (self.host, self.port,
                                                         str(e) or type(e).__name__), e) from e
        if resp.will_close:
            conn.close()
        else:
            self._give_back(conn)
        return resp.status, resp.getheader("Content-Type", ""), data

    def close(self):
        with self._lock:
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.close()
