#!/usr/bin/python3
"""How fast the Python client charges (issue 16, section 4): N concurrent single charges over
one auto-batching AsyncClient, against the same charges sent as one HTTP request each
(the blocking Client from T threads). A benchmark, not a test.

    /usr/bin/python3 clients/python/bench.py --server build-rel/genledger     # starts one
    /usr/bin/python3 clients/python/bench.py --url http://127.0.0.1:8080 --token T

With --server, the server runs on an ephemeral port with a fresh data directory and its
default durability (--sync group: every answer after fdatasync).
"""

import argparse
import asyncio
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import genledger  # noqa: E402


def start_server(binary, threads, extra):
    data = tempfile.mkdtemp(prefix="genledger-bench-")
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--data-dir", data,
                             "--threads", str(threads), "--log-level", "warn"] + extra,
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    port = int(line.split("listening on ")[1].split(",")[0].rsplit(":", 1)[1])
    return proc, data, "http://127.0.0.1:%d" % port


def setup(url, token, workspaces):
    with genledger.Client(url, token) as c:
        names = ["bench-%d" % i for i in range(workspaces)]
        for n in names:
            c.put_workspace(n, limit=None)
    return names


async def run_async(url, token, names, users, total, concurrency):
    per = total // concurrency
    async with genledger.AsyncClient(url, token, timeout=60) as gl:
        await gl.charge(names[0], "warm", "gpt-4o", quantity=1)  # connect outside the timing

        async def worker(w):
            for i in range(per):
                k = w * per + i
                await gl.charge(names[k % len(names)], "u%d" % (k % users), "gpt-4o", quantity=1)
        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        return per * concurrency, dt, cpu, gl.frames_sent - 1


def run_http(url, token, names, users, total, threads):
    per = total // threads
    client = genledger.Client(url, token, timeout=60, pool_size=threads)
    client.charge(names[0], "warm", "gpt-4o", quantity=1)
    barrier = threading.Barrier(threads + 1)

    def worker(w):
        barrier.wait()
        for i in range(per):
            k = w * per + i
            client.charge(names[k % len(names)], "u%d" % (k % users), "gpt-4o", quantity=1)
    ts = [threading.Thread(target=worker, args=(w,)) for w in range(threads)]
    for t in ts:
        t.start()
    barrier.wait()
    t0, c0 = time.perf_counter(), time.process_time()
    for t in ts:
        t.join()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    client.close()
    return per * threads, dt, cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url")
    ap.add_argument("--token", default=os.environ.get("GENLEDGER_TOKEN"))
    ap.add_argument("--server", help="start this genledger binary for the run")
    ap.add_argument("--server-threads", type=int, default=2)
    ap.add_argument("--server-arg", action="append", default=[],
                    help="extra flag for the started server (repeatable), e.g. --server-arg=--sync=none")
    ap.add_argument("--charges", type=int, default=200_000, help="async charges per run")
    ap.add_argument("--concurrency", type=int, default=5000, help="concurrent async calls")
    ap.add_argument("--http-charges", type=int, default=20_000)
    ap.add_argument("--http-threads", type=int, default=16)
    ap.add_argument("--workspaces", type=int, default=1000)
    ap.add_argument("--users", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    proc = data = None
    url = a.url
    if a.server:
        proc, data, url = start_server(a.server, a.server_threads, a.server_arg)
    elif not url:
        ap.error("--url or --server is needed")
    try:
        names = setup(url, a.token, a.workspaces)
        print("python %s, genledger at %s, %d workspaces x %d users, gpt-4o quantity 1"
              % (sys.version.split()[0], url, a.workspaces, a.users))
        best_async = best_http = 0
        for run in range(a.runs):
            n, dt, cpu, frames = asyncio.run(run_async(url, a.token, names, a.users,
                                                       a.charges, a.concurrency))
            rate = n / dt
            best_async = max(best_async, rate)
            print("async  run %d: %d charges, %d concurrent, one WebSocket: %.2f s, %.0f/s, "
                  "client CPU %.1f us/charge (%d frames, %.0f ops/frame)"
                  % (run + 1, n, a.concurrency, dt, rate, cpu / n * 1e6, frames,
                     n / max(frames, 1)))
            n, dt, cpu = run_http(url, a.token, names, a.users, a.http_charges, a.http_threads)
            rate = n / dt
            best_http = max(best_http, rate)
            print("http   run %d: %d charges, %d threads, one request each: %.2f s, %.0f/s, "
                  "client CPU %.1f us/charge" % (run + 1, n, a.http_threads, dt, rate,
                                                 cpu / n * 1e6))
        print("best: async %.0f/s, http %.0f/s, ratio %.1fx" % (best_async, best_http,
                                                               best_async / best_http))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
