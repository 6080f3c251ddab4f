use super::*;
use quickcheck::{quickcheck, Arbitrary, Gen};

fn id(g: &mut Gen) -> NodeId {
    let mut b = [0u8; 20];
    for x in &mut b {
        *x = u8::arbitrary(g);
    }
    NodeId(b)
}

fn addr(g: &mut Gen) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::from(u32::arbitrary(g)), u16::arbitrary(g))
}

fn bytes(g: &mut Gen, max: usize) -> Vec<u8> {
    let n = usize::arbitrary(g) % (max + 1);
    (0..n).map(|_| u8::arbitrary(g)).collect()
}

impl Arbitrary for Message {
    fn arbitrary(g: &mut Gen) -> Message {
        let tid = Tid::from_vec(bytes(g, MAX_TID));
        let body = match u8::arbitrary(g) % 7 {
            0 => Body::Query {
                id: id(g),
                query: Query::Ping,
                read_only: bool::arbitrary(g),
            },
            1 => Body::Query {
                id: id(g),
                query: Query::FindNode { target: id(g) },
                read_only: false,
            },
            2 => Body::Query {
                id: id(g),
                query: Query::GetPeers {
                    info_hash: InfoHash(id(g).0),
                },
                read_only: false,
            },
            3 => {
                let implied_port = bool::arbitrary(g);
                Body::Query {
                    id: id(g),
                    query: Query::AnnouncePeer {
                        info_hash: InfoHash(id(g).0),
                        port: u16::arbitrary(g).max(1),
                        implied_port,
                        token: bytes(g, MAX_TOKEN),
                    },
                    read_only: false,
                }
            }
            4 | 5 => Body::Response(Response {
                id: id(g),
                nodes: (0..usize::arbitrary(g) % 9)
                    .map(|_| Contact {
                        id: id(g),
                        addr: addr(g),
                    })
                    .collect(),
                values: (0..usize::arbitrary(g) % 20).map(|_| addr(g)).collect(),
                token: bool::arbitrary(g).then(|| bytes(g, MAX_TOKEN)),
            }),
            _ => Body::Error {
                code: i64::from(u16::arbitrary(g)),
                message: bytes(g, 40),
            },
        };
        Message { tid, body }
    }
}

quickcheck! {
    fn every_message_reads_back(m: Message) -> bool {
        let bytes = m.encode();
        bencode::decode(&bytes).map(|v| v.is_canonical()).unwrap_or(false)
            && Message::decode(&bytes) == Ok(m)
    }

    fn arbitrary_bytes_never_panic(data: Vec<u8>) -> bool {
        let _ = Message::decode(&data);
        true
    }
}

#[test]
fn reads_the_examples_of_bep_5() {
    let ping =
        Message::decode(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe").expect("ping");
    assert_eq!(&ping.tid[..], b"aa");
    assert!(matches!(
        ping.body,
        Body::Query {
            query: Query::Ping,
            ..
        }
    ));
    let announce = Message::decode(
        b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
    )
    .expect("announce_peer");
    match announce.body {
        Body::Query {
            query:
                Query::AnnouncePeer {
                    info_hash,
                    port,
                    implied_port,
                    token,
                },
            ..
        } => {
            assert_eq!(&info_hash.0, b"mnopqrstuvwxyz123456");
            assert_eq!(
                (port, implied_port, &token[..]),
                (6881, true, &b"aoeusnth"[..])
            );
        }
        other => panic!("{other:?}"),
    }
    let peers = Message::decode(
        b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
    )
    .expect("get_peers answer");
    match peers.body {
        Body::Response(r) => {
            assert_eq!(r.values.len(), 2);
            assert_eq!(
                r.values[0],
                SocketAddrV4::new(Ipv4Addr::new(97, 120, 106, 101), 0x2e75)
            );
            assert_eq!(r.token.as_deref(), Some(&b"aoeusnth"[..]));
        }
        other => panic!("{other:?}"),
    }
    let error = Message::decode(b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee").unwrap();
    assert_eq!(
        error.body,
        Body::Error {
            code: 201,
            message: b"A Generic Error Ocurred".to_vec()
        }
    );
}

#[test]
fn malformed_queries_keep_their_transaction_id_for_the_error_answer() {
    let e = Message::decode(b"d1:ad2:id3:abce1:q4:ping1:t2:xy1:y1:qe").unwrap_err();
    assert_eq!(e.tid.as_deref(), Some(&b"xy"[..]));
    assert!(e.query);
    assert_eq!(e.kind, DecodeErrorKind::BadField("id"));
    let e =
        Message::decode(b"d1:ad2:id20:abcdefghij0123456789e1:q4:vote1:t2:xy1:y1:qe").unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::UnknownMethod);
}

#[test]
fn oversized_and_odd_inputs_are_refused() {
    assert_eq!(
        Message::decode(&vec![b'a'; MAX_DATAGRAM + 1])
            .unwrap_err()
            .kind,
        DecodeErrorKind::TooLarge
    );
    // A nodes string that is not a whole number of entries.
    let e = Message::decode(b"d1:rd2:id20:abcdefghij01234567895:nodes3:abce1:t2:aa1:y1:re")
        .unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::BadField("nodes"));
    // More values than the limit allows.
    let mut many = b"d1:rd2:id20:abcdefghij01234567896:valuesl".to_vec();
    for _ in 0..600 {
        many.extend_from_slice(b"6:abcdef");
    }
    many.extend_from_slice(b"ee1:t2:aa1:y1:re");
    assert!(many.len() <= MAX_DATAGRAM * 3);
    assert!(Message::decode(&many).is_err());
    // A transaction id longer than we echo.
    assert!(Message::decode(
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t17:aaaaaaaaaaaaaaaaa1:y1:qe"
    )
    .is_err());
}
