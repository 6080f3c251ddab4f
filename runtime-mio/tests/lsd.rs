//! Local service discovery (BEP 14) between two `shoal` processes that know nothing of
//! each other (no tracker, no `--peer`): a seed and a download, both with `--lsd`, find
//! each other through the multicast group and the download completes.
//!
//! Plain loopback carries no multicast here, and LSD must never reach a real network: the
//! test makes a network namespace of its own (`ip netns`, as root; `scripts/test` runs as
//! root or with sudo), with only its loopback, multicast on and a route for 239/8, runs
//! both processes inside it and deletes it at the end.

mod support;

use support::*;

#[test]
fn two_shoal_processes_find_each_other_by_local_service_discovery() {
    // Declared first, dropped last: the processes end before their namespace goes.
    let ns = Netns::new();
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let (ps, pd) = (free_port(), free_port());
    let net = |port: u16| {
        vec![
            "--plain".to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--lsd".into(),
        ]
    };
    let t = torrent.to_str().unwrap();
    let src = scene.src();
    let mut args = vec!["seed".to_string(), t.into(), src.to_str().unwrap().into()];
    args.extend(net(ps));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = ns.command(SHOAL, &args);
    cmd.env("SHOAL_VERBOSE", "1");
    let mut seed = Proc::spawn("shoal-seed", cmd, scene.dir());
    seed.wait_for(SHOAL_READY, scene.deadline);

    let dl = scene.path("dl");
    let mut args = vec![
        "download".to_string(),
        t.into(),
        "-o".into(),
        dl.to_str().unwrap().into(),
        "--no-seed".into(),
    ];
    args.extend(net(pd));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = ns.command(SHOAL, &args);
    cmd.env("SHOAL_VERBOSE", "1");
    let mut leech = Proc::spawn("shoal-download", cmd, scene.dir());
    leech.wait_success_watching(&mut seed, scene.deadline);
    scene.payload.assert_data(&dl);
    assert!(leech.said("peer 127.0.0.1:"), "{}", leech.tail(20));
    seed.terminate(std::time::Duration::from_secs(10));
}

#[test]
fn without_lsd_a_download_with_no_source_is_refused() {
    // Without --lsd nothing joins the group: a download with no tracker and no peer is
    // refused at once, as before LSD existed.
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let mut leech = shoal_download(
        "shoal-download",
        &torrent,
        &scene.path("dl"),
        free_port(),
        &[],
        &[],
        scene.dir(),
    );
    let status = leech.wait_exit(scene.deadline);
    assert_eq!(status.code(), Some(1), "{}", leech.tail(10));
    assert!(leech.said("no way to find peers"), "{}", leech.tail(10));
}
