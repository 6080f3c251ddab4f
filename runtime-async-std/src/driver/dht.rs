//! The DHT (BEP 5) of a session with [`SessionConfig::dht`](crate::SessionConfig) set: the
//! engine's node runs on the session's UDP socket (the engine tells its datagrams from UDP
//! trackers'); here it is started with its saved table and literal bootstrap addresses,
//! given the routers' addresses as their names resolve, and its table saved when the
//! session ends. Names are resolved on a thread of their own that nobody waits for, so a
//! lookup that hangs (offline) delays neither the session nor its shutdown.

use std::net::SocketAddrV4;
use std::time::Instant;

use super::{Driver, Msg};

impl Driver {
    /// Starts the engine's DHT if the session's settings ask for it.
    pub(super) fn start_dht(&mut self) {
        let Some(settings) = self.config.dht.clone() else {
            return;
        };
        let (literal, names) = shoal_io::dht::split_literal(&settings.bootstrap);
        let config = shoal_io::dht::config(settings.state.as_deref(), literal);
        self.engine.start_dht(config, Instant::now());
        if !names.is_empty() {
            let inbox = self.inbox_tx.clone();
            let _ = std::thread::Builder::new()
                .name("shoal-dht-routers".into())
                .spawn(move || {
                    for name in names {
                        if let Ok(addrs) = shoal_io::dht::resolve(&name) {
                            if inbox.send_blocking(Msg::DhtRouters(addrs)).is_err() {
                                return;
                            }
                        }
                    }
                });
        }
        self.drain();
    }

    /// Routers' addresses, resolved.
    pub(super) fn dht_routers(&mut self, addrs: Vec<SocketAddrV4>) {
        let now = Instant::now();
        for addr in addrs {
            self.engine.add_dht_node(addr, now);
        }
    }

    /// Saves the routing table where the settings say (an empty one is not saved: it
    /// would replace a useful one). Returns what went wrong, if anything.
    pub(super) fn save_dht(&self) -> Option<String> {
        let folder = self.config.dht.as_ref()?.state.as_ref()?;
        let (id, nodes) = self.engine.dht_export()?;
        if nodes.is_empty() {
            return None;
        }
        shoal_io::dht::save(folder, id, &nodes).err().map(|e| {
            format!(
                "the DHT's table was not saved: {}: {e}",
                shoal_io::dht::state_path(folder).display()
            )
        })
    }
}
