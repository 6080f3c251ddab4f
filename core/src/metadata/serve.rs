//! The serving side of BEP 9: answering a peer's requests for pieces of our own metadata.
//!
//! A request within the metadata gets the piece; one beyond its end gets a reject. Each
//! connection has a [`ServeBudget`]: an honest peer asks for each piece once (twice if a
//! first answer got lost to a timeout on its side), so past twice the piece count plus a
//! little slack every further request is rejected. That bounds what a peer flooding us
//! with requests can make us send on one connection to about twice the metadata's size.

use bytes::Bytes;

use super::{piece_count, piece_len, MetadataMessage, PIECE_SIZE};

/// Requests answered beyond twice the piece count, so that tiny metadata can still be
/// asked for again a few times.
const SLACK: u32 = 8;

/// The answer to a request for `piece` of the metadata `info_bytes`: the piece with the
/// whole size, or a reject past the end.
pub fn answer(info_bytes: &[u8], piece: u32) -> MetadataMessage {
    let size = info_bytes.len() as u64;
    match piece_len(size, piece) {
        Some(len) => {
            let start = piece as usize * PIECE_SIZE as usize;
            MetadataMessage::Data {
                piece,
                total_size: size,
                data: Bytes::copy_from_slice(&info_bytes[start..start + len as usize]),
            }
        }
        None => MetadataMessage::Reject { piece },
    }
}

/// How many more metadata requests one connection will have answered with data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServeBudget {
    left: u32,
}

impl ServeBudget {
    /// A fresh connection's budget for metadata of `size` bytes.
    pub fn new(size: u64) -> ServeBudget {
        ServeBudget {
            left: piece_count(size).saturating_mul(2).saturating_add(SLACK),
        }
    }

    /// Requests that will still be answered with data.
    pub fn left(&self) -> u32 {
        self.left
    }

    /// Answers a request: [`answer`] while the budget lasts (a reject costs nothing), a
    /// reject once it is spent.
    pub fn on_request(&mut self, info_bytes: &[u8], piece: u32) -> MetadataMessage {
        if self.left == 0 {
            return MetadataMessage::Reject { piece };
        }
        let reply = answer(info_bytes, piece);
        if matches!(reply, MetadataMessage::Data { .. }) {
            self.left -= 1;
        }
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_pieces_and_rejects_past_the_end() {
        let info: Vec<u8> = (0..40000u32).map(|i| i as u8).collect();
        let mut budget = ServeBudget::new(info.len() as u64);
        let mut got = Vec::new();
        for piece in 0..3 {
            match budget.on_request(&info, piece) {
                MetadataMessage::Data {
                    piece: p,
                    total_size,
                    data,
                } => {
                    assert_eq!(p, piece);
                    assert_eq!(total_size, 40000);
                    got.extend_from_slice(&data);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got, info);
        assert_eq!(
            budget.on_request(&info, 3),
            MetadataMessage::Reject { piece: 3 }
        );
        assert_eq!(
            budget.on_request(&info, u32::MAX),
            MetadataMessage::Reject { piece: u32::MAX }
        );
        // Exactly one piece's worth is a single piece.
        let one = vec![1u8; PIECE_SIZE as usize];
        assert!(matches!(answer(&one, 0), MetadataMessage::Data { .. }));
        assert_eq!(answer(&one, 1), MetadataMessage::Reject { piece: 1 });
    }

    #[test]
    fn a_flood_of_requests_is_rejected_once_the_budget_is_spent() {
        let info = vec![7u8; 40000]; // 3 pieces: 2 * 3 + 8 = 14 answers
        let mut budget = ServeBudget::new(info.len() as u64);
        let mut data = 0;
        for i in 0..1000u32 {
            if let MetadataMessage::Data { .. } = budget.on_request(&info, i % 3) {
                data += 1;
            }
        }
        assert_eq!(data, 14);
        assert_eq!(budget.left(), 0);
    }
}
