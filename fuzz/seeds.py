#!/usr/bin/python3
"""Writes the seed inputs of each fuzz target's corpus (fuzz/corpus/<target>/seed-*).

Run once when a target is added; the fuzzers add what they find beside these (keep what
`cargo fuzz cmin` leaves). Deterministic: the same files every time.
"""
import hashlib
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def be(x):
    if isinstance(x, int):
        return b"i%de" % x
    if isinstance(x, str):
        x = x.encode()
    if isinstance(x, bytes):
        return b"%d:%s" % (len(x), x)
    if isinstance(x, list):
        return b"l" + b"".join(be(v) for v in x) + b"e"
    if isinstance(x, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in x.items())
        return b"d" + b"".join(be(k) + be(v) for k, v in items) + b"e"
    raise TypeError(x)


def msg(mid, payload=b""):
    return struct.pack(">IB", 1 + len(payload), mid) + payload


INFO = {"name": "a.bin", "piece length": 16384, "length": 40000,
        "pieces": b"".join(hashlib.sha1(bytes([i])).digest() for i in range(3))}
MULTI = {"name": "dir", "piece length": 32768,
         "files": [{"length": 5, "path": ["x", "y.txt"]}, {"length": 0, "path": ["empty"]}],
         "pieces": hashlib.sha1(b"12345").digest()}
TORRENT = be({"announce": "http://127.0.0.1:6969/announce", "info": INFO,
              "url-list": ["http://127.0.0.1/files/"]})
HASH = hashlib.sha1(be(INFO)).digest()
HANDSHAKE = b"\x13BitTorrent protocol" + bytes([0, 0, 0, 0, 0, 0x10, 0, 0x05]) + HASH + b"-SH0010-000000000000"

SEEDS = {
    "wire_stream": [
        bytes([3, 7]) + b"\0\0\0\0" + msg(0) + msg(1) + msg(2) + msg(3) + msg(4, struct.pack(">I", 1))
        + msg(5, b"\xe0") + msg(6, struct.pack(">III", 0, 0, 16384))
        + msg(7, struct.pack(">II", 0, 0) + b"data") + msg(8, struct.pack(">III", 0, 0, 16384)),
        bytes([1, 255]) + msg(14) + msg(15) + msg(16, struct.pack(">III", 1, 0, 16384))
        + msg(17, struct.pack(">I", 2)) + msg(13, struct.pack(">I", 0))
        + msg(20, b"\0" + be({"m": {"ut_metadata": 1}})),
    ],
    "handshake": [HANDSHAKE, HANDSHAKE + msg(2)],
    "extended_handshake": [
        be({"m": {"ut_metadata": 1, "ut_pex": 2}, "metadata_size": 1234, "p": 6881,
            "v": "shoal 0.1", "reqq": 500, "yourip": b"\x7f\0\0\x01"}),
    ],
    "bencode": [be({"a": [1, -2, "x"], "b": {"c": b"\xff"}}), b"d1:bi1e1:ai2ee", b"i-0e", b"l" * 40],
    "krpc": [
        be({"t": "aa", "y": "q", "q": "ping", "a": {"id": "abcdefghij0123456789"}}),
        be({"t": "aa", "y": "q", "q": "get_peers", "a": {"id": "abcdefghij0123456789",
            "info_hash": "mnopqrstuvwxyz123456"}}),
        be({"t": "aa", "y": "q", "q": "announce_peer", "a": {"id": "abcdefghij0123456789",
            "implied_port": 1, "info_hash": "mnopqrstuvwxyz123456", "port": 6881, "token": "aoeusnth"}}),
        be({"t": "aa", "y": "r", "r": {"id": "0123456789abcdefghij", "token": "aoeusnth",
            "nodes": b"n" * 20 + b"\x7f\0\0\x01\x1a\xe1", "values": ["axje.u", "idhtnm"]}}),
        be({"t": "aa", "y": "e", "e": [201, "A Generic Error Ocurred"]}),
    ],
    "metainfo": [TORRENT, be({"info": MULTI, "announce-list": [["udp://t:1"], ["http://u/a"]]}), be(INFO)],
    "magnet": [
        ("magnet:?xt=urn:btih:" + HASH.hex() + "&dn=a.bin&tr=http%3A%2F%2F127.0.0.1%3A6969%2Fannounce"
         "&x.pe=127.0.0.1:6881&ws=http%3A%2F%2F127.0.0.1%2F").encode(),
        b"magnet:?xt=urn:btih:CIQKFWQ6YT4IIGSQZKBFQIKOXPGR4QPS",
    ],
    "tracker_answer": [
        be({"interval": 1800, "complete": 1, "incomplete": 2, "peers": b"\x7f\0\0\x01\x1a\xe1"}),
        be({"interval": 60, "peers": [{"ip": "10.0.0.1", "port": 6881, "peer id": b"x" * 20}],
            "peers6": b"\0" * 18}),
        be({"failure reason": "unregistered torrent"}),
        be({"files": {HASH: {"complete": 1, "downloaded": 5, "incomplete": 0}}}),
    ],
    "udp_answer": [
        struct.pack(">IIQ", 0, 7, 0x1234),
        struct.pack(">IIIII", 1, 7, 1800, 2, 1) + b"\x7f\0\0\x01\x1a\xe1",
        struct.pack(">II", 3, 7) + b"error",
        struct.pack(">II", 2, 7) + struct.pack(">III", 1, 2, 3),
    ],
    "tracker_request": [
        b"GET /announce?info_hash=%12%34&peer_id=-SH0010-000000000000&port=6881&uploaded=0"
        b"&downloaded=0&left=100&compact=1&event=started HTTP/1.1\r\nHost: t\r\n\r\n",
        b"info_hash=%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A&peer_id=aaaaaaaaaaaaaaaaaaaa"
        b"&port=1&uploaded=0&downloaded=0&left=0&ip=10.0.0.9&numwant=20",
    ],
    "udp_request": [
        struct.pack(">QII", 0x41727101980, 0, 7),
        struct.pack(">QII", 0x1234, 1, 7) + HASH + b"-SH0010-000000000000"
        + struct.pack(">QQQIIIiH", 0, 100, 0, 2, 0, 9, -1, 6881),
        struct.pack(">QII", 0x1234, 2, 7) + HASH,
    ],
    "http_answer": [
        bytes([5]) + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        bytes([3]) + b"HTTP/1.1 206 Partial Content\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        bytes([64]) + b"HTTP/1.0 302 Found\r\nLocation: http://x/\r\n\r\n",
    ],
    "metadata_message": [
        be({"msg_type": 0, "piece": 0}),
        be({"msg_type": 1, "piece": 0, "total_size": 8}) + b"12345678",
        be({"msg_type": 2, "piece": 3}),
    ],
    # Chunk size, policy bits (see fuzz/src/lib.rs), then bytes XORed onto the dialler's
    # stream: all zeros is an honest meeting, in one read or byte by byte.
    "mse_handshake": [
        bytes([255, 0x07]), bytes([1, 0x0B]), bytes([64, 0x1F]) + bytes(700),
        bytes([200, 0x0F]) + bytes(96 + 40) + b"\x01" * 20, bytes([128, 0x8F]) + bytes(700),
        bytes([255, 0x05]) + bytes(700) + b"trailing payload",
    ],
    "pex_message": [
        be({"added": b"\x7f\0\0\x01\x1a\xe1\x0a\0\0\x02\x1a\xe2", "added.f": b"\x02\x10",
            "dropped": b"\x0a\0\0\x03\x1a\xe3", "added6": b"\0" * 15 + b"\x01\x1a\xe1"}),
    ],
}

for target, inputs in SEEDS.items():
    folder = os.path.join(ROOT, target)
    os.makedirs(folder, exist_ok=True)
    for i, data in enumerate(inputs):
        with open(os.path.join(folder, "seed-%d" % i), "wb") as f:
            f.write(data)
