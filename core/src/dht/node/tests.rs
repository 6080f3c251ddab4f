use super::*;

fn addr(n: u8, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, n), port)
}

fn node(now: Instant) -> Node {
    let config = Config {
        id: Some(NodeId([0x11; 20])),
        seed: 42,
        token_key: [9; 20],
        ..Config::default()
    };
    let mut node = Node::new(config, now);
    drain(&mut node);
    node
}

fn drain(node: &mut Node) -> Vec<Output> {
    std::iter::from_fn(|| node.poll_output()).collect()
}

fn query(tid: &[u8], id: u8, query: Query) -> Vec<u8> {
    Message {
        tid: Tid::from_slice(tid),
        body: Body::Query {
            id: NodeId([id; 20]),
            query,
            read_only: false,
        },
    }
    .encode()
}

/// Feeds a datagram and returns the one answer sent back to its source, if any.
fn ask(node: &mut Node, from: SocketAddrV4, data: &[u8], now: Instant) -> Option<Message> {
    node.handle(
        Input::Datagram {
            from: SocketAddr::V4(from),
            data,
        },
        now,
    );
    let mut answers = drain(node).into_iter().filter_map(|o| match o {
        Output::Send { to, data } if to == from => Some(Message::decode(&data).expect("ours")),
        _ => None,
    });
    let first = answers.next();
    assert!(answers.next().is_none(), "one answer per query");
    first
}

fn response(m: Option<Message>) -> Response {
    match m.map(|m| m.body) {
        Some(Body::Response(r)) => r,
        other => panic!("expected an answer, got {other:?}"),
    }
}

fn error_code(m: Option<Message>) -> i64 {
    match m.map(|m| m.body) {
        Some(Body::Error { code, .. }) => code,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn answers_the_four_queries_and_checks_tokens() {
    let now = shoal_test_clock::epoch();
    let mut n = node(now);
    let hash = InfoHash([0x33; 20]);
    let a = addr(1, 7000);
    let pong = response(ask(&mut n, a, &query(b"p1", 1, Query::Ping), now));
    assert_eq!(pong.id, NodeId([0x11; 20]));
    let found = response(ask(
        &mut n,
        addr(2, 7000),
        &query(
            b"f1",
            2,
            Query::FindNode {
                target: NodeId([1; 20]),
            },
        ),
        now,
    ));
    assert!(
        found.nodes.iter().any(|c| c.addr == a),
        "the pinger was learned"
    );
    let got = response(ask(
        &mut n,
        a,
        &query(b"g1", 1, Query::GetPeers { info_hash: hash }),
        now,
    ));
    let token = got.token.expect("a token");
    assert!(got.values.is_empty());
    // The token of another address, or a made-up one, is refused.
    let forged = Query::AnnouncePeer {
        info_hash: hash,
        port: 6881,
        implied_port: false,
        token: b"12345678".to_vec(),
    };
    assert_eq!(
        error_code(ask(&mut n, a, &query(b"a0", 1, forged), now)),
        code::PROTOCOL
    );
    let stolen = Query::AnnouncePeer {
        info_hash: hash,
        port: 6881,
        implied_port: false,
        token: token.clone(),
    };
    assert_eq!(
        error_code(ask(&mut n, addr(3, 7000), &query(b"a1", 3, stolen), now)),
        code::PROTOCOL
    );
    assert_eq!(n.stats().bad_tokens, 2);
    let ok = Query::AnnouncePeer {
        info_hash: hash,
        port: 6881,
        implied_port: false,
        token: token.clone(),
    };
    response(ask(&mut n, a, &query(b"a2", 1, ok), now));
    let implied = Query::AnnouncePeer {
        info_hash: hash,
        port: 1,
        implied_port: true,
        token,
    };
    let b = addr(1, 7001);
    response(ask(&mut n, b, &query(b"a3", 1, implied), now));
    let got = response(ask(
        &mut n,
        addr(4, 7000),
        &query(b"g2", 4, Query::GetPeers { info_hash: hash }),
        now,
    ));
    let mut values = got.values;
    values.sort();
    assert_eq!(values, vec![addr(1, 6881), addr(1, 7001)]);
    assert_eq!(n.stored(), (1, 2));
}

#[test]
fn malformed_queries_get_errors_and_garbage_gets_nothing() {
    let now = shoal_test_clock::epoch();
    let mut n = node(now);
    let a = addr(1, 7000);
    let bad_id = b"d1:ad2:id3:abce1:q4:ping1:t2:xy1:y1:qe";
    let m = ask(&mut n, a, bad_id, now);
    assert_eq!(m.as_ref().map(|m| &m.tid[..]), Some(&b"xy"[..]));
    assert_eq!(error_code(m), code::PROTOCOL);
    let unknown = b"d1:ad2:id20:abcdefghij0123456789e1:q4:vote1:t2:xy1:y1:qe";
    assert_eq!(
        error_code(ask(&mut n, a, unknown, now)),
        code::METHOD_UNKNOWN
    );
    assert!(ask(&mut n, a, b"not bencode", now).is_none());
    assert!(ask(&mut n, a, &[b'd'; 5000], now).is_none());
    // An answer to a request we never sent, and one from the wrong address.
    let stray = Message {
        tid: Tid::from_slice(b"zz"),
        body: Body::Response(Response {
            id: NodeId([5; 20]),
            ..Response::default()
        }),
    };
    assert!(ask(&mut n, a, &stray.encode(), now).is_none());
    assert_eq!(n.stats().unexpected, 1);
    assert_eq!(n.table().len(), 0, "nothing learned from garbage or strays");
}

#[test]
fn a_flooding_source_is_cut_off_until_the_next_window() {
    let now = shoal_test_clock::epoch();
    let mut n = node(now);
    let a = addr(1, 7000);
    let mut answered = 0;
    for i in 0..400u16 {
        if ask(&mut n, a, &query(&i.to_be_bytes(), 1, Query::Ping), now).is_some() {
            answered += 1;
        }
    }
    assert_eq!(answered, RateLimit::default().queries);
    assert!(
        ask(&mut n, addr(2, 7000), &query(b"x", 2, Query::Ping), now).is_some(),
        "others still answered"
    );
    let later = now + RateLimit::default().window;
    assert!(ask(&mut n, a, &query(b"y", 1, Query::Ping), later).is_some());
}

#[test]
fn bootstraps_from_a_saved_table_and_times_out_silent_nodes() {
    let now = shoal_test_clock::epoch();
    let saved: Vec<Contact> = (1..=3)
        .map(|i| Contact {
            id: NodeId([i; 20]),
            addr: addr(i, 6881),
        })
        .collect();
    let config = Config {
        id: Some(NodeId([0x11; 20])),
        saved_nodes: saved.clone(),
        bootstrap: vec![addr(99, 6881)],
        ..Config::default()
    };
    let mut n = Node::new(config, now);
    let mut sent: Vec<SocketAddrV4> = drain(&mut n)
        .into_iter()
        .filter_map(|o| match o {
            Output::Send { to, .. } => Some(to),
            _ => None,
        })
        .collect();
    sent.sort();
    // α = 3 at once: the bootstrap address sorts first (unknown id), then the saved nodes.
    assert_eq!(sent.len(), 3);
    assert!(sent.contains(&addr(99, 6881)));
    assert_eq!(
        n.export_table(),
        krpc::compact_nodes(&saved),
        "what was imported exports"
    );
    // Nobody answers: after the timeouts the lookup ends and the silent nodes go bad.
    let mut t = now;
    for _ in 0..20 {
        t = n.poll_timeout().expect("a timer").max(t);
        n.handle(Input::Timeout, t);
        drain(&mut n);
    }
    assert!(n.stats().timeouts >= 4);
    assert!(n.table().entries().all(|e| e.fails > 0));
}

#[test]
fn same_seed_same_bytes() {
    let now = shoal_test_clock::epoch();
    let run = || {
        let config = Config {
            seed: 7,
            bootstrap: vec![addr(99, 6881)],
            ..Config::default()
        };
        let mut n = Node::new(config, now);
        let mut out = drain(&mut n);
        ask(
            &mut n,
            addr(1, 7000),
            &query(
                b"g1",
                1,
                Query::GetPeers {
                    info_hash: InfoHash([1; 20]),
                },
            ),
            now,
        );
        out.extend(drain(&mut n));
        (n.id(), out)
    };
    assert_eq!(run(), run());
}

#[test]
fn a_slow_node_does_not_hold_a_lookup_back() {
    let now = shoal_test_clock::epoch();
    let saved: Vec<Contact> = (1..=4)
        .map(|i| Contact {
            id: NodeId([i; 20]),
            addr: addr(i, 6881),
        })
        .collect();
    let config = Config {
        id: Some(NodeId([0x11; 20])),
        saved_nodes: saved,
        ..Config::default()
    };
    let stall = config.stall_timeout;
    let mut n = Node::new(config, now);
    let sends = |out: Vec<Output>| {
        out.into_iter()
            .filter(|o| matches!(o, Output::Send { .. }))
            .count()
    };
    assert_eq!(sends(drain(&mut n)), 3, "α requests");
    assert_eq!(n.poll_timeout(), Some(now + stall));
    n.handle(Input::Timeout, now + stall);
    assert_eq!(
        sends(drain(&mut n)),
        1,
        "the fourth node asked in their place"
    );
}

#[test]
fn bep_42_ids_made_and_enforced() {
    let now = shoal_test_clock::epoch();
    let public = Ipv4Addr::new(124, 31, 75, 21);
    let config = Config {
        external_ip: Some(public),
        enforce_node_ids: true,
        ..Config::default()
    };
    let mut n = Node::new(config, now);
    assert!(secure::is_valid(&n.id(), public));
    let stranger = SocketAddrV4::new(Ipv4Addr::new(21, 75, 31, 124), 6881);
    let mut rng = Rng::new(3);
    let bad_id = NodeId([0x42; 20]);
    let ping = |id: NodeId| {
        Message {
            tid: Tid::from_slice(b"pp"),
            body: Body::Query {
                id,
                query: Query::Ping,
                read_only: false,
            },
        }
        .encode()
    };
    assert!(
        ask(&mut n, stranger, &ping(bad_id), now).is_some(),
        "still answered"
    );
    assert_eq!(n.table().len(), 0, "but not in the table");
    let good_id = secure::id_for(*stranger.ip(), 86, &mut rng);
    ask(&mut n, stranger, &ping(good_id), now);
    assert_eq!(n.table().len(), 1);
    // Local addresses are exempt.
    ask(&mut n, addr(1, 6881), &ping(bad_id), now);
    assert_eq!(n.table().len(), 2);
}

#[test]
fn answers_with_our_own_id_or_a_crowd_of_contacts_stay_bounded() {
    let now = shoal_test_clock::epoch();
    let own = NodeId([0x11; 20]);
    let saved: Vec<Contact> = (1..=3)
        .map(|i| Contact {
            id: NodeId([i; 20]),
            addr: addr(i, 6881),
        })
        .collect();
    let config = Config {
        id: Some(own),
        saved_nodes: saved,
        ..Config::default()
    };
    let mut n = Node::new(config, now);
    let requests: Vec<(SocketAddrV4, Tid)> = drain(&mut n)
        .into_iter()
        .filter_map(|o| match o {
            Output::Send { to, data } => Some((to, Message::decode(&data).unwrap().tid)),
            _ => None,
        })
        .collect();
    assert_eq!(requests.len(), 3);
    let answer = |tid: &Tid, id: NodeId, nodes: Vec<Contact>| {
        Message {
            tid: tid.clone(),
            body: Body::Response(Response {
                id,
                nodes,
                ..Response::default()
            }),
        }
        .encode()
    };
    // A node claiming our id is not learned.
    let (to, tid) = &requests[0];
    let data = answer(tid, own, vec![]);
    n.handle(
        Input::Datagram {
            from: SocketAddr::V4(*to),
            data: &data,
        },
        now,
    );
    drain(&mut n);
    assert!(n.table().entries().all(|e| e.contact.id != own));
    // As many contacts as fit a datagram: taken, bounded, and only α requests follow.
    let crowd: Vec<Contact> = (0..75u32)
        .map(|i| Contact {
            id: NodeId([0x11 ^ (i as u8 + 1); 20]),
            addr: SocketAddrV4::new(Ipv4Addr::from(0x0b00_0000 + i), 6881),
        })
        .collect();
    let (to, tid) = &requests[1];
    let data = answer(tid, NodeId([2; 20]), crowd);
    assert!(data.len() <= krpc::MAX_DATAGRAM);
    n.handle(
        Input::Datagram {
            from: SocketAddr::V4(*to),
            data: &data,
        },
        now,
    );
    let sent = drain(&mut n)
        .into_iter()
        .filter(|o| matches!(o, Output::Send { .. }))
        .count();
    assert!(sent <= 3, "{sent} requests after one answer");
    // The same answer again (a replay) matches no request any more.
    let before = n.stats().unexpected;
    n.handle(
        Input::Datagram {
            from: SocketAddr::V4(*to),
            data: &data,
        },
        now,
    );
    assert_eq!(n.stats().unexpected, before + 1);
}
