//! Tests of `.torrent` parsing, the info-hash and the file layout.

use super::*;
use quickcheck::quickcheck;

/// Builds a torrent's bytes by hand, keys in the order given.
fn dict(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = b"d".to_vec();
    for (k, v) in entries {
        out.extend(format!("{}:{}", k.len(), k).bytes());
        out.extend(v);
    }
    out.push(b'e');
    out
}
fn s(x: &str) -> Vec<u8> {
    bs(x.as_bytes())
}
fn bs(x: &[u8]) -> Vec<u8> {
    [format!("{}:", x.len()).into_bytes(), x.to_vec()].concat()
}
fn i(x: i64) -> Vec<u8> {
    format!("i{x}e").into_bytes()
}
fn l(items: &[Vec<u8>]) -> Vec<u8> {
    [b"l".to_vec(), items.concat(), b"e".to_vec()].concat()
}

#[test]
fn a_fetched_torrent_saves_as_a_file_that_parses_back_the_same() {
    let info = dict(&[
        ("length", i(40000)),
        ("name", s("x")),
        ("piece length", i(16384)),
        ("pieces", bs(&[7u8; 60])),
    ]);
    let mut m = Metainfo::from_info_bytes(&info).unwrap();
    assert_eq!(Metainfo::parse(&m.to_torrent_bytes()).unwrap(), m);
    m.announce = Some("http://a/announce".into());
    m.announce_list = vec![vec!["http://a/announce".into()], vec!["udp://b:1".into()]];
    m.url_list = vec!["http://w/".into()];
    m.comment = Some("c".into());
    m.created_by = Some("me".into());
    m.creation_date = Some(-5);
    let back = Metainfo::parse(&m.to_torrent_bytes()).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.info_hash, InfoHash(Sha1::digest(&info).into()));
}
fn file(len: i64, path: &[&str]) -> Vec<u8> {
    dict(&[
        ("length", i(len)),
        ("path", l(&path.iter().map(|p| s(p)).collect::<Vec<_>>())),
    ])
}
fn multi(files: &[Vec<u8>], total: u64) -> Vec<u8> {
    let pieces = total.div_ceil(16384) as usize;
    let info = dict(&[
        ("files", l(files)),
        ("name", s("root")),
        ("piece length", i(16384)),
        ("pieces", bs(&vec![7u8; 20 * pieces])),
    ]);
    dict(&[("announce", s("http://t/a")), ("info", info)])
}

fn single() -> (Vec<u8>, Vec<u8>) {
    let info = dict(&[
        ("length", i(40000)),
        ("name", s("a.bin")),
        ("piece length", i(16384)),
        ("pieces", bs(&[1u8; 60])),
        ("private", i(1)),
    ]);
    let t = dict(&[
        ("announce", s("http://tracker/announce")),
        (
            "announce-list",
            l(&[
                l(&[s("http://a/1"), s("http://a/2")]),
                l(&[]),
                l(&[s("udp://b:1")]),
            ]),
        ),
        ("comment", s("hi")),
        ("created by", s("test")),
        ("creation date", i(1700000000)),
        ("info", info.clone()),
        ("url-list", s("http://seed/")),
    ]);
    (t, info)
}

#[test]
fn single_file_fields() {
    let (t, info) = single();
    let m = Metainfo::parse(&t).unwrap();
    assert_eq!(m.info_hash, InfoHash(Sha1::digest(&info).into()));
    assert_eq!(m.info_bytes, info);
    assert_eq!(m.info.name, "a.bin");
    assert_eq!(m.info.piece_count(), 3);
    assert_eq!(m.info.piece_size(PieceIndex(0)), 16384);
    assert_eq!(m.info.piece_size(PieceIndex(2)), 40000 - 2 * 16384);
    assert!(m.info.private);
    assert!(!m.info.multi_file);
    assert_eq!(m.info.files.len(), 1);
    assert_eq!(m.info.files[0].path, vec!["a.bin"]);
    assert_eq!(m.announce.as_deref(), Some("http://tracker/announce"));
    assert_eq!(
        m.announce_list,
        vec![vec!["http://a/1", "http://a/2"], vec!["udp://b:1"]]
    );
    assert_eq!(m.trackers(), m.announce_list);
    assert_eq!(m.url_list, vec!["http://seed/"]);
    assert_eq!(m.creation_date, Some(1700000000));
    assert_eq!(m.comment.as_deref(), Some("hi"));
    assert_eq!(m.created_by.as_deref(), Some("test"));
    let magnet = m.magnet();
    assert_eq!(magnet.info_hash, m.info_hash);
    assert_eq!(magnet.trackers, ["http://a/1", "http://a/2", "udp://b:1"]);
    assert_eq!(magnet.web_seeds, ["http://seed/"]);
    assert_eq!(Magnet::parse(&magnet.to_uri()), Ok(magnet));
}

#[test]
fn multi_file_offsets_and_padding() {
    let pad = dict(&[
        ("attr", s("p")),
        ("length", i(16384 - 100)),
        ("path", l(&[s(".pad"), s("16284")])),
    ]);
    let t = multi(
        &[
            file(100, &["a"]),
            pad.clone(),
            file(0, &["d", "empty"]),
            pad,
            file(5, &["d", "b"]),
        ],
        100 + 16284 + 16284 + 5,
    );
    let m = Metainfo::parse(&t).unwrap();
    let f = &m.info.files;
    assert!(m.info.multi_file);
    assert_eq!(f.len(), 5);
    assert_eq!(f[0].path, vec!["root", "a"]);
    assert!(f[1].attr.padding && f[3].attr.padding);
    assert_eq!(f[2].offset, 16384);
    assert_eq!(f[4].offset, 2 * 16384 - 100);
    assert_eq!(m.info.total_length, 100 + 2 * 16284 + 5);
}

#[test]
fn from_info_bytes_matches_the_torrent() {
    let (t, info) = single();
    let whole = Metainfo::parse(&t).unwrap();
    let bare = Metainfo::from_info_bytes(&info).unwrap();
    assert_eq!(bare.info_hash, whole.info_hash);
    assert_eq!(bare.info, whole.info);
    assert_eq!(bare.info_bytes, whole.info_bytes);
    assert!(bare.trackers().is_empty());
    assert!(Metainfo::from_info_bytes(b"li1ee").is_err());
    let mut trailing = info.clone();
    trailing.push(b'x');
    assert!(Metainfo::from_info_bytes(&trailing).is_err());
}

#[test]
fn unsorted_keys_hash_the_raw_bytes() {
    // Same content as `single`, keys reversed: accepted, and the hash differs because the
    // bytes differ (a re-encoding would have hidden that).
    let info = dict(&[
        ("pieces", bs(&[1u8; 20])),
        ("piece length", i(16384)),
        ("name", s("x")),
        ("length", i(5)),
    ]);
    let t = dict(&[("info", info.clone()), ("announce", s("http://t/"))]);
    let m = Metainfo::parse(&t).unwrap();
    assert_eq!(m.info_hash, InfoHash(Sha1::digest(&info).into()));
    assert_eq!(m.info.total_length, 5);
}

fn err(t: &[u8]) -> MetainfoError {
    Metainfo::parse(t).unwrap_err()
}

#[test]
fn missing_and_ill_typed_fields_are_named() {
    let no_info = dict(&[("announce", s("x"))]);
    assert_eq!(err(&no_info), missing("info"));
    let info = dict(&[("length", i(5)), ("name", s("x")), ("pieces", bs(&[0; 20]))]);
    assert_eq!(err(&dict(&[("info", info)])), missing("info.piece length"));
    let info = dict(&[
        ("length", s("5")),
        ("name", s("x")),
        ("piece length", i(16384)),
        ("pieces", bs(&[0; 20])),
    ]);
    assert_eq!(
        err(&dict(&[("info", info)])),
        wrong_type("info.length", "an integer")
    );
    let t = multi(&[dict(&[("path", l(&[s("a")]))])], 1);
    assert_eq!(err(&t), missing("info.files[0].length"));
    assert_eq!(err(b"li1ee"), wrong_type("", "a dictionary"));
    assert!(matches!(err(b"d4:infoi1e"), MetainfoError::Bencode(_)));
}

#[test]
fn pieces_must_match_the_length() {
    let mk = |pieces: &[u8], len: i64, plen: i64| {
        let info = dict(&[
            ("length", i(len)),
            ("name", s("x")),
            ("piece length", i(plen)),
            ("pieces", bs(pieces)),
        ]);
        err(&dict(&[("info", info)]))
    };
    assert!(
        matches!(mk(&[0; 21], 5, 16384), MetainfoError::Invalid { field, .. } if field == "info.pieces")
    );
    assert!(
        matches!(mk(&[0; 40], 5, 16384), MetainfoError::Invalid { field, .. } if field == "info.pieces")
    );
    assert!(
        matches!(mk(&[0; 20], 5, 0), MetainfoError::Invalid { field, .. } if field == "info.piece length")
    );
    assert!(
        matches!(mk(&[0; 20], 5, 1 << 40), MetainfoError::Invalid { field, .. } if field == "info.piece length")
    );
    assert!(matches!(mk(&[], 0, 16384), MetainfoError::Invalid { field, .. } if field == "info"));
    assert!(
        matches!(mk(&[0; 20], -5, 16384), MetainfoError::Invalid { field, .. } if field == "info.length")
    );
}

#[test]
fn unsafe_paths_are_refused() {
    for bad in [
        &[".."][..],
        &["a", "..", "b"],
        &["."],
        &[""],
        &["/etc"],
        &["a/b"],
        &["a\\b"],
        &["a\0"],
        &[],
    ] {
        let t = multi(&[file(1, bad)], 1);
        assert!(
            matches!(err(&t), MetainfoError::UnsafePath { .. }),
            "{bad:?} accepted"
        );
    }
    for bad_name in ["..", "", "a/b", "/"] {
        let info = dict(&[
            ("length", i(5)),
            ("name", s(bad_name)),
            ("piece length", i(16384)),
            ("pieces", bs(&[0; 20])),
        ]);
        assert!(
            matches!(
                err(&dict(&[("info", info)])),
                MetainfoError::UnsafePath { .. }
            ),
            "name {bad_name:?} accepted"
        );
    }
}

#[test]
fn duplicate_paths_are_refused() {
    let t = multi(&[file(1, &["a"]), file(1, &["a"])], 2);
    assert_eq!(
        err(&t),
        MetainfoError::DuplicatePath {
            path: "root/a".into()
        }
    );
    let t = multi(&[file(1, &["a"]), file(1, &["a", "b"])], 2);
    assert_eq!(
        err(&t),
        MetainfoError::DuplicatePath {
            path: "root/a".into()
        }
    );
}

#[test]
fn utf8_variants_win() {
    let info = dict(&[
        ("length", i(5)),
        ("name", bs(b"\xff\xfe")),
        ("name.utf-8", s("caf\u{e9}")),
        ("piece length", i(16384)),
        ("pieces", bs(&[0; 20])),
    ]);
    let m = Metainfo::parse(&dict(&[("info", info)])).unwrap();
    assert_eq!(m.info.name, "caf\u{e9}");
}

quickcheck! {
    fn arbitrary_bytes_never_panic(input: Vec<u8>) -> bool {
        let _ = Metainfo::parse(&input);
        true
    }

    fn mutated_torrents_never_panic(flips: Vec<(u16, u8)>) -> bool {
        let (mut t, _) = single();
        for (at, byte) in flips {
            let at = at as usize % t.len();
            t[at] = byte;
        }
        let _ = Metainfo::parse(&t);
        true
    }
}
