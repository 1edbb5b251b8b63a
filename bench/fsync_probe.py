#!/usr/bin/env python3
"""What one small append + fdatasync costs on this disk, idle or with the CPUs busy.

The group-commit WAL's latency floor is this number, and its tail is this number's tail. On the
project's VM the tail depends on whether the vCPUs are busy (the completion wakes a thread that
must then get a CPU), which is why the server's p99 at a fixed rate is far above the idle disk's.

    bench/fsync_probe.py [--seconds 7] [--busy N] [--dir DIR]

--busy N runs N busy-loop processes meanwhile (N = core count reproduces a saturated machine).
Prints the count, p50/p90/p99/p99.9/max in microseconds, and the share of time spent in
fdatasyncs slower than 3 ms.
"""
import argparse
import multiprocessing
import os
import tempfile
import time


def spin(deadline):
    while time.time() < deadline:
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=7.0, help="how long to probe (default 7)")
    ap.add_argument("--busy", type=int, default=0, help="busy-loop processes to run meanwhile (default 0)")
    ap.add_argument("--dir", default=".", help="directory on the disk to probe (default: current)")
    ap.add_argument("--bytes", type=int, default=500, help="bytes appended before each fdatasync (default 500)")
    a = ap.parse_args()
    if a.seconds <= 0 or a.seconds > 600 or a.busy < 0 or a.busy > 256 or not 0 < a.bytes <= 1 << 20:
        ap.error("--seconds must be in (0, 600], --busy in [0, 256], --bytes in [1, 1048576]")

    deadline = time.time() + a.seconds
    spinners = [multiprocessing.Process(target=spin, args=(deadline + 0.5,)) for _ in range(a.busy)]
    for p in spinners:
        p.start()
    fd, path = tempfile.mkstemp(prefix="fsync-probe-", dir=a.dir)
    try:
        os.ftruncate(fd, 256 << 20)   # preallocated, as the WAL's segments are
        buf = b"x" * a.bytes
        lat, off = [], 0
        while time.time() < deadline and off + a.bytes <= 256 << 20:
            os.pwrite(fd, buf, off)
            off += a.bytes
            t = time.perf_counter()
            os.fdatasync(fd)
            lat.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        os.unlink(path)
        for p in spinners:
            p.join()

    lat.sort()
    n = len(lat)
    q = lambda p: lat[int(p * (n - 1))] * 1e6
    slow = sum(x for x in lat if x > 0.003)
    print(f"{n} fdatasyncs ({a.busy} busy processes): p50 {q(.5):.0f} p90 {q(.9):.0f} p99 {q(.99):.0f} "
          f"p99.9 {q(.999):.0f} max {q(1):.0f} us; time in fdatasyncs > 3 ms: {100 * slow / sum(lat):.1f}%")


if __name__ == "__main__":
    main()
