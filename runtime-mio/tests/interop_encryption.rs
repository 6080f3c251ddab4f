//! Interop of message stream encryption (MSE/PE) with libtorrent, on loopback: libtorrent
//! with its default settings dials `shoal seed` with MSE first (shoal selects plaintext
//! after it); libtorrent allowed nothing but RC4 downloads byte for byte through shoal's
//! RC4 path; shoal dialling with MSE downloads from a libtorrent seed that takes only RC4,
//! and, preferring MSE, falls back to plaintext with one that has MSE disabled; and a
//! shoal seed that requires encryption refuses a plaintext libtorrent.
//!
//! How each connection went is read from libtorrent's side: lt.py prints `encryption
//! HOST:PORT rc4|plaintext-mse|none` from the peer's flags.
//!
//! Needs Debian's python3-libtorrent and mktorrent (`scripts/test` installs them). A
//! missing tool fails the test: it is never skipped.

mod support;

use support::*;

fn encryption_of(leech: &Proc, addr: &str) -> Vec<String> {
    leech.lines_with(&format!("encryption {addr} "))
}

/// Upload limits that stretch a transfer to about two seconds. libtorrent's report of a
/// peer's stream comes from a poll of its peer list every 50 ms, and the 4 MB on loopback
/// took milliseconds: the connection, its report with it, could be gone between two
/// polls on a busy machine.
const SLOW: [&str; 2] = ["--upload-limit", "2000000"];

/// `shoal seed` on `port`, uploading at most [`SLOW`], once it listens.
fn slow_shoal_seed(scene: &Scene, torrent: &std::path::Path, port: u16) -> Proc {
    let mut seed = shoal_seed_with(
        "shoal-seed",
        torrent,
        &scene.src(),
        port,
        &[],
        &SLOW,
        scene.dir(),
    );
    seed.wait_for(SHOAL_READY, scene.deadline);
    seed
}

/// libtorrent (lt.py `download` with `lt_flags`) downloads from a [`slow_shoal_seed`]; the
/// seed logs `shoal_says` of the connection and libtorrent reports its stream as
/// `lt_says`.
fn lt_from_shoal_seed(lt_flags: &[&str], shoal_says: &str, lt_says: &str) {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let port = free_port();
    let mut seed = slow_shoal_seed(&scene, &torrent, port);
    let leech = scene.lt_leech_from(&torrent, &mut seed, port, lt_flags);
    seed.wait_for(shoal_says, scene.deadline);
    let said = encryption_of(&leech, &format!("127.0.0.1:{port}"));
    assert_eq!(
        said,
        [format!("encryption 127.0.0.1:{port} {lt_says}")],
        "{}",
        leech.tail(30)
    );
}

/// MSE's handshake, then the payload in the clear: what shoal selects by default. Both
/// ends say so.
#[test]
fn libtorrent_with_default_settings_reaches_shoal_through_mse() {
    lt_from_shoal_seed(&[], "connected (MSE, plaintext)", "plaintext-mse");
}

#[test]
fn libtorrent_allowed_only_rc4_downloads_byte_exact_from_shoal() {
    lt_from_shoal_seed(&["--rc4-only"], "connected (MSE, RC4)", "rc4");
}

/// A libtorrent seed started with `seed_flags`, and shoal downloading from it (only) with
/// `--encryption POLICY`, checked byte for byte: the seed, the leecher and the seed's port.
fn shoal_from_lt_seed(scene: &Scene, seed_flags: &[&str], policy: &str) -> (Proc, Proc, u16) {
    let torrent = scene.torrent(None);
    let lt_port = free_port();
    let mut seed = lt_seed(
        "libtorrent-seed",
        &torrent,
        &scene.src(),
        lt_port,
        seed_flags,
        scene.dir(),
    );
    seed.wait_for("seeding", scene.deadline);
    let dl = scene.path("dl");
    let mut leech = shoal_download(
        "shoal-leech",
        &torrent,
        &dl,
        free_port(),
        &[lt_port],
        &["--no-seed", "--encryption", policy],
        scene.dir(),
    );
    leech.wait_success_watching(&mut seed, scene.deadline);
    scene.payload.assert_data(&dl);
    (seed, leech, lt_port)
}

#[test]
fn shoal_requiring_rc4_downloads_from_a_libtorrent_seed_that_takes_only_rc4() {
    let scene = Scene::new();
    let (mut seed, leech, _) =
        shoal_from_lt_seed(&scene, &["--rc4-only", SLOW[0], SLOW[1]], "require");
    assert!(leech.said("connected (MSE, RC4)"), "{}", leech.tail(30));
    let line = seed.wait_for_line("the peer's encryption", scene.deadline, |l| {
        l.starts_with("encryption ")
    });
    assert!(line.ends_with(" rc4"), "{line}\n{}", seed.tail(30));
}

/// `--encryption prefer` dials with MSE, its BitTorrent handshake as MSE's initial payload
/// (RC4-encrypted whatever is selected); a libtorrent seed with default settings takes it
/// and selects plaintext for the rest, and the download is byte-exact.
#[test]
fn shoal_preferring_mse_downloads_from_a_default_libtorrent_seed_that_selects_plaintext() {
    let scene = Scene::new();
    let (mut seed, leech, _) = shoal_from_lt_seed(&scene, &[SLOW[0], SLOW[1]], "prefer");
    assert!(
        leech.said("connected (MSE, plaintext)"),
        "{}",
        leech.tail(30)
    );
    let line = seed.wait_for_line("the peer's encryption", scene.deadline, |l| {
        l.starts_with("encryption ")
    });
    assert!(
        line.ends_with(" plaintext-mse"),
        "{line}\n{}",
        seed.tail(30)
    );
}

/// `--encryption prefer` dials with MSE; a libtorrent seed with MSE disabled closes that
/// dial, and shoal dials it again in plaintext and downloads.
#[test]
fn shoal_preferring_mse_falls_back_to_plaintext_with_a_libtorrent_seed_without_it() {
    let scene = Scene::new();
    let (_seed, leech, lt_port) = shoal_from_lt_seed(&scene, &["--plaintext-only"], "prefer");
    // The MSE dial closed by the seed, then the plaintext one (shoal's own account: the
    // seed's report of the peer's stream comes from a poll that may miss a short one).
    let lines = leech.lines_with(&format!("peer 127.0.0.1:{lt_port}"));
    assert!(
        lines
            .first()
            .is_some_and(|l| l.ends_with("closed: closed by the peer"))
            && lines.iter().any(|l| l.ends_with("connected (plaintext)")),
        "{}",
        leech.tail(20)
    );
}

#[test]
fn a_shoal_seed_that_requires_encryption_refuses_a_plaintext_libtorrent() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let port = free_port();
    let mut seed = shoal_seed_with(
        "shoal-seed",
        &torrent,
        &scene.src(),
        port,
        &[],
        &["--encryption", "require"],
        scene.dir(),
    );
    seed.wait_for(SHOAL_READY, scene.deadline);
    let dl = scene.path("dl");
    let _leech = lt_download_with(
        "libtorrent-leech",
        &torrent,
        &dl,
        free_port(),
        &[port],
        &["--plaintext"],
        scene.dir(),
    );
    seed.wait_for("handshake refused by the encryption policy", scene.deadline);
    assert!(
        scene.payload.check_data(&dl).is_err(),
        "nothing was downloaded"
    );
}
