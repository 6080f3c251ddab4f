#!/usr/bin/python3
"""libtorrent-rasterbar as a reference for shoal's interop tests and benchmarks.

  lt.py make PATH OUT [--v1-only] [--tracker URL] [--piece-size N]
      make a .torrent of PATH with libtorrent
  lt.py info TORRENT
      print what libtorrent reads from a .torrent, a `key<TAB>value` a line
  lt.py seed TORRENT DIR PORT SECONDS [--peer HOST:PORT]... [--upload-limit BYTES_PER_S]
      seed TORRENT (its content in DIR/<name>) on 127.0.0.1:PORT for SECONDS, TCP only.
      Prints `seeding` once its data is checked. Reads commands on stdin, one a line:
      `connect HOST:PORT` dials a peer (for leechers that only take peers that dial them).
  lt.py download TORRENT DIR PORT SECONDS [--peer HOST:PORT]... [--keep-seeding]
      download TORRENT into DIR/<name>, listening on 127.0.0.1:PORT, TCP only; dials each
      --peer (again every few seconds while it has no peer). Prints `complete` when every
      piece is verified and exits 0 then (or, with --keep-seeding, seeds until SECONDS are
      up and exits 0). Exits 1 if SECONDS pass before it completes.

  lt.py dht PORT SECONDS [--dht HOST:PORT]...
      a DHT node and nothing else on 127.0.0.1:PORT (UDP) for SECONDS: a router for the
      others. Prints `dht ready`, then what it hears: `dht get_peers INFOHASH` and
      `dht announce IP:PORT INFOHASH` for each query of that kind, and `dht nodes N` when
      its routing table's size changes.

Both print `connected HOST:PORT` once for every address a connection is made with, and
`encryption HOST:PORT rc4|plaintext-mse|none` once for each peer: how its stream went
(rc4: Message Stream Encryption with RC4; plaintext-mse: MSE's handshake, then the
payload in the clear; none: a plaintext handshake). Both take `--rc4-only`: only RC4
MSE connections, both ways (out_enc_policy and in_enc_policy forced, allowed_enc_level
rc4); `seed` takes `--plaintext-only`: no MSE at all, either way (in_enc_policy and
out_enc_policy disabled); otherwise libtorrent's defaults (it dials with MSE first, accepts
both).
`seed` and `download` take `--dht HOST:PORT` (repeatable): the session then runs the DHT,
bootstrapping from those nodes only, and looks for peers and announces there (a seed
re-announces every few seconds, so a test need not wait libtorrent's 15 minutes).

All sessions: LSD, UPnP, NAT-PMP and uTP off, and the DHT unless --dht is given (set up
for loopback then: no one-node-per-IP rules, no DoS blocker, a literal listen address); several connections per IP allowed, so
many peers can share 127.0.0.1. Progress goes to stdout once a second. With
--upload-limit, the limit also applies to peers on loopback (libtorrent exempts local
networks by default).

Run with Debian's /usr/bin/python3 (python3-libtorrent).
"""
import os
import sys
import threading
import time

import libtorrent as lt


def make(args):
    path, out = os.path.abspath(args[0]), args[1]
    flags = lt.create_torrent.v1_only if "--v1-only" in args else 0
    piece_size = int(args[args.index("--piece-size") + 1]) if "--piece-size" in args else 0
    fs = lt.file_storage()
    lt.add_files(fs, path)
    t = lt.create_torrent(fs, piece_size, flags=flags)
    if "--tracker" in args:
        t.add_tracker(args[args.index("--tracker") + 1])
    t.set_creator("libtorrent " + lt.__version__)
    lt.set_piece_hashes(t, os.path.dirname(path))
    with open(out, "wb") as f:
        f.write(lt.bencode(t.generate()))


def info(args):
    ti = lt.torrent_info(args[0])
    fs = ti.files()
    files = []
    for i in range(fs.num_files()):
        if fs.file_flags(i) & lt.file_storage.flag_pad_file:
            continue
        files.append({"path": fs.file_path(i).replace(os.sep, "/"), "size": fs.file_size(i)})
    # One fact a line, tab-separated: trivial to read from the Rust side.
    print("name\t" + ti.name())
    print("info_hash\t" + str(ti.info_hashes().v1))
    print("piece_length\t%d" % ti.piece_length())
    print("num_pieces\t%d" % ti.num_pieces())
    print("total_size\t%d" % ti.total_size())
    print("private\t%s" % ("yes" if ti.priv() else "no"))
    for f in files:
        print("file\t%d\t%s" % (f["size"], f["path"]))
    for t in ti.trackers():
        print("tracker\t" + t.url)
    for w in ti.web_seeds():
        print("web_seed\t" + w["url"])


def session(port, upload_limit=0, dht_nodes=()):
    settings = {
        "listen_interfaces": "127.0.0.1:%d" % port,
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "enable_outgoing_utp": False, "enable_incoming_utp": False,
        "allow_multiple_connections_per_ip": True,
        "upload_rate_limit": upload_limit,
        # Connection alerts only: see print_connections.
        "alert_mask": lt.alert.category_t.connect_notification,
        # Never the default router (dht.libtorrent.org): nothing leaves the machine.
        "dht_bootstrap_nodes": "",
    }
    if dht_nodes:
        settings.update({
            "enable_dht": True,
            "dht_bootstrap_nodes": ",".join("%s:%d" % n for n in dht_nodes),
            # On loopback every node shares 127.0.0.1: allow them all, never block one.
            "dht_restrict_routing_ips": False,
            "dht_restrict_search_ips": False,
            "dht_ignore_dark_internet": False,
            "dht_block_ratelimit": 1000000,
            "dht_upload_rate_limit": 1000000,
            "alert_mask": lt.alert.category_t.connect_notification
            | lt.alert.category_t.dht_notification,
        })
    ses = lt.session(settings)
    for n in dht_nodes:
        ses.add_dht_node(n)
    if upload_limit:
        # Every address in the global class only, so the limit holds on loopback too.
        f = lt.ip_filter()
        f.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
        ses.set_peer_class_filter(f)
    return ses


def options(args):
    """(positional arguments, --peer addresses, other --flags with their values)."""
    positional, peers, flags = [], [], {}
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--peer":
            host, port = args[i + 1].rsplit(":", 1)
            peers.append((host, int(port)))
            i += 2
        elif a == "--dht":
            host, port = args[i + 1].rsplit(":", 1)
            flags.setdefault(a, []).append((host, int(port)))
            i += 2
        elif a == "--upload-limit":
            flags[a] = int(args[i + 1])
            i += 2
        elif a.startswith("--"):
            flags[a] = True
            i += 1
        else:
            positional.append(a)
            i += 1
    return positional, peers, flags


def print_connections(ses, seen):
    """`connected HOST:PORT` once for every address a connection is made with, so a test
    can tell whom it reached (a peer's listening port shows only when it was dialled: one
    that dials in comes from another port), e.g. a peer it heard of only by PEX. DHT
    queries heard are printed as `dht ...` lines (see the module doc)."""
    for a in ses.pop_alerts():
        if isinstance(a, lt.dht_announce_alert):
            print("dht announce %s:%d %s" % (a.ip, a.port, a.info_hash), flush=True)
        elif isinstance(a, lt.dht_get_peers_alert):
            print("dht get_peers %s" % a.info_hash, flush=True)
        elif isinstance(a, lt.peer_connect_alert):
            ep = "%s:%d" % (a.endpoint[0], a.endpoint[1])
            if ep not in seen:
                seen.add(ep)
                print("connected %s" % ep, flush=True)


def print_encryption(h, seen):
    """`encryption HOST:PORT KIND` once for every peer (see the module doc)."""
    for p in h.get_peer_info():
        ep = "%s:%d" % (p.ip[0], p.ip[1])
        if ep in seen or p.flags & (lt.peer_info.handshake | lt.peer_info.connecting):
            continue
        seen.add(ep)
        if p.flags & lt.peer_info.rc4_encrypted:
            kind = "rc4"
        elif p.flags & lt.peer_info.plaintext_encrypted:
            kind = "plaintext-mse"
        else:
            kind = "none"
        print("encryption %s %s" % (ep, kind), flush=True)


def rc4_only(ses):
    ses.apply_settings({
        "out_enc_policy": int(lt.enc_policy.pe_forced),
        "in_enc_policy": int(lt.enc_policy.pe_forced),
        "allowed_enc_level": int(lt.enc_level.pe_rc4),
    })


def report(h, label):
    st = h.status()
    print("%s %5.1f%% peers %d down %d kB/s up %d kB/s uploaded %d" % (
        label, st.progress * 100, st.num_peers, st.download_rate // 1000,
        st.upload_rate // 1000, st.all_time_upload), flush=True)
    return st


def listen_for_commands(h):
    """`connect HOST:PORT` lines on stdin dial that peer; EOF ends the listening."""
    def loop():
        for line in sys.stdin:
            words = line.split()
            if len(words) == 2 and words[0] == "connect":
                host, port = words[1].rsplit(":", 1)
                h.connect_peer((host, int(port)))
                print("dialing %s" % words[1], flush=True)
    threading.Thread(target=loop, daemon=True).start()


def seed(args):
    (torrent, directory, port, seconds), peers, flags = options(args)
    ses = session(int(port), flags.get("--upload-limit", 0), flags.get("--dht", ()))
    if "--rc4-only" in flags:
        rc4_only(ses)
    if "--plaintext-only" in flags:
        ses.apply_settings({"in_enc_policy": int(lt.enc_policy.disabled),
                            "out_enc_policy": int(lt.enc_policy.disabled)})
    h = ses.add_torrent({"ti": lt.torrent_info(torrent), "save_path": directory})
    listen_for_commands(h)
    encrypted = set()
    deadline = time.time() + float(seconds)
    said = False
    next_report = 0
    next_announce = 0
    seen = set()
    while time.time() < deadline:
        print_connections(ses, seen)
        print_encryption(h, encrypted)
        if "--dht" in flags and said and time.time() >= next_announce:
            next_announce = time.time() + 3
            h.force_dht_announce()
        if not said and h.status().is_seeding:
            print("seeding", flush=True)
            said = True
            for p in peers:
                h.connect_peer(p)
        if time.time() >= next_report:
            next_report = time.time() + 1
            report(h, "seed")
        time.sleep(0.05)


def download(args):
    """TORRENT is a .torrent file or a magnet link (then the metadata comes from peers)."""
    (torrent, directory, port, seconds), peers, flags = options(args)
    ses = session(int(port), 0, flags.get("--dht", ()))
    if "--plaintext" in flags:
        # Dial without trying Message Stream Encryption first (see benches/compare).
        ses.apply_settings({"out_enc_policy": 2})
    if "--rc4-only" in flags:
        rc4_only(ses)
    if torrent.startswith("magnet:"):
        params = lt.parse_magnet_uri(torrent)
        params.save_path = directory
        h = ses.add_torrent(params)
    else:
        h = ses.add_torrent({"ti": lt.torrent_info(torrent), "save_path": directory})
    start = time.time()
    deadline = start + float(seconds)
    next_dial = 0
    next_report = 0
    complete = False
    had_metadata = h.status().has_metadata
    seen = set()
    encrypted = set()
    while time.time() < deadline:
        print_connections(ses, seen)
        print_encryption(h, encrypted)
        st = h.status()
        if not had_metadata and st.has_metadata:
            had_metadata = True
            print("metadata received in %.2f s" % (time.time() - start), flush=True)
        if not complete and st.is_seeding:
            complete = True
            report(h, "leech")
            print("complete in %.2f s" % (time.time() - start), flush=True)
            if "--keep-seeding" not in flags:
                return 0
        if not complete and st.num_peers == 0 and time.time() >= next_dial and \
                st.state in (lt.torrent_status.downloading,
                             lt.torrent_status.downloading_metadata):
            next_dial = time.time() + 3
            for p in peers:
                h.connect_peer(p)
            if "--dht" in flags:
                h.force_dht_announce()
        if time.time() >= next_report:
            next_report = time.time() + 1
            report(h, "leech")
        time.sleep(0.02)
    if complete:
        return 0
    report(h, "leech")
    print("timeout: not complete after %s s" % seconds, flush=True)
    return 1


def dht(args):
    (port, seconds), _, flags = options(args)
    ses = session(int(port), 0, flags.get("--dht", ()))
    if "--dht" not in flags:
        # A node nobody is told of yet: the others bootstrap from it.
        ses.apply_settings(session_dht_only())
    print("dht ready", flush=True)
    deadline = time.time() + float(seconds)
    nodes = -1
    seen = set()
    while time.time() < deadline:
        print_connections(ses, seen)
        n = ses.status().dht_nodes
        if n != nodes:
            nodes = n
            print("dht nodes %d" % n, flush=True)
        time.sleep(0.05)


def session_dht_only():
    """The loopback DHT settings of `session` with no bootstrap node."""
    return {
        "enable_dht": True,
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_ignore_dark_internet": False,
        "dht_block_ratelimit": 1000000,
        "dht_upload_rate_limit": 1000000,
        "alert_mask": lt.alert.category_t.connect_notification
        | lt.alert.category_t.dht_notification,
    }


if __name__ == "__main__":
    import warnings
    warnings.simplefilter("ignore", DeprecationWarning)
    commands = {"make": make, "info": info, "seed": seed, "download": download, "dht": dht}
    sys.exit(commands[sys.argv[1]](sys.argv[2:]) or 0)
