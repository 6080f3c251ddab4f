#!/usr/bin/python3
"""libtorrent-rasterbar as a reference for shoal's interop tests.

  lt.py make PATH OUT [--v1-only] [--tracker URL] [--piece-size N]
      make a .torrent of PATH with libtorrent
  lt.py info TORRENT
      print what libtorrent reads from a .torrent, a `key<TAB>value` a line

Run with Debian's /usr/bin/python3 (python3-libtorrent).
"""
import os
import sys

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


if __name__ == "__main__":
    {"make": make, "info": info}[sys.argv[1]](sys.argv[2:])
