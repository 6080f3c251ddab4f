//! Writing to the user without ever panicking.
//!
//! `println!` and `eprintln!` panic when the stream is gone (`shoal download … 2>&1 | head`
//! closes the pipe: EPIPE), which would end a download with exit code 101 and no
//! `stopped` to the trackers. What shoal tells the user goes through these instead: a
//! line that cannot be written is dropped, and the command goes on (and ends with its
//! usual 0, 1 or 130). indicatif's progress bar already ignores its write errors.

use std::io::Write;

/// One line on stderr; dropped if stderr is closed or failing.
pub fn err_line(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
}

/// One line on stdout; dropped if stdout is closed or failing.
pub fn out_line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// `text` on stdout as it is (no newline added); dropped if stdout is closed or failing.
pub fn out(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}
