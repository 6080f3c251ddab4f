//! The link handler: a freedesktop desktop entry that opens `.torrent` files and magnet
//! links with `shoal add`, so a link clicked in a browser lands in the running daemon.
//!
//! `shoal install-handler` writes [`entry`] as `$XDG_DATA_HOME/applications/`[`FILE_NAME`]
//! and registers it with `xdg-mime default` for each of [`MIME_TYPES`]; `--uninstall`
//! removes the file (and xdg-mime then falls back to whatever else handles them).

/// The entry's file name (its desktop-file id).
pub const FILE_NAME: &str = "shoal.desktop";

/// What the entry handles.
pub const MIME_TYPES: [&str; 2] = ["application/x-bittorrent", "x-scheme-handler/magnet"];

/// The desktop entry for the `shoal` binary at `exe`.
pub fn entry(exe: &str) -> String {
    format!(
        "[Desktop Entry]\n\
         Type=Application\n\
         Name=shoal\n\
         GenericName=BitTorrent client\n\
         Comment=Add torrents and magnet links to the shoal daemon\n\
         Exec={} add %u\n\
         Terminal=false\n\
         NoDisplay=true\n\
         Categories=Network;FileTransfer;P2P;\n\
         MimeType={};\n",
        quote_exec(exe),
        MIME_TYPES.join(";")
    )
}

/// Quotes a path for an `Exec` line when it needs it (the desktop entry spec's rules:
/// double quotes, with `"`, `` ` ``, `$` and `\` escaped).
fn quote_exec(arg: &str) -> String {
    let plain = arg
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c));
    if plain {
        return arg.to_string();
    }
    let mut out = String::from("\"");
    for c in arg.chars() {
        if matches!(c, '"' | '`' | '$' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    // `%` is a field code even inside quotes: doubled.
    out.replace('%', "%%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_runs_shoal_add_with_the_link_for_both_types() {
        let e = entry("/usr/bin/shoal");
        assert!(e.contains("\nExec=/usr/bin/shoal add %u\n"));
        assert!(e.contains("MimeType=application/x-bittorrent;x-scheme-handler/magnet;\n"));
        let odd = entry("/opt/my apps/sh$oal%");
        assert!(
            odd.contains("Exec=\"/opt/my apps/sh\\$oal%%\" add %u"),
            "{odd}"
        );
    }
}
