#!/usr/bin/env python3
"""Opens N live-stream subscribers to a running genledger and keeps them reading.

Used to measure the gate's latency with 1,000 subscribers connected (bench/RESULTS.md,
"Live streams"): run genledger-load against the same server while this runs. Subscribers are
Server-Sent Events streams (GET /v1/workspaces/{ws}/events) spread round-robin over the
workspaces PREFIX0..PREFIX{W-1} (genledger-load's default names), each read to the end and
discarded, so every subscriber is a live reader that takes every record the server sends.

  stream_subscribers.py --port 8080 --subscribers 1000 --workspaces 16 --seconds 30

Prints, at the end, how many streams began and how many records they received. Exit 1 when a
stream could not begin (an HTTP error) or ended before --seconds.
"""
import argparse
import selectors
import socket
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--workspaces", type=int, default=16)
    ap.add_argument("--prefix", default="load-ws-")
    ap.add_argument("--token", default="")
    ap.add_argument("--seconds", type=float, default=30)
    a = ap.parse_args()

    sel = selectors.DefaultSelector()
    state = {}
    for i in range(a.subscribers):
        s = socket.create_connection((a.host, a.port))
        ws = f"{a.prefix}{i % a.workspaces}"
        req = f"GET /v1/workspaces/{ws}/events HTTP/1.1\r\nHost: {a.host}\r\n"
        if a.token:
            req += f"Authorization: Bearer {a.token}\r\n"
        s.sendall((req + "\r\n").encode())
        s.setblocking(False)
        state[s] = {"head": b"", "began": False, "records": 0}
        sel.register(s, selectors.EVENT_READ)

    deadline = time.monotonic() + a.seconds
    ended = 0
    while time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            st = state[s]
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            if not data:
                sel.unregister(s)
                ended += 1
                continue
            if not st["began"]:
                st["head"] += data
                if b"\r\n\r\n" in st["head"]:
                    if not st["head"].startswith(b"HTTP/1.1 200"):
                        print("refused:", st["head"].split(b"\r\n")[0].decode(), file=sys.stderr)
                        sel.unregister(s)
                        ended += 1
                        continue
                    st["began"] = True
                    data = st["head"].split(b"\r\n\r\n", 1)[1]
            st["records"] += data.count(b"\nevent: ") + data.startswith(b"event: ")
    began = sum(1 for st in state.values() if st["began"])
    records = sum(st["records"] for st in state.values())
    print(f"subscribers {a.subscribers} began {began} ended_early {ended} records {records}")
    return 0 if began == a.subscribers and ended == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
