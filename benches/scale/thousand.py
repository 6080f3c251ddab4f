#!/usr/bin/python3
"""One `shoal daemon` seeding 1,000 small torrents to 2,000 idle connections (issue 19).

Makes N torrents (one file each, random content, in one download folder), adds them to a
daemon through its Transmission RPC (`torrent-add` with the metainfo), waits until every
one seeds, restarts the daemon, then opens C connections to it (a plain BitTorrent
handshake for one of the torrents, then silence: an idle leecher that has nothing and
asks for nothing) and prints:

- RSS of the daemon with no torrent, with N torrents, with N torrents and C connections,
  and per torrent / per connection;
- the daemon's CPU use over an idle window (`--idle` seconds, default 30) with all of it
  in place, as % of one core;
- the time a restart takes until every torrent seeds again, and the bytes the daemon
  read meanwhile (`rchar` of /proc/PID/io: every read(2)/pread(2), so a re-hash of the
  content would show as at least its size), next to the content's size.

Run: `cargo build --release -p shoal-mio && benches/scale/thousand.py` (about two
minutes; `--torrents 100 --connections 200 --idle 5` for a quick look). Everything is on
127.0.0.1 in a temporary folder; the daemons are stopped at the end.
"""

import argparse
import base64
import http.client
import json
import os
import resource
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make_torrents(shoal, folder, torrents, count, size, piece):
    """Files t0000.bin… in `folder` (random content) and their torrents in `torrents`
    (made by `shoal create`); returns the torrents' paths."""
    out = []
    for i in range(count):
        name = "t%04d" % i
        with open(os.path.join(folder, name + ".bin"), "wb") as f:
            f.write(os.urandom(size))
        path = os.path.join(torrents, name + ".torrent")
        subprocess.run(
            [shoal, "create", "--no-date", "--piece-size", str(piece), "-o", path,
             os.path.join(folder, name + ".bin")],
            check=True, stdout=subprocess.DEVNULL,
        )
        out.append(path)
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rpc:
    """The daemon's Transmission RPC (session id handshake included)."""

    def __init__(self, port):
        self.port = port
        self.session = ""

    def call(self, method, **arguments):
        body = json.dumps({"method": method, "arguments": arguments})
        for _ in range(2):
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            c.request(
                "POST",
                "/transmission/rpc",
                body,
                {"X-Transmission-Session-Id": self.session, "Content-Type": "application/json"},
            )
            r = c.getresponse()
            answer = r.read()
            if r.status == 409:
                self.session = r.getheader("X-Transmission-Session-Id")
                continue
            if r.status != 200:
                sys.exit("rpc %s: HTTP %d %r" % (method, r.status, answer[:200]))
            answer = json.loads(answer)
            if answer.get("result") != "success":
                sys.exit("rpc %s: %s" % (method, answer.get("result")))
            return answer.get("arguments", {})
        sys.exit("rpc %s: no session id" % method)


class Daemon:
    def __init__(self, shoal, state, rpc_port, peer_port, download_dir, log):
        self.args = [
            shoal, "daemon", "--state", state, "--rpc", "127.0.0.1:%d" % rpc_port,
            "--download-dir", download_dir, "-p", str(peer_port), "--bind", "127.0.0.1",
            "--no-dht",
        ]
        self.rpc = Rpc(rpc_port)
        self.log = log
        self.proc = None

    def start(self, deadline=60):
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=self.log)
        until = time.monotonic() + deadline
        while time.monotonic() < until:
            if self.proc.poll() is not None:
                sys.exit("the daemon ended (%d); see its log" % self.proc.returncode)
            try:
                self.rpc.call("session-get")
                return
            except (ConnectionError, OSError):
                time.sleep(0.05)
        sys.exit("the daemon's RPC did not answer in %d s" % deadline)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def rss(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def read_bytes(self):
        with open("/proc/%d/io" % self.proc.pid) as f:
            for line in f:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
        return 0

    def wait_seeding(self, count, deadline):
        """Waits until `count` torrents seed (status 6); returns the seconds it took."""
        start = time.monotonic()
        while True:
            ts = self.rpc.call("torrent-get", fields=["id", "status", "percentDone", "error"])
            ts = ts.get("torrents", [])
            seeding = sum(1 for t in ts if t["status"] == 6 and t["percentDone"] >= 1)
            if len(ts) == count and seeding == count:
                return time.monotonic() - start
            if time.monotonic() - start > deadline:
                errors = [t for t in ts if t.get("error")][:3]
                sys.exit("%d of %d torrents seed after %d s %s" % (seeding, count, deadline, errors))
            time.sleep(0.1)


def open_connections(port, hashes, count, deadline):
    """`count` connections, each handshaking for one of `hashes` (in turn) and then idle.
    Returns the sockets whose handshake was answered."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sel = selectors.DefaultSelector()
    pending = {}
    for i in range(count):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        h = b"\x13BitTorrent protocol" + bytes(8) + hashes[i % len(hashes)]
        h += b"-XX0001-" + struct.pack(">Q", i) + b"\0\0\0\0"
        pending[s] = [h, b""]
        sel.register(s, selectors.EVENT_WRITE | selectors.EVENT_READ)
    done = []
    until = time.monotonic() + deadline
    while pending and time.monotonic() < until:
        for key, events in sel.select(timeout=0.5):
            s = key.fileobj
            state = pending.get(s)
            if state is None:
                continue
            try:
                if events & selectors.EVENT_WRITE and state[0]:
                    n = s.send(state[0])
                    state[0] = state[0][n:]
                    if not state[0]:
                        sel.modify(s, selectors.EVENT_READ)
                if events & selectors.EVENT_READ:
                    data = s.recv(4096)
                    if not data:
                        raise ConnectionError("closed")
                    state[1] += data
                    if len(state[1]) >= 68:
                        sel.unregister(s)
                        del pending[s]
                        done.append(s)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                sel.unregister(s)
                del pending[s]
                s.close()
    for s in pending:
        s.close()
    return done


def mib(n):
    return "%.1f MiB" % (n / 1048576)


def kib(n):
    return "%.1f KiB" % (n / 1024)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shoal", default=os.path.join(ROOT, "target/release/shoal"))
    p.add_argument("--torrents", type=int, default=1000)
    p.add_argument("--connections", type=int, default=2000)
    p.add_argument("--size", type=int, default=64 * 1024, help="bytes per torrent")
    p.add_argument("--piece", type=int, default=16 * 1024)
    p.add_argument("--idle", type=float, default=30, help="seconds of the idle-CPU window")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    a = p.parse_args()
    if not os.access(a.shoal, os.X_OK):
        sys.exit("%s: not found; build it with `cargo build --release -p shoal-mio`" % a.shoal)

    tmp = tempfile.mkdtemp(prefix="shoal-thousand-")
    content = os.path.join(tmp, "content")
    os.makedirs(content)
    log = open(os.path.join(tmp, "daemon.log"), "ab")
    daemon = Daemon(a.shoal, os.path.join(tmp, "state"), free_port(), free_port(), content, log)
    try:
        print("making %d torrents of %d bytes…" % (a.torrents, a.size), flush=True)
        os.makedirs(os.path.join(tmp, "torrents"))
        torrents = make_torrents(
            a.shoal, content, os.path.join(tmp, "torrents"), a.torrents, a.size, a.piece
        )
        total = a.torrents * a.size

        daemon.start()
        # Room for every connection (the engine's limit is read at start).
        daemon.rpc.call(
            "session-set",
            **{"peer-limit-global": a.connections + 100, "peer-limit-per-torrent": 50},
        )
        daemon.stop()
        daemon.start()
        time.sleep(1)
        rss_empty = daemon.rss()

        t0 = time.monotonic()
        hashes = []
        for path in torrents:
            with open(path, "rb") as f:
                meta = base64.b64encode(f.read()).decode()
            added = daemon.rpc.call("torrent-add", metainfo=meta, **{"download-dir": content})
            added = added.get("torrent-added") or added.get("torrent-duplicate")
            hashes.append(bytes.fromhex(added["hashString"]))
        daemon.wait_seeding(a.torrents, 600)
        first = time.monotonic() - t0
        read_first = daemon.read_bytes()

        daemon.stop()
        t0 = time.monotonic()
        daemon.start()
        daemon.wait_seeding(a.torrents, 600)
        restart = time.monotonic() - t0
        read_restart = daemon.read_bytes()
        time.sleep(1)
        rss_torrents = daemon.rss()

        conns = open_connections(
            int(daemon.args[daemon.args.index("-p") + 1]),
            hashes,
            a.connections,
            120,
        )
        time.sleep(1)
        rss_conns = daemon.rss()
        cpu0, w0 = daemon.cpu_seconds(), time.monotonic()
        time.sleep(a.idle)
        cpu1, w1 = daemon.cpu_seconds(), time.monotonic()
        alive = daemon.proc.poll() is None

        print()
        rows = [
            ("torrents", "%d × %d bytes (%s of content)" % (a.torrents, a.size, mib(total))),
            ("connections", "%d of %d handshaken" % (len(conns), a.connections)),
            ("RSS, no torrent", mib(rss_empty)),
            ("RSS, %d torrents" % a.torrents, "%s (%s per torrent)" % (
                mib(rss_torrents), kib((rss_torrents - rss_empty) / a.torrents))),
            ("RSS, + %d connections" % len(conns), "%s (%s per connection)" % (
                mib(rss_conns), kib((rss_conns - rss_torrents) / max(1, len(conns))))),
            ("idle CPU over %.0f s" % (w1 - w0), "%.2f %% of one core" % (
                100 * (cpu1 - cpu0) / (w1 - w0))),
            ("first start (add, check)", "%.2f s, %s read" % (first, kib(read_first))),
            ("restart until all seed", "%.2f s, %s read (content: %s)" % (
                restart, kib(read_restart), kib(total))),
            ("daemon alive at the end", str(alive)),
        ]
        for name, value in rows:
            print("%-28s %s" % (name, value))
        for s in conns:
            s.close()
    finally:
        daemon.stop()
        log.close()
        if a.keep:
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
