#!/usr/bin/python3
"""Rate limits measured from the other end: shoal held to 2 MiB/s, over 20 s.

Download: a libtorrent seed on 127.0.0.1 serves a payload to `shoal download
--download-limit RATE`; the seed's own upload counter (libtorrent's `all_time_upload`,
printed each second) gives the bytes shoal took between two instants WARMUP and
WARMUP + SPAN seconds after the first byte.

Upload: `shoal seed --upload-limit RATE` serves the same payload to a libtorrent
leecher; the leecher's progress gives what shoal sent over the same span.

Each line printed gives the measured rate and its ratio to the limit; unlimited, either
transfer takes well under a second on loopback, so the ratio is the limit's doing.

    /usr/bin/python3 benches/rate-limit/rate_limit.py            # 2 MiB/s over 20 s
    /usr/bin/python3 benches/rate-limit/rate_limit.py --rate 4M --span 10
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LT_PY = os.path.join(REPO, "runtime-mio", "tests", "support", "lt.py")
PYTHON = "/usr/bin/python3"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_rate(text):
    m = re.fullmatch(r"([0-9.]+)\s*([kKmMgG]?)", text)
    if not m:
        sys.exit("rate_limit.py: --rate takes e.g. 2M or 512k")
    return int(float(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2).lower()])


def samples(proc, pattern, scale):
    """Yields (monotonic time, bytes) from `proc`'s lines matching `pattern`."""
    for line in proc.stdout:
        m = re.search(pattern, line)
        if m:
            yield time.monotonic(), int(float(m.group(1)) * scale)


def measure(proc, pattern, scale, warmup, span):
    """Bytes moved from `warmup` s after the first byte to `span` s later."""
    start = first = None
    for t, n in samples(proc, pattern, scale):
        if first is None:
            if n == 0:
                continue
            first = t
        if start is None and t - first >= warmup:
            start = (t, n)
        if start and t - start[0] >= span:
            return (n - start[1]) / (t - start[0])
    sys.exit("rate_limit.py: the transfer ended before the span was measured")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", default="2M")
    ap.add_argument("--span", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--shoal", help="the shoal binary (default: build --release)")
    args = ap.parse_args()
    rate = parse_rate(args.rate)
    # Enough that the span ends well before the payload does.
    size_mib = max(16, int(rate * (args.span + args.warmup + 10) / (1 << 20)))
    shoal = args.shoal
    if not shoal:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "shoal-mio"], cwd=REPO, check=True)
        shoal = os.path.join(REPO, "target", "release", "shoal")
    work = tempfile.mkdtemp(prefix="shoal-rate-")
    procs = []
    try:
        src = os.path.join(work, "src")
        os.makedirs(src)
        payload = os.path.join(src, "payload.bin")
        with open(payload, "wb") as f:
            for _ in range(size_mib):
                f.write(os.urandom(1 << 20))
        torrent = os.path.join(work, "payload.torrent")
        subprocess.run([shoal, "create", payload, "-o", torrent], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        log("payload: %d MiB; limit %s/s; measured over %.0f s after %.0f s" % (
            size_mib, args.rate, args.span, args.warmup))

        # Download: libtorrent seed -> shoal --download-limit.
        seed_port, shoal_port = free_port(), free_port()
        seed = subprocess.Popen([PYTHON, LT_PY, "seed", torrent, src, str(seed_port), "600"],
                                stdout=subprocess.PIPE, text=True)
        procs.append(seed)
        for line in seed.stdout:
            if line.startswith("seeding"):
                break
        dl = subprocess.Popen([shoal, "download", torrent, "-o", os.path.join(work, "dl"),
                               "--no-seed", "--plain", "--no-dht", "--bind", "127.0.0.1",
                               "--port", str(shoal_port), "--peer", "127.0.0.1:%d" % seed_port,
                               "--download-limit", args.rate],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(dl)
        got = measure(seed, r"uploaded (\d+)", 1, args.warmup, args.span)
        print("download limit %s/s: %.0f bytes/s measured at the seed, %.3f x the limit" % (
            args.rate, got, got / rate), flush=True)
        for p in (dl, seed):
            p.kill()
            p.wait()

        # Upload: shoal seed --upload-limit -> libtorrent leecher.
        shoal_port, lt_port = free_port(), free_port()
        up = subprocess.Popen([shoal, "seed", torrent, src, "--plain", "--no-dht",
                               "--bind", "127.0.0.1",
                               "--port", str(shoal_port), "--upload-limit", args.rate],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(up)
        leech = subprocess.Popen([PYTHON, LT_PY, "download", torrent, os.path.join(work, "lt"),
                                  str(lt_port), "600", "--peer", "127.0.0.1:%d" % shoal_port],
                                 stdout=subprocess.PIPE, text=True)
        procs.append(leech)
        got = measure(leech, r"leech\s+([0-9.]+)%", size_mib * (1 << 20) / 100,
                      args.warmup, args.span)
        print("upload limit %s/s: %.0f bytes/s measured at the leecher, %.3f x the limit" % (
            args.rate, got, got / rate), flush=True)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
