//! Who may talk to the control server, and which requests may change anything.
//!
//! The rules, checked for every request before it is routed:
//!
//! - **Credentials** when the daemon has them (it must when it listens beyond loopback):
//!   HTTP Basic, compared in constant time; `401` otherwise.
//! - **Host** must name the address the daemon is bound to (`127.0.0.1:PORT`,
//!   `localhost:PORT`, `[::1]:PORT` on loopback): a page on another site that rebinds its
//!   DNS name to 127.0.0.1 still sends its own name, and is refused (`421`). With
//!   credentials the check is not needed (such a page does not have them) and any Host is
//!   taken, so remotes may use whatever name reaches the machine.
//! - **Origin**, when a browser sends one, must be this server itself (`403`): a page
//!   elsewhere cannot drive the daemon through the visitor's browser.
//! - **State changes** go only through `POST` with the `X-Transmission-Session-Id` the
//!   daemon handed out (`409` hands it out, as Transmission does). A foreign page can
//!   neither read that header (no CORS) nor guess it (random per daemon start).

use std::net::SocketAddr;

use base64::Engine as _;

use crate::http::{Request, Response};

/// The session-id header of the Transmission RPC.
pub const SESSION_HEADER: &str = "X-Transmission-Session-Id";

/// The checks of one daemon: its bound address, its session id, its credentials.
#[derive(Clone, Debug)]
pub struct Guard {
    bound: SocketAddr,
    session_id: String,
    /// `user:password`, if required.
    auth: Option<String>,
}

impl Guard {
    /// `session_id` should be random (a new one at each start).
    pub fn new(bound: SocketAddr, session_id: String, auth: Option<String>) -> Guard {
        Guard {
            bound,
            session_id,
            auth,
        }
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Whether a request may be looked at at all (credentials, Host, Origin); the answer
    /// to send if not.
    pub fn admit(&self, req: &Request) -> Result<(), Response> {
        if let Some(auth) = &self.auth {
            let given = req
                .header("authorization")
                .and_then(|v| {
                    v.strip_prefix("Basic ")
                        .or_else(|| v.strip_prefix("basic "))
                })
                .and_then(|b| {
                    base64::engine::general_purpose::STANDARD
                        .decode(b.trim())
                        .ok()
                })
                .unwrap_or_default();
            if !constant_time_eq(&given, auth.as_bytes()) {
                return Err(Response::text(401, "Unauthorized", "credentials needed")
                    .with_header("WWW-Authenticate", "Basic realm=\"shoal\""));
            }
        }
        let host = req.header("host").unwrap_or("");
        if self.auth.is_none() && !self.is_our_host(host) {
            return Err(Response::text(
                421,
                "Misdirected Request",
                &format!(
                    "Host {host:?} is not this daemon's address ({}): refused (DNS rebinding protection)",
                    self.bound
                ),
            ));
        }
        if let Some(origin) = req.header("origin") {
            let ours = origin
                .strip_prefix("http://")
                .is_some_and(|o| o.eq_ignore_ascii_case(host));
            if !ours {
                return Err(Response::text(
                    403,
                    "Forbidden",
                    &format!("requests from {origin} are refused"),
                ));
            }
        }
        Ok(())
    }

    /// Whether a state-changing request carries the session id; the `409` that hands it
    /// out if not.
    pub fn check_session(&self, req: &Request) -> Result<(), Response> {
        let given = req.header("x-transmission-session-id").unwrap_or("");
        if constant_time_eq(given.as_bytes(), self.session_id.as_bytes()) {
            return Ok(());
        }
        Err(Response::new(
            409,
            "Conflict",
            "text/html; charset=utf-8",
            format!(
                "<h1>409: Conflict</h1><p>Your request had an invalid session-id header.</p>\
                 <p><code>{SESSION_HEADER}: {}</code></p>",
                self.session_id
            )
            .into_bytes(),
        )
        .with_header(SESSION_HEADER, &self.session_id))
    }

    fn is_our_host(&self, host: &str) -> bool {
        let port = self.bound.port();
        let ip = self.bound.ip();
        let mut names = vec![match ip {
            std::net::IpAddr::V4(v4) => format!("{v4}:{port}"),
            std::net::IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        }];
        if ip.is_loopback() {
            names.push(format!("localhost:{port}"));
            names.push(format!("127.0.0.1:{port}"));
            names.push(format!("[::1]:{port}"));
        }
        names.iter().any(|n| n.eq_ignore_ascii_case(host))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request {
        Request {
            method: "POST".into(),
            path: "/transmission/rpc".into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            ..Request::default()
        }
    }

    fn guard(auth: Option<&str>) -> Guard {
        Guard::new(
            "127.0.0.1:9091".parse().unwrap(),
            "abc123".into(),
            auth.map(str::to_string),
        )
    }

    #[test]
    fn only_our_own_host_and_origin_are_admitted() {
        let g = guard(None);
        assert!(g.admit(&req(&[("host", "127.0.0.1:9091")])).is_ok());
        assert!(g.admit(&req(&[("host", "localhost:9091")])).is_ok());
        assert_eq!(
            g.admit(&req(&[("host", "evil.example:9091")]))
                .unwrap_err()
                .status,
            421
        );
        assert_eq!(g.admit(&req(&[])).unwrap_err().status, 421);
        assert_eq!(
            g.admit(&req(&[("host", "127.0.0.1:9092")]))
                .unwrap_err()
                .status,
            421
        );
        assert!(g
            .admit(&req(&[
                ("host", "127.0.0.1:9091"),
                ("origin", "http://127.0.0.1:9091")
            ]))
            .is_ok());
        assert_eq!(
            g.admit(&req(&[
                ("host", "127.0.0.1:9091"),
                ("origin", "http://evil.example")
            ]))
            .unwrap_err()
            .status,
            403
        );
    }

    #[test]
    fn credentials_when_set_are_required_and_any_host_is_then_taken() {
        let g = guard(Some("me:secret"));
        let good = base64::engine::general_purpose::STANDARD.encode("me:secret");
        let bad = base64::engine::general_purpose::STANDARD.encode("me:wrong");
        assert_eq!(
            g.admit(&req(&[("host", "127.0.0.1:9091")]))
                .unwrap_err()
                .status,
            401
        );
        let auth = format!("Basic {bad}");
        assert_eq!(
            g.admit(&req(&[("host", "h"), ("authorization", &auth)]))
                .unwrap_err()
                .status,
            401
        );
        let auth = format!("Basic {good}");
        assert!(g
            .admit(&req(&[("host", "nas.lan:9091"), ("authorization", &auth)]))
            .is_ok());
    }

    #[test]
    fn the_session_id_is_handed_out_by_a_409_and_then_required() {
        let g = guard(None);
        let refused = g.check_session(&req(&[])).unwrap_err();
        assert_eq!(refused.status, 409);
        assert_eq!(refused.header(SESSION_HEADER), Some("abc123"));
        assert!(g
            .check_session(&req(&[("x-transmission-session-id", "abc123")]))
            .is_ok());
        assert!(g
            .check_session(&req(&[("x-transmission-session-id", "abc124")]))
            .is_err());
    }
}
