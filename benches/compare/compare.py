#!/usr/bin/python3
"""Loopback download race: shoal against libtorrent, transmission and aria2.

Makes a torrent of one file of random bytes (1 GiB, 256 KiB pieces, by default), starts a
libtorrent seed on 127.0.0.1 (TCP only, uTP off), then has each downloader fetch it from
that seed, one after another, each into a fresh folder. For each it measures wall time, CPU
time (user + sys) and peak RSS of the downloader's process (`/usr/bin/time`), checks the
data with `cmp`, and prints a table with the ratios to shoal.

Run from anywhere, as root (to drop the page cache between runs; without root it says so
and goes on):

    /usr/bin/python3 benches/compare/compare.py             # 1 GiB
    /usr/bin/python3 benches/compare/compare.py --size 64   # a quick check

See benches/compare/README.md for what exactly is measured and how.
"""
import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LT_PY = os.path.join(REPO, "runtime-mio", "tests", "support", "lt.py")
PYTHON = "/usr/bin/python3"  # Debian's: the one that can import libtorrent
TIME = "/usr/bin/time"
CLIENTS = ["shoal", "shoal-baseline", "shoal-async-std", "libtorrent", "transmission", "aria2"]
MODES = ["warm", "cold", "slow-disk"]
# How long one download may take before the run is declared failed.
DOWNLOAD_TIMEOUT = 600


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def die(msg):
    log("compare.py: error: " + msg)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port):
    """Whether something listens on TCP `port` (any address), from /proc/net/tcp{,6}."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        return True
        except FileNotFoundError:
            pass
    return False


def wait_for(pred, what, timeout):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            die("timed out waiting for " + what)
        time.sleep(0.02)


def check_tools(clients):
    if not os.path.exists(TIME):
        log("installing Debian's `time` package for /usr/bin/time")
        subprocess.run(["apt-get", "install", "-y", "-qq", "time"], check=False,
                       stdout=subprocess.DEVNULL)
        if not os.path.exists(TIME):
            die("/usr/bin/time is missing: apt-get install time")
    need = {"mktorrent": "mktorrent", "stdbuf": "coreutils", "cmp": "diffutils"}
    if "transmission" in clients:
        need["transmission-cli"] = "transmission-cli"
    if "aria2" in clients:
        need["aria2c"] = "aria2"
    for tool, package in need.items():
        if shutil.which(tool) is None:
            die("%s is missing: run scripts/test (or apt-get install %s)" % (tool, package))
    if subprocess.run([PYTHON, "-c", "import libtorrent"], stderr=subprocess.DEVNULL).returncode:
        die("python3-libtorrent is missing: run scripts/test")


def drop_caches():
    """sync, then drop the page cache if allowed. Returns whether it was dropped."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def prewarm(path):
    """Reads `path` so the seed serves it from the page cache, the same for every run."""
    with open(path, "rb") as f:
        while f.read(8 << 20):
            pass


class Seed:
    """The libtorrent seed, alive for the whole comparison. It dials peers on request."""

    def __init__(self, torrent, directory, log_path):
        self.port = free_port()
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [PYTHON, LT_PY, "seed", torrent, directory, str(self.port), "86400"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True)
        for line in self.proc.stdout:
            self.log.write(line)
            if line.strip() == "seeding":
                break
        else:
            die("the libtorrent seed exited before seeding; see " + log_path)
        # Keep draining its progress lines into the log.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stdout:
            self.log.write(line)

    def dial(self, port):
        self.proc.stdin.write("connect 127.0.0.1:%d\n" % port)
        self.proc.stdin.flush()

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()


def cpu_seconds(pid):
    """User + system CPU time of process `pid` so far (all its threads), from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(cmd, time_file, log_file, **kw):
    """Starts `cmd` under /usr/bin/time; returns the Popen of /usr/bin/time."""
    return subprocess.Popen([TIME, "-f", "%e %U %S %M %w %c", "-o", time_file] + cmd,
                            stdout=log_file, stderr=subprocess.STDOUT, **kw)


def child_of(pid):
    """The (single) child process of `pid`: the downloader under /usr/bin/time."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    kids = out.split()
    return int(kids[0]) if kids else None


def read_time(time_file):
    """(user, sys, max RSS KiB, context switches) from /usr/bin/time's last line (after
    any 'Command terminated by signal' line); the switches are the voluntary ones (a
    thread that waits: for a socket, a job, a lock) and the involuntary ones together."""
    with open(time_file) as f:
        last = f.read().strip().splitlines()[-1]
    _, user, sys_, rss, voluntary, involuntary = last.split()
    return float(user), float(sys_), int(rss), int(voluntary) + int(involuntary)


class ShoalSeed:
    """`shoal seed` of the payload, for the seeding comparison (libtorrent downloads from it)."""

    def __init__(self, shoal, torrent, directory, log_path):
        self.port = free_port()
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [shoal, "seed", torrent, directory, "--plain", "--bind", "127.0.0.1",
             "--port", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT)
        # It says "listening on" once its data is checked (it binds its port before).
        def ready():
            self.log.flush()
            with open(log_path) as f:
                return "listening on" in f.read() or self.proc.poll() is not None
        wait_for(ready, "shoal seed ready", 300)
        if self.proc.poll() is not None:
            die("shoal seed exited early; see " + log_path)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()


def run_one(name, args, torrent, seed, work, run_index, env=None, peer_port=None, tag=None,
            extra=()):
    """Downloads with one client; returns (wall s, user s, sys s, max RSS KiB). `env`: extra
    environment; `peer_port`: the seed to dial, when not `seed`'s."""
    tag = tag or name
    out = os.path.join(work, "%s-%d" % (tag, run_index))
    os.makedirs(out)
    port = free_port()
    time_file = os.path.join(work, "%s-%d.time" % (tag, run_index))
    log_path = os.path.join(work, "%s-%d.log" % (tag, run_index))
    logf = open(log_path, "w")
    peer = "127.0.0.1:%d" % (peer_port or seed.port)

    if name in ("shoal", "shoal-baseline"):
        # DHT off, as for the other clients: a loopback measure, nothing sent beyond.
        binary = args.baseline if name == "shoal-baseline" else args.shoal
        cmd = [binary, "download", torrent, "-o", out, "--no-seed", "--plain", "--no-dht",
               "--bind", "127.0.0.1", "--port", str(port), "--peer", peer]
    elif name == "shoal-async-std":
        # The same engine on the async-std runtime (runtime-async-std/examples/download.rs).
        cmd = [args.shoal_async, torrent, "-o", out, "--no-seed", "--bind", "127.0.0.1",
               "--port", str(port), "--peer", peer]
    elif name == "libtorrent":
        cmd = [PYTHON, LT_PY, "download", torrent, out, str(port), str(DOWNLOAD_TIMEOUT),
               "--peer", peer] + list(extra)
    elif name == "transmission":
        config = os.path.join(work, "transmission-config-%d" % run_index)
        os.makedirs(config)
        with open(os.path.join(config, "settings.json"), "w") as f:
            f.write('{"dht-enabled": false, "lpd-enabled": false, "pex-enabled": false,'
                    ' "utp-enabled": false, "port-forwarding-enabled": false,'
                    ' "rpc-enabled": false, "bind-address-ipv4": "127.0.0.1",'
                    ' "bind-address-ipv6": "::1", "peer-port": %d,'
                    ' "peer-port-random-on-start": false}\n' % port)
        # stdbuf execs transmission-cli in place: /usr/bin/time measures transmission itself.
        cmd = ["stdbuf", "-o0", "transmission-cli", "-g", config, "-w", out, "-p", str(port),
               torrent]
    elif name == "aria2":
        cmd = ["aria2c", "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
               "--enable-peer-exchange=false", "--seed-time=0", "--check-integrity=true",
               "--interface=127.0.0.1", "--disable-ipv6=true", "--enable-color=false",
               "--dir=" + out, "--listen-port=%d" % port, torrent]
    else:
        raise ValueError(name)

    start = time.monotonic()
    proc = timed(cmd, time_file, logf, env=dict(os.environ, **(env or {})))
    deadline = start + DOWNLOAD_TIMEOUT
    if name in ("transmission", "aria2"):
        # Neither dials a loopback seed it was not told of: the seed dials it.
        wait_for(lambda: listening(port) or proc.poll() is not None, name + " listening", 60)
        seed.dial(port)
    done_at = None
    if name == "transmission":
        # It never exits on its own: done when it says it is seeding; then stop it (SIGINT,
        # as Ctrl-C: it flushes and closes cleanly).
        while done_at is None:
            if proc.poll() is not None:
                die("transmission exited early; see " + log_path)
            if time.monotonic() > deadline:
                die("transmission did not finish; see " + log_path)
            time.sleep(0.05)
            logf.flush()
            with open(log_path, "rb") as f:
                f.seek(max(0, os.path.getsize(log_path) - 4096))
                if b"Seeding" in f.read():
                    done_at = time.monotonic()
        kid = child_of(proc.pid)
        if kid:
            os.kill(kid, signal.SIGINT)
    try:
        rc = proc.wait(timeout=max(1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        die("%s did not finish in %d s; see %s" % (name, DOWNLOAD_TIMEOUT, log_path))
    if done_at is None:
        done_at = time.monotonic()
        if rc != 0:
            die("%s failed (exit %d); see %s" % (name, rc, log_path))
    logf.close()
    wall = done_at - start
    user, sys_, rss, switches = read_time(time_file)

    got = os.path.join(out, os.path.basename(args.content))
    if subprocess.run(["cmp", "-s", got, args.content]).returncode != 0:
        die("%s: the downloaded data differs from the original (%s); see %s"
            % (name, got, log_path))
    if not args.keep:
        shutil.rmtree(out)
    return wall, user, sys_, rss, switches


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=1024, help="payload size in MiB (1024)")
    p.add_argument("--piece-size", type=int, default=256, help="piece size in KiB (256)")
    p.add_argument("--clients", default=",".join(CLIENTS),
                   help="comma-separated subset of " + ",".join(CLIENTS))
    p.add_argument("--runs", type=int, default=1,
                   help="downloads per client; the table shows medians (1)")
    p.add_argument("--shoal", help="the shoal binary (default: build and use target/release/shoal)")
    p.add_argument("--baseline",
                   help="another shoal binary, run as client shoal-baseline beside shoal "
                        "(an A/B of a change, interleaved in the same run)")
    p.add_argument("--work", help="working folder (default: a new temp folder, removed after)")
    p.add_argument("--keep", action="store_true", help="keep downloads and the working folder")
    p.add_argument("--modes", default="warm",
                   help="comma-separated, interleaved: warm (the seed's file in the page "
                        "cache), cold (page cache dropped: the seed reads its disk), "
                        "slow-disk (warm, and shoal's writes slowed to --slow-rate) (warm)")
    p.add_argument("--slow-rate", type=int, default=50,
                   help="slow-disk mode: shoal's write speed, MB/s per disk worker (50)")
    p.add_argument("--seeding", action="store_true",
                   help="instead: libtorrent downloads from the libtorrent seed and from "
                        "`shoal seed`, interleaved, warm")
    p.add_argument("--rc4", action="store_true",
                   help="with --seeding: also rows where libtorrent takes only RC4 (MSE)")
    args = p.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in MODES:
            die("unknown mode %r (choose from %s)" % (m, ", ".join(MODES)))
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    for c in clients:
        if c not in CLIENTS:
            die("unknown client %r (choose from %s)" % (c, ", ".join(CLIENTS)))
    if "shoal-baseline" in clients and not args.baseline:
        die("client shoal-baseline needs --baseline BINARY")
    if args.piece_size & (args.piece_size - 1):
        die("--piece-size must be a power of two (KiB)")
    check_tools(clients)

    if args.shoal is None:
        log("building shoal (cargo build --release -p shoal-mio)")
        subprocess.run(["cargo", "build", "--release", "-p", "shoal-mio"], cwd=REPO, check=True)
        args.shoal = os.path.join(REPO, "target", "release", "shoal")

    if "shoal-async-std" in clients:
        log("building the async-std runtime's downloader (cargo build --release -p shoal-async-std --example download)")
        subprocess.run(["cargo", "build", "--release", "-p", "shoal-async-std", "--example",
                        "download"], cwd=REPO, check=True)
        args.shoal_async = os.path.join(REPO, "target", "release", "examples", "download")

    work = args.work or tempfile.mkdtemp(prefix="shoal-compare-")
    os.makedirs(work, exist_ok=True)
    seed = None
    try:
        src = os.path.join(work, "src")
        os.makedirs(src, exist_ok=True)
        args.content = os.path.join(src, "payload-%dM.bin" % args.size)
        if not os.path.exists(args.content) or os.path.getsize(args.content) != args.size << 20:
            log("writing %d MiB of random data to %s" % (args.size, args.content))
            with open(args.content, "wb") as f:
                for _ in range(args.size):
                    f.write(os.urandom(1 << 20))
        torrent = os.path.join(work, "payload-%dM.torrent" % args.size)
        if os.path.exists(torrent):
            os.remove(torrent)
        log("making the torrent (mktorrent, %d KiB pieces)" % args.piece_size)
        subprocess.run(["mktorrent", "-l", str(args.piece_size.bit_length() + 9), "-o", torrent,
                        args.content], check=True, stdout=subprocess.DEVNULL)

        log("starting the libtorrent seed (it checks its data first)")
        seed = Seed(torrent, src, os.path.join(work, "seed.log"))
        if args.seeding:
            log("starting shoal seed (it checks its data first)")
            shoal_seed = ShoalSeed(args.shoal, torrent, src, os.path.join(work, "shoal-seed.log"))
            # libtorrent dials with Message Stream Encryption first (its default) and both
            # seeds select plaintext after it. The "plaintext" rows have the leecher dial
            # in plaintext at once, to time the seeds' data paths alone; the "rc4" rows
            # (--rc4) have it take nothing but RC4, every byte encrypted both ways.
            seeders = [("libtorrent seed", seed.port, seed.proc.pid, ()),
                       ("shoal seed", shoal_seed.port, shoal_seed.proc.pid, ()),
                       ("libtorrent seed, plaintext", seed.port, seed.proc.pid,
                        ("--plaintext",)),
                       ("shoal seed, plaintext", shoal_seed.port, shoal_seed.proc.pid,
                        ("--plaintext",))]
            if args.rc4:
                seeders += [("libtorrent seed, rc4", seed.port, seed.proc.pid,
                             ("--rc4-only",)),
                            ("shoal seed, rc4", shoal_seed.port, shoal_seed.proc.pid,
                             ("--rc4-only",))]
            try:
                results = {name: [] for name, _, _, _ in seeders}
                for r in range(args.runs):
                    for name, port, pid, extra in seeders:
                        drop_caches()
                        prewarm(args.content)
                        log("run %d/%d: libtorrent from the %s" % (r + 1, args.runs, name))
                        before = cpu_seconds(pid)
                        got = run_one("libtorrent", args, torrent, seed, work, r,
                                      peer_port=port, extra=extra,
                                      tag="lt-from-" + name.replace(",", "").replace(" ", "-"))
                        results[name].append(got + (cpu_seconds(pid) - before,))
                        w, u, s, m, _, c = results[name][-1]
                        log("  %.2f s wall, %.2f s leecher CPU, %.2f s seed CPU"
                            % (w, u + s, c))
            finally:
                shoal_seed.stop()
            print_seeding(args, results)
            return

        results = {}
        dropped = True
        for r in range(args.runs):
            for mode in modes:
                for c in clients:
                    if mode == "slow-disk" and not c.startswith("shoal"):
                        continue  # the slowed storage is shoal's own (see README)
                    dropped = drop_caches() and dropped
                    if mode != "cold":
                        prewarm(args.content)
                    env = None
                    if mode == "slow-disk":
                        env = {"SHOAL_SLOW_DISK": str(args.slow_rate * 1000000)}
                    log("run %d/%d, %s: %s" % (r + 1, args.runs, mode, c))
                    got = run_one(c, args, torrent, seed, work, r, env=env,
                                  tag="%s-%s" % (c, mode))
                    results.setdefault(mode, {}).setdefault(c, []).append(got)
                    w, u, s, m, x = got
                    log("  %.2f s wall, %.2f s CPU, %.0f MiB peak RSS, %d context switches"
                        % (w, u + s, m / 1024, x))
    finally:
        if seed is not None:
            seed.stop()
        if not args.keep and not args.work:
            shutil.rmtree(work, ignore_errors=True)

    for mode in modes:
        print_table(args, [c for c in clients if c in results[mode]], results[mode], dropped,
                    mode)


def print_seeding(args, results):
    """The seeding table: libtorrent's download time from each seed, and the ratio."""
    med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] + x[2] for x in v),
               statistics.median(x[5] for x in v))
           for k, v in results.items()}
    print()
    print("seeding: libtorrent downloads %d MiB (%d KiB pieces) from each seed on 127.0.0.1 "
          "(TCP), seed's file in the page cache, %d interleaved run(s), medians"
          % (args.size, args.piece_size, args.runs))
    print()
    base = {k: med["libtorrent seed" + k[len(k.split(",")[0]):]][0] for k in med}
    print("| seed | runs (wall s) | wall s | MiB/s | leecher CPU s | seed CPU s "
          "| wall / libtorrent seed's |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, (wall, cpu, seed_cpu) in med.items():
        runs = ", ".join("%.2f" % x[0] for x in results[name])
        print("| %s | %s | %.2f | %.0f | %.2f | %.2f | %.2f |"
              % (name, runs, wall, args.size / wall, cpu, seed_cpu, wall / base[name]))


def print_table(args, clients, results, dropped, mode="warm"):
    med = {}
    for c in clients:
        runs = results[c]
        med[c] = (statistics.median(x[0] for x in runs),
                  statistics.median(x[1] + x[2] for x in runs),
                  statistics.median(x[1] for x in runs),
                  statistics.median(x[2] for x in runs),
                  statistics.median(x[3] for x in runs) / 1024,
                  statistics.median(x[4] for x in runs))
    base = med.get("shoal")
    print()
    print("%d MiB, %d KiB pieces, libtorrent seed on 127.0.0.1 (TCP), %d run(s) per client%s"
          % (args.size, args.piece_size, args.runs, ", medians" if args.runs > 1 else ""))
    print("mode %s. page cache: %s; %s"
          % (mode, "synced and dropped before every download" if dropped
             else "NOT dropped (needs root); synced before every download",
             "the seed reads its file from disk" if mode == "cold"
             else "the seed's file re-read into the cache before every download"))
    if mode == "slow-disk":
        print("shoal's writes slowed to %d MB/s per disk worker (SHOAL_SLOW_DISK, shoal-io's "
              "injected delay); other clients are not run in this mode" % args.slow_rate)
    print("%d CPUs: %s" % (os.cpu_count(), cpu_model()))
    print()
    head = ("client", "wall s", "MiB/s", "CPU s", "user s", "sys s", "RSS MiB", "switches",
            "wall/shoal", "CPU/shoal", "RSS/shoal")
    rows = []
    for c in clients:
        wall, cpu, user, sys_, rss, switches = med[c]
        ratio = lambda a, b: "%.2f" % (a / b) if base and b > 0 else "-"
        rows.append((c, "%.2f" % wall, "%.0f" % (args.size / wall), "%.2f" % cpu,
                     "%.2f" % user, "%.2f" % sys_, "%.1f" % rss, "%d" % switches,
                     ratio(wall, base[0]) if base else "-",
                     ratio(cpu, base[1]) if base else "-",
                     ratio(rss, base[4]) if base else "-"))
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(v.ljust(w) if i == 0 else v.rjust(w)
                                for i, (v, w) in enumerate(zip(r, widths))) + " |")
    print()
    print("ratios are client / shoal: above 1 means shoal is faster, uses less CPU or memory.")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    main()
