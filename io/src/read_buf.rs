//! Read buffers for peer connections, recycled once the blocks sliced from them are gone.
//!
//! A runtime reads a connection's bytes into a [`ReadBuf`] and hands what it read to the
//! engine as the front of that buffer, split off without a copy. Downloaded blocks stay
//! slices of it until their piece is hashed and written, so a buffer is busy long after
//! the connection has moved on to the next one.
//!
//! Made fresh each time, every buffer would cost a pass over new memory before a byte is
//! read into it: zeroing (safe Rust reads only into initialized bytes) and, for new pages,
//! the kernel's page faults. Both cost about what the socket copy itself costs. So a
//! connection retires a full buffer into its runtime's [`ReadBuffers`] instead of dropping
//! it, and takes the next one from there: the oldest retired buffer whose blocks have all
//! been dropped is reused as it is, its bytes already initialized and its pages mapped and
//! likely still in cache. Only when none is free is a new one made (zeroed).
//!
//! Memory is bounded: a runtime keeps at most [`MAX_SPARE_BYTES`] of retired buffers.
//! Past that the oldest is let go (its memory is freed when its last block is), so at
//! most that much is held beyond what the disk budget already counts in blocks.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::BytesMut;

/// The room made in a connection's buffer when it runs low starts here and doubles while
/// reads fill it, so a fast peer gets big buffers (few partial messages to join across
/// them) and an idle one keeps a small one.
pub const MIN_READ_CHUNK: usize = 4 * 1024;
/// The largest room made at once. A buffer lives until its last block is written, so small
/// buffers keep one block of a piece that is slow to complete from holding much memory
/// beyond itself.
pub const MAX_READ_CHUNK: usize = 256 * 1024;
/// Most bytes of retired buffers a runtime keeps for reuse (busy or free).
pub const MAX_SPARE_BYTES: usize = 8 << 20;

/// A runtime's retired read buffers, shared by all its connections (and threads).
#[derive(Debug, Default)]
pub struct ReadBuffers {
    spares: Mutex<Spares>,
}

#[derive(Debug, Default)]
struct Spares {
    /// Oldest first, each with the size of its allocation. Every buffer here was made by
    /// [`ReadBuffers::fresh`]: each byte of its allocation has been written.
    queue: VecDeque<(BytesMut, usize)>,
    /// The sum of their allocations.
    bytes: usize,
}

impl ReadBuffers {
    /// No buffers yet.
    pub fn new() -> ReadBuffers {
        ReadBuffers::default()
    }

    /// Bytes of retired buffers kept now (those blocks still point into included).
    pub fn spare_bytes(&self) -> usize {
        self.spares.lock().map_or(0, |s| s.bytes)
    }

    /// A buffer of between `chunk` and twice that many bytes of room, with the size of its
    /// allocation: a retired one nobody points into any more, or a new zeroed one.
    fn take(&self, chunk: usize) -> (BytesMut, usize) {
        if let Ok(mut spares) = self.spares.lock() {
            let found = spares.queue.iter_mut().position(|(buf, alloc)| {
                // Asking for the whole allocation succeeds only for its sole owner, which
                // gets it from its start; `try_reclaim` never allocates.
                (chunk..=2 * chunk).contains(alloc) && {
                    buf.clear();
                    buf.try_reclaim(*alloc)
                }
            });
            if let Some(i) = found {
                let (mut buf, alloc) = spares.queue.remove(i).expect("found at i");
                spares.bytes -= alloc;
                debug_assert!(buf.capacity() >= alloc);
                // SAFETY: `buf` is now a view of `alloc` bytes of room from the start of an
                // allocation of `alloc` bytes that `fresh` made and wrote whole; the
                // reclaim moved the view within it and allocated nothing. Bytes once
                // written stay initialized, whatever earlier owners did with them, so
                // these `alloc` bytes are initialized `u8`s.
                unsafe { buf.set_len(alloc) };
                return (buf, alloc);
            }
        }
        Self::fresh(chunk)
    }

    /// A new buffer of `chunk` (or a few more) zeroed bytes, its whole allocation written.
    fn fresh(chunk: usize) -> (BytesMut, usize) {
        let mut buf = BytesMut::with_capacity(chunk);
        let alloc = buf.capacity();
        buf.resize(alloc, 0);
        (buf, alloc)
    }

    /// Keeps `buf` (done with by its connection), an allocation of `alloc` bytes made by
    /// `fresh`, for reuse once its blocks are gone.
    fn retire(&self, buf: BytesMut, alloc: usize) {
        if alloc == 0 {
            return;
        }
        let Ok(mut spares) = self.spares.lock() else {
            return;
        };
        spares.bytes += alloc;
        spares.queue.push_back((buf, alloc));
        while spares.bytes > MAX_SPARE_BYTES {
            let Some((_, old)) = spares.queue.pop_front() else {
                break;
            };
            spares.bytes -= old;
        }
    }
}

/// One connection's read buffer: the room the next read goes into.
#[derive(Debug)]
pub struct ReadBuf {
    /// Initialized free space; its length is the room. What is read is split off its front.
    buf: BytesMut,
    /// The size of the allocation `buf` is the end of (0 before the first).
    alloc: usize,
    /// The room made when it runs low.
    chunk: usize,
}

impl Default for ReadBuf {
    fn default() -> Self {
        ReadBuf::new()
    }
}

impl ReadBuf {
    /// No room yet; the first [`room`](Self::room) makes [`MIN_READ_CHUNK`].
    pub fn new() -> ReadBuf {
        ReadBuf {
            buf: BytesMut::new(),
            alloc: 0,
            chunk: MIN_READ_CHUNK,
        }
    }

    /// The room to read into, renewed from `buffers` when less than a quarter of a chunk
    /// is left.
    pub fn room(&mut self, buffers: &ReadBuffers) -> &mut [u8] {
        if self.buf.len() < self.chunk / 4 {
            let (buf, alloc) = buffers.take(self.chunk);
            let old = std::mem::replace(&mut self.buf, buf);
            buffers.retire(old, std::mem::replace(&mut self.alloc, alloc));
        }
        &mut self.buf[..]
    }

    /// A read filled all the room it was given: the next buffer is made twice as big (up
    /// to [`MAX_READ_CHUNK`]).
    pub fn grow(&mut self) {
        self.chunk = (self.chunk * 2).min(MAX_READ_CHUNK);
    }

    /// The first `n` bytes of the room, which a read filled, split off for the engine.
    pub fn take(&mut self, n: usize) -> BytesMut {
        self.buf.split_to(n)
    }

    /// Gives the buffer back to `buffers` (the connection is closed).
    pub fn release(self, buffers: &ReadBuffers) {
        buffers.retire(self.buf, self.alloc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `bytes` into `rb` as a socket would, and hands back what the engine got.
    fn read(rb: &mut ReadBuf, buffers: &ReadBuffers, byte: u8, n: usize) -> BytesMut {
        let room = rb.room(buffers);
        let n = n.min(room.len());
        room[..n].fill(byte);
        rb.take(n)
    }

    #[test]
    fn a_buffer_is_reused_once_nothing_points_into_it_and_not_before() {
        let buffers = ReadBuffers::new();
        let mut rb = ReadBuf::new();
        // Fill the first buffer to the last quarter, keeping one block from it.
        let kept = read(&mut rb, &buffers, 1, MIN_READ_CHUNK / 2);
        let first = kept.as_ptr();
        drop(read(&mut rb, &buffers, 2, MIN_READ_CHUNK / 3));
        // Renewed: the first is still pointed into, so a fresh one is made.
        let second = read(&mut rb, &buffers, 3, MIN_READ_CHUNK - 100);
        assert_ne!(second.as_ptr(), first);
        assert_eq!(buffers.spare_bytes(), MIN_READ_CHUNK);
        drop(second);
        // The first buffer's last block goes: the next renewal takes it back, whole.
        drop(kept);
        let third = read(&mut rb, &buffers, 4, MIN_READ_CHUNK);
        assert_eq!(third.as_ptr(), first);
        assert_eq!(third.len(), MIN_READ_CHUNK);
        assert!(third.iter().all(|&b| b == 4));
        // The second one (free now) was retired in its place.
        assert_eq!(buffers.spare_bytes(), MIN_READ_CHUNK);
    }

    #[test]
    fn a_buffer_serves_only_chunks_of_half_its_size_up_to_its_size() {
        let buffers = ReadBuffers::new();
        let mut rb = ReadBuf::new();
        let first = read(&mut rb, &buffers, 9, MIN_READ_CHUNK);
        let ptr = first.as_ptr();
        drop(first);
        // The next read renews: the full first buffer is retired, free.
        drop(read(&mut rb, &buffers, 1, 1));
        assert_eq!(buffers.spare_bytes(), MIN_READ_CHUNK);
        // Too small for a connection whose chunk has grown to 64 KiB.
        let mut big = ReadBuf::new();
        big.grow();
        big.grow();
        let got = read(&mut big, &buffers, 2, usize::MAX);
        assert_eq!(got.len(), 4 * MIN_READ_CHUNK);
        assert_ne!(got.as_ptr(), ptr);
        // Right for another 16 KiB connection: reused, its old bytes read over.
        let mut small = ReadBuf::new();
        let got = read(&mut small, &buffers, 5, 10);
        assert_eq!(got.as_ptr(), ptr);
        assert_eq!(&got[..], &[5; 10]);
        assert_eq!(buffers.spare_bytes(), 0);
    }

    #[test]
    fn retired_buffers_are_bounded_in_bytes() {
        let buffers = ReadBuffers::new();
        let mut held = Vec::new();
        let mut rb = ReadBuf::new();
        // Up to the largest chunk (growth stops there).
        for _ in 0..16 {
            rb.grow();
        }
        for _ in 0..(2 * MAX_SPARE_BYTES / MAX_READ_CHUNK) {
            // Every buffer stays pointed into, so each renewal makes a new one.
            held.push(read(&mut rb, &buffers, 7, MAX_READ_CHUNK));
            assert!(buffers.spare_bytes() <= MAX_SPARE_BYTES);
        }
        assert_eq!(buffers.spare_bytes(), MAX_SPARE_BYTES);
        // The blocks of the buffers let go are intact.
        assert!(held.iter().all(|b| b.iter().all(|&x| x == 7)));
    }
}
