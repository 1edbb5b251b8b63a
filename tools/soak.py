#!/usr/bin/python3
"""kill -9 soak of the real genledger server (docs/testing.md, "kill -9 soak").

Runs the server binary on a private data directory under mixed HTTP (single ops and /v1/batch)
and WebSocket load, kills it with SIGKILL at random moments (mostly mid-load, sometimes during
recovery), restarts it on the same directory, and retries every op that got no answer with the
same body (and the same idempotency id). At the end it checks, against a model built only from
answers the server gave:

  * every workspace's and user's `used` equals the acknowledged charges and commits minus the
    acknowledged refunds, and nothing is left reserved (every hold was settled);
  * every acknowledged charge/reserve id, sent once more, is a replay of the same result;
  * every acknowledged cost equals the catalog price of what was asked;
  * the server never died by itself, never answered a 5xx other than 503, never left a live
    request unanswered, and shuts down and inspects clean at the end.

The reference model (what is expected) is tools/soak_model.py; this file drives the server.
Python with the standard library plus Debian's python3-websockets: the soak drives the server
from outside like a real client, and a separate implementation of the client side does not share
the server's (or genledger-load's) parsing bugs. Exits 0 on success, 1 on a violation (the seed
to replay is printed), 2 on a usage/setup error or when the time limit stopped it early.
"""

import argparse
import asyncio
import ctypes
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

try:
    import websockets
except ImportError:  # pragma: no cover - environment check
    sys.exit("soak: python3-websockets is missing (tools/setup.sh installs it)")

sys.dont_write_bytecode = True   # no __pycache__ in tools/
from soak_model import WORKSPACES, USERS, Model, Violation  # noqa: E402

REQUEST_TIMEOUT_S = 30       # a live server that does not answer in this time is a violation


def die_with_parent():
    """In the server child: SIGKILL it if the soak itself dies (even by SIGKILL)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Soak(Model):
    """Drives the server: workers per transport, the kill/restart cycles, the final check."""

    def __init__(self, args):
        super().__init__(args.seed)
        self.a = args
        self.inflight = 0
        self.sent_this_cycle = 0
        self.cycle_target = 0
        self.long_cycle = False   # this cycle outlives a snapshot interval (load trickles on)
        self.target_reached = asyncio.Event()
        self.up = asyncio.Event()
        self.stop = False
        self.port = 0
        self.gen = 0              # server starts so far: a connection to an older one is dead
        self.proc = None

    # ------------------------------------------------------------------ transports

    async def http(self, conn, method, path, body):
        """One request on a keep-alive connection (reader, writer); returns (status, json)."""
        reader, writer = conn
        data = b"" if body is None else json.dumps(body).encode()
        head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" \
               "Content-Length: %d\r\n\r\n" % (method, path, len(data))
        writer.write(head.encode() + data)
        await writer.drain()
        status_line = await reader.readuntil(b"\r\n")
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        payload = await reader.readexactly(length) if length else b""
        return status, (json.loads(payload) if payload else {})

    async def open_http(self):
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def worker(self, transport):
        conn = None
        ws = None
        conn_gen = 0
        while not self.stop:
            await self.up.wait()
            if self.stop:
                break
            if conn_gen != self.gen:
                conn, ws = await self.drop(conn, ws)
                conn_gen = self.gen
            if self.long_cycle and self.sent_this_cycle >= self.cycle_target:
                await asyncio.sleep(0.05)   # a trickle, so a long cycle stays a few hundred ops
                if not self.up.is_set():
                    continue
            if transport == "ws":
                n = self.rng.randint(1, 20)
            elif transport == "batch":
                n = self.rng.randint(1, 10)
            else:
                n = 1
            ops = self.take(n)
            if not ops:
                await asyncio.sleep(0.005)
                continue
            for op in ops:
                op.attempts += 1
                if op.attempts > 1:
                    self.stats["retries"] += 1
                    if self.a.test_fresh_retry_ids and "id" in op.body:
                        # Test hook: a client that forgets its ids (the check must catch it).
                        self.next_id += 1
                        op.body["id"] = "soak-%d-%d" % (self.seed, self.next_id)
            self.inflight += 1
            self.sent_this_cycle += len(ops)
            if self.sent_this_cycle >= self.cycle_target:
                self.target_reached.set()
            port, gen = self.port, self.gen
            try:
                if transport == "ws":
                    if ws is None:
                        ws = await websockets.connect("ws://127.0.0.1:%d/v1/ws" % port,
                                                      compression=None, max_size=1 << 24,
                                                      ping_interval=None, open_timeout=REQUEST_TIMEOUT_S)
                    frame = [dict(op.body, op=op.kind, seq=i) for i, op in enumerate(ops)]
                    await ws.send(json.dumps(frame))
                    reply = json.loads(await asyncio.wait_for(ws.recv(), REQUEST_TIMEOUT_S))
                    results = [(r.get("status"), r) for r in reply]
                    for i, (st, r) in enumerate(results):
                        if r.get("seq") != i:
                            self.violate("WebSocket reply out of order: %r" % reply)
                else:
                    if conn is None:
                        conn = await asyncio.wait_for(self.open_http(), REQUEST_TIMEOUT_S)
                    if transport == "batch":
                        body = {"ops": [dict(op.body, op=op.kind, seq=i) for i, op in enumerate(ops)]}
                        st, reply = await asyncio.wait_for(self.http(conn, "POST", "/v1/batch", body),
                                                           REQUEST_TIMEOUT_S)
                        if st != 200:
                            if st == 503:
                                raise ConnectionError("503")
                            self.violate("batch answered %d %r" % (st, reply))
                        results = [(r.get("status"), r) for r in reply["results"]]
                    else:
                        st, reply = await asyncio.wait_for(
                            self.http(conn, "POST", "/v1/" + ops[0].kind, ops[0].body), REQUEST_TIMEOUT_S)
                        results = [(st, reply)]
                if len(results) != len(ops):
                    self.violate("%d results for %d ops" % (len(results), len(ops)))
                for op, (st, r) in zip(ops, results):
                    self.settle(op, st, r)
            except Violation:
                self.stop = True
                self.up.set()
                self.target_reached.set()
            except asyncio.TimeoutError:
                self.unanswered(ops)
                if self.up.is_set() and gen == self.gen and not self.stop:
                    self.violations.append("no answer within %ds from a live server (%s)" %
                                           (REQUEST_TIMEOUT_S, transport))
                    self.stop = True
                    self.up.set()
                    self.target_reached.set()
                conn, ws = await self.drop(conn, ws)
            except (OSError, EOFError, asyncio.IncompleteReadError, ConnectionError,
                    websockets.exceptions.WebSocketException):
                # The server died under us (or refused: it is down). Unknown outcome: retry.
                self.unanswered(ops)
                conn, ws = await self.drop(conn, ws)
                if self.up.is_set() and gen == self.gen:
                    await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                # A reply of the wrong shape from a live server (or a bug in the soak).
                self.violations.append("%s on %s: %s: %s" % (
                    transport, [op.kind for op in ops], type(e).__name__, e))
                self.stop = True
                self.up.set()
                self.target_reached.set()
            finally:
                self.inflight -= 1
        await self.drop(conn, ws)

    async def drop(self, conn, ws):
        if conn is not None:
            conn[1].close()
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(), 0.5)
            except Exception:
                pass
        return None, None

    # ------------------------------------------------------------------ the server process

    def server_args(self):
        # Default capacities: every acknowledged id and charge must still be known at the
        # final check, which the server promises within its global capacities (docs/ledger.md).
        return [self.a.binary, "--listen", "127.0.0.1:0", "--data-dir", self.data_dir,
                "--threads", "2", "--snapshot-interval", "1"] + self.a.server_arg

    async def start_server(self):
        self.proc = await asyncio.create_subprocess_exec(
            *self.server_args(), stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent)

    async def wait_started(self):
        """Reads the start line; the server listens only once recovery is done."""
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), 120)
        except asyncio.TimeoutError:
            self.violations.append("server did not finish recovery in 120 s; see " + self.log_path)
            raise Violation(self.violations[-1])
        text = line.decode(errors="replace")
        if " listening on " not in text:
            rc = await self.proc.wait()
            self.violations.append("server did not start (exit %s); see %s" % (rc, self.log_path))
            raise Violation(self.violations[-1])
        self.port = int(text.split(" listening on ")[1].split(",")[0].rsplit(":", 1)[1])
        self.gen += 1
        asyncio.ensure_future(self.proc.stdout.read())   # keep its stdout drained

    async def kill_server(self):
        if self.proc.returncode is not None:
            self.violations.append("server exited by itself with %s; see %s" %
                                   (self.proc.returncode, self.log_path))
            raise Violation(self.violations[-1])
        self.proc.send_signal(signal.SIGKILL)
        rc = await self.proc.wait()
        if rc != -signal.SIGKILL:
            self.violations.append("server exited with %s before the kill; see %s" % (rc, self.log_path))
            raise Violation(self.violations[-1])
        self.stats["kills"] += 1

    # ------------------------------------------------------------------ the run

    async def run(self):
        self.data_dir = os.path.join(self.tmp, "data")
        self.log_path = os.path.join(self.tmp, "server.log")
        self.log = open(self.log_path, "ab")
        workers = []
        try:
            await self.start_server()
            await self.wait_started()
            conn = await self.open_http()
            for w in range(WORKSPACES):
                st, r = await self.http(conn, "PUT", "/v1/workspaces/soak-w%d" % w, {"limit": 10 ** 15})
                if st != 200:
                    raise Violation("setup PUT answered %d %r" % (st, r))
            conn[1].close()
            transports = ["http", "http", "batch", "ws", "ws"]
            workers = [asyncio.ensure_future(self.worker(t)) for t in transports]
            deadline = time.monotonic() + self.a.max_seconds
            self.cycles_done = 0
            for cycle in range(self.a.cycles):
                if self.stop:
                    break
                if time.monotonic() > deadline:
                    self.timed_out = True
                    break
                if cycle > 0:
                    await self.start_server()
                    if self.rng.random() < 0.05:
                        # Kill during recovery (before the server listens), then start again.
                        await asyncio.sleep(self.rng.random() * 0.03)
                        if self.proc.returncode is None:
                            self.proc.send_signal(signal.SIGKILL)
                        await self.proc.wait()
                        self.stats["recovery_kills"] += 1
                        await self.start_server()
                    await self.wait_started()
                self.sent_this_cycle = 0
                self.cycle_target = self.rng.randint(1, self.a.max_ops_per_cycle)
                # One cycle in four lives 1-2.5 s, past the 1 s snapshot interval: without them
                # the server would never snapshot or trim its WAL, and no kill would cut a
                # snapshot or recover from one.
                self.long_cycle = self.rng.random() < 0.25
                self.target_reached.clear()
                self.up.set()
                started = time.monotonic()
                try:
                    await asyncio.wait_for(self.target_reached.wait(), 60)
                except asyncio.TimeoutError:
                    pass
                if self.long_cycle:
                    await asyncio.sleep(max(0.0, started + self.rng.uniform(1.0, 2.5) - time.monotonic()))
                else:
                    await asyncio.sleep(self.rng.random() * 0.005)
                self.up.clear()
                await self.kill_server()
                self.cycles_done += 1
                if self.a.progress and (cycle + 1) % self.a.progress == 0:
                    print("soak: cycle %d/%d, acknowledged %d, retries %d, pending %d" %
                          (cycle + 1, self.a.cycles, self.stats["acked"], self.stats["retries"],
                           len(self.retry)), file=sys.stderr, flush=True)
            if not self.stop:
                await self.finish(workers)
        finally:
            self.stop = True
            self.up.set()
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            if self.proc and self.proc.returncode is None:
                self.proc.send_signal(signal.SIGKILL)
                await self.proc.wait()
            self.log.close()

    async def finish(self, workers):
        """Last start: resend everything unanswered, settle every hold, then check."""
        await self.start_server()
        await self.wait_started()
        self.long_cycle = False
        self.final = True
        self.up.set()
        t0 = time.monotonic()
        while self.retry or self.to_settle or self.inflight:
            if self.stop:
                return
            if time.monotonic() - t0 > 120:
                self.violations.append("could not drain the retries in 120 s")
                return
            await asyncio.sleep(0.02)
        self.stop = True
        self.up.set()
        await asyncio.gather(*workers, return_exceptions=True)
        await self.check()
        if not self.violations:
            self.proc.send_signal(signal.SIGTERM)
            rc = await asyncio.wait_for(self.proc.wait(), 30)
            if rc != 0:
                self.violations.append("SIGTERM: server exited %s" % rc)
            inspect = subprocess.run([self.a.inspect, self.data_dir], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, timeout=300)
            if inspect.returncode != 0:
                self.violations.append("genledger-inspect exited %d: %s" %
                                       (inspect.returncode, inspect.stderr.decode()[-500:]))

    async def check(self):
        conn = await self.open_http()
        if self.a.test_extra_debit:
            key = ("soak-w0", "u0")
            self.used[key] = self.used.get(key, 0) + self.a.test_extra_debit
        by_ws = {}
        for (ws, user), v in self.used.items():
            by_ws[ws] = by_ws.get(ws, 0) + v
        for w in range(WORKSPACES):
            ws = "soak-w%d" % w
            st, r = await self.http(conn, "GET", "/v1/workspaces/" + ws, None)
            if st != 200:
                self.violations.append("GET %s answered %d" % (ws, st))
                continue
            if r["used"] != by_ws.get(ws, 0):
                self.violations.append("%s: used %d, acknowledged operations sum to %d (difference %+d)" %
                                       (ws, r["used"], by_ws.get(ws, 0), r["used"] - by_ws.get(ws, 0)))
            if r["reserved"] != 0:
                self.violations.append("%s: reserved %d after every hold was settled" % (ws, r["reserved"]))
            users, path = {}, "/v1/workspaces/%s/users" % ws
            while True:
                st, page = await self.http(conn, "GET", path, None)
                if st != 200:
                    self.violations.append("GET %s answered %d" % (path, st))
                    break
                for u in page["users"]:
                    users[u["user"]] = u["used"]
                cursor = page.get("next_cursor")
                if not cursor:
                    break
                path = "/v1/workspaces/%s/users?limit=1000&cursor=%s" % (ws, cursor)
            for u in range(USERS):
                want, got = self.used.get((ws, "u%d" % u), 0), users.get("u%d" % u, 0)
                if want != got:
                    self.violations.append("%s/u%d: used %d, acknowledged operations sum to %d" %
                                           (ws, u, got, want))
        conn[1].close()
        # Every acknowledged id once more: must be a replay of the very same result.
        ws = await websockets.connect("ws://127.0.0.1:%d/v1/ws" % self.port, compression=None,
                                      max_size=1 << 26, ping_interval=None)
        key = {"charge": "charge", "reserve": "reservation"}
        for i in range(0, len(self.acked_ids), 500):
            chunk = self.acked_ids[i:i + 500]
            await ws.send(json.dumps([dict(op.body, op=op.kind) for op in chunk]))
            reply = json.loads(await asyncio.wait_for(ws.recv(), REQUEST_TIMEOUT_S))
            for op, r in zip(chunk, reply):
                if r.get("status") != 200 or not r.get("replayed") or r.get(key[op.kind]) != op.result:
                    self.violations.append("id %s (acknowledged as %s) resent: %s" %
                                           (op.body["id"], op.result, json.dumps(r)))
                    if len(self.violations) > 20:
                        break
        await ws.close()


def main():
    p = argparse.ArgumentParser(description="kill -9 soak of the real genledger server")
    p.add_argument("--cycles", type=int, default=100, help="kill/restart cycles (default 100)")
    p.add_argument("--seed", type=int, default=None, help="seed (default: random; printed)")
    p.add_argument("--binary", required=True, help="the genledger executable")
    p.add_argument("--inspect", required=True, help="the genledger-inspect executable")
    p.add_argument("--max-ops-per-cycle", type=int, default=400,
                   help="each cycle kills after a random number of ops in 1..this (default 400)")
    p.add_argument("--max-seconds", type=float, default=7200,
                   help="stop starting new cycles after this long (default 7200; exit 2)")
    p.add_argument("--progress", type=int, default=0, help="a progress line every N cycles")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--server-arg", action="append", default=[],
                   help="an extra server flag, e.g. --server-arg=--sync=periodic (repeatable)")
    # Test hook (hidden): retry charges and reserves with a fresh id, as a careless client
    # would; an op applied before the kill is then applied twice and the check must fail.
    p.add_argument("--test-fresh-retry-ids", action="store_true", help=argparse.SUPPRESS)
    # Test hook (hidden): pretend soak-w0/u0 was acknowledged N more generations than it was
    # (the check must report the difference).
    p.add_argument("--test-extra-debit", type=int, default=0, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.cycles < 1 or a.max_ops_per_cycle < 1 or a.max_seconds <= 0:
        p.error("--cycles, --max-ops-per-cycle and --max-seconds must be positive")
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1 << 31)
    s = Soak(a)
    s.timed_out = False
    s.cycles_done = 0
    s.tmp = tempfile.mkdtemp(prefix="genledger-soak-")
    print("soak: seed %d, %d cycles, data in %s" % (a.seed, a.cycles, s.tmp), file=sys.stderr, flush=True)
    # SIGTERM/SIGINT stop the run through the normal clean-up path.
    def interrupted(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupted)
    t0 = time.monotonic()
    error = None
    try:
        asyncio.run(s.run())
    except Violation as e:
        if not s.violations:
            s.violations.append(str(e))
    except KeyboardInterrupt:
        error = "interrupted"
    except Exception as e:   # a bug in the soak itself, or a server that vanished
        error = "%s: %s" % (type(e).__name__, e)
    # Informational: how many starts recovered from a snapshot (from the server's start lines).
    try:
        with open(os.path.join(s.tmp, "server.log"), errors="replace") as f:
            from_snapshot = sum(1 for line in f if "recovered" in line and "from snapshot" in line)
    except OSError:
        from_snapshot = 0
    failed = bool(s.violations)
    result = "FAIL" if failed else ("ERROR " + error if error else
                                    ("TIME LIMIT" if s.timed_out else "PASS"))
    for v in s.violations[:20]:
        print("VIOLATION: " + v, file=sys.stderr)
    if len(s.violations) > 20:
        print("VIOLATION: ... and %d more" % (len(s.violations) - 20), file=sys.stderr)
    st = s.stats
    print("soak: seed %d cycles %d/%d (kills %d, during recovery %d) ops acknowledged %d "
          "retries %d (answered %d, of which already applied before the kill %d) unanswered %d "
          "refused_402 %d recoveries from a snapshot %d elapsed %.1fs result %s" %
          (a.seed, s.cycles_done, a.cycles, st["kills"], st["recovery_kills"], st["acked"],
           st["retries"], st["retried_acked"], st["replayed"], st["unanswered"], st["refused_402"],
           from_snapshot,
           time.monotonic() - t0, result), flush=True)
    if failed or error or s.timed_out:
        print("soak: replay with: tools/soak.sh --cycles %d --seed %d --keep" % (a.cycles, a.seed),
              file=sys.stderr)
    if failed or error:
        try:
            with open(os.path.join(s.tmp, "server.log"), errors="replace") as f:
                tail = f.readlines()[-10:]
            print("soak: the server log ends with:\n" + "".join(tail), file=sys.stderr, end="")
        except OSError:
            pass
    if a.keep:
        print("soak: data directory and server log kept in " + s.tmp, file=sys.stderr)
    else:
        shutil.rmtree(s.tmp, ignore_errors=True)
    return 1 if failed else (2 if error or s.timed_out else 0)


if __name__ == "__main__":
    sys.exit(main())
