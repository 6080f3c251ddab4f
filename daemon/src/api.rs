//! The control server's routes: every request goes through the [`Guard`], then to the
//! page's assets or to the Transmission RPC. No socket here: [`Api::handle`] turns a
//! [`Request`] into a [`Response`], so every rule is tested without a network.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /` | the page (HTML, its script and style from [`crate::page`]) |
//! | `POST /transmission/rpc` | the Transmission RPC ([`crate::rpc`]); the page uses it too |
//! | `GET /transmission/web/` | where Transmission's own page is: sent to `/` |
//!
//! Only `POST /transmission/rpc` changes anything, and only with the session id.

use crate::control::Control;
use crate::guard::Guard;
use crate::http::{Request, Response};
use crate::page;

/// The RPC's path, as Transmission has it.
pub const RPC_PATH: &str = "/transmission/rpc";

/// Request handling of one daemon.
#[derive(Clone, Debug)]
pub struct Api {
    pub guard: Guard,
}

impl Api {
    pub fn new(guard: Guard) -> Api {
        Api { guard }
    }

    /// The answer to `req`.
    pub fn handle(&self, req: &Request, ctrl: &mut dyn Control) -> Response {
        if let Err(refused) = self.guard.admit(req) {
            return refused;
        }
        // transmission-remote asks for `/transmission/rpc/`.
        let path = match req.path.strip_suffix('/') {
            Some(p) if p == RPC_PATH => RPC_PATH,
            _ => req.path.as_str(),
        };
        match (req.method.as_str(), path) {
            ("POST", RPC_PATH) => {
                if let Err(refused) = self.guard.check_session(req) {
                    return refused;
                }
                Response::json(&crate::rpc::handle(&req.body, ctrl))
            }
            (_, RPC_PATH) => Response::text(405, "Method Not Allowed", "the RPC takes POST")
                .with_header("Allow", "POST"),
            ("GET" | "HEAD", path) => match page::asset(path) {
                Some((content_type, body)) => {
                    Response::new(200, "OK", content_type, body.as_bytes().to_vec())
                        // The page is never framed by another site.
                        .with_header("X-Frame-Options", "DENY")
                        .with_header(
                            "Content-Security-Policy",
                            "default-src 'self'; frame-ancestors 'none'",
                        )
                }
                None if path.starts_with("/transmission/web") => {
                    Response::text(301, "Moved Permanently", "/").with_header("Location", "/")
                }
                None => Response::text(404, "Not Found", "no such page"),
            },
            _ => Response::text(405, "Method Not Allowed", "only GET here")
                .with_header("Allow", "GET"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::tests::Fake;

    fn api() -> Api {
        Api::new(Guard::new(
            "127.0.0.1:9091".parse().unwrap(),
            "sid".into(),
            None,
        ))
    }

    fn req(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
            ..Request::default()
        }
    }

    const HOST: (&str, &str) = ("host", "127.0.0.1:9091");
    const SID: (&str, &str) = ("x-transmission-session-id", "sid");
    const STOP: &str = r#"{"method":"torrent-stop","arguments":{"ids":[1]}}"#;

    #[test]
    fn a_state_change_needs_post_the_session_id_and_our_host() {
        let api = api();
        let mut fake = Fake::with_one();
        // No session id: the 409 exchange, nothing done.
        let r = api.handle(&req("POST", RPC_PATH, &[HOST], STOP), &mut fake);
        assert_eq!(r.status, 409);
        assert!(fake.calls.is_empty());
        // GET never changes anything, even with the id.
        let r = api.handle(&req("GET", RPC_PATH, &[HOST, SID], STOP), &mut fake);
        assert_eq!(r.status, 405);
        assert!(fake.calls.is_empty());
        // A rebinding page: another Host.
        let r = api.handle(
            &req(
                "POST",
                RPC_PATH,
                &[("host", "attacker.example:9091"), SID],
                STOP,
            ),
            &mut fake,
        );
        assert_eq!(r.status, 421);
        // A foreign origin with the right host and id.
        let r = api.handle(
            &req(
                "POST",
                RPC_PATH,
                &[HOST, SID, ("origin", "http://attacker.example")],
                STOP,
            ),
            &mut fake,
        );
        assert_eq!(r.status, 403);
        assert!(fake.calls.is_empty());
        // All right: done.
        let r = api.handle(&req("POST", RPC_PATH, &[HOST, SID], STOP), &mut fake);
        assert_eq!(r.status, 200);
        assert_eq!(fake.calls, vec!["stop [1]".to_string()]);
    }

    #[test]
    fn the_page_and_its_assets_are_served() {
        let api = api();
        let mut fake = Fake::with_one();
        let r = api.handle(&req("GET", "/", &[HOST], ""), &mut fake);
        assert_eq!(r.status, 200);
        assert!(String::from_utf8_lossy(&r.body).contains("<title>shoal</title>"));
        for path in ["/app.js", "/style.css"] {
            assert_eq!(
                api.handle(&req("GET", path, &[HOST], ""), &mut fake).status,
                200
            );
        }
        assert_eq!(
            api.handle(&req("GET", "/nope", &[HOST], ""), &mut fake)
                .status,
            404
        );
        assert!(fake.calls.is_empty());
    }
}
