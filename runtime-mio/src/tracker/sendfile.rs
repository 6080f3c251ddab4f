//! File bytes to a socket. On Linux (and Android) through `sendfile(2)`: the kernel moves
//! them from the page cache to the socket, never through user space. Elsewhere through a
//! small buffer, read at the offset and written: what the socket did not take is read
//! again next time, so nothing is held between calls.

use std::io;

use mio::net::TcpStream;

use super::conn::FileBody;

/// The most one call sends: keeps one connection from holding the loop for long.
const MAX_CHUNK: u64 = 4 << 20;

/// Sends what the socket takes of `body` (at most [`MAX_CHUNK`]) and moves it on; `Ok(0)`
/// if the file ended before the span did.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(super) fn send(stream: &TcpStream, body: &mut FileBody) -> io::Result<usize> {
    let count = body.remaining.min(MAX_CHUNK) as usize;
    let mut offset = body.offset;
    let n = rustix::fs::sendfile(stream, &body.file, Some(&mut offset), count)
        .map_err(io::Error::from)?;
    body.offset += n as u64;
    body.remaining -= n as u64;
    Ok(n)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(super) fn send(stream: &TcpStream, body: &mut FileBody) -> io::Result<usize> {
    use std::io::Write as _;
    use std::os::unix::fs::FileExt as _;
    let mut buf = [0u8; 64 * 1024];
    let want = body.remaining.min(buf.len() as u64) as usize;
    let read = body.file.read_at(&mut buf[..want], body.offset)?;
    if read == 0 {
        return Ok(0);
    }
    let n = (&*stream).write(&buf[..read])?;
    body.offset += n as u64;
    body.remaining -= n as u64;
    Ok(n)
}
