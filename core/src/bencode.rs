//! A small, zero-copy bencode reader, and the few writers for documents made on hot paths.
//!
//! shoal encodes with `bendy`, whose encoder sorts dictionary keys for us, except for the
//! BEP 10 handshake and tracker answers, written with `put_bytes` and `put_int` (see
//! there). For reading it uses this module where `bendy`'s decoder does not fit:
//!
//! - on per-message hot paths (the BEP 10 extended handshake, tracker answers): every
//!   `bendy::decoding::Decoder::new` reserves room for 2,048 nesting levels (~147 KB), while
//!   this reader allocates only the vectors of the values it returns;
//! - for `.torrent` files whose dictionary keys are not sorted, which `bendy` refuses but
//!   which real torrents contain: this reader accepts any key order (still refusing
//!   duplicate keys, which would make a field ambiguous) and [`Value::to_canonical`]
//!   re-encodes them sorted.
//!
//! Values borrow from the input. Every list and dictionary keeps the raw bytes it was read
//! from, so the info-hash can be taken over the `info` dictionary exactly as it stands in
//! the file. Nesting depth and the number of values are bounded ([`Limits`]): hostile input
//! gets an [`Error`] with the offset where reading stopped, never a panic or a stack
//! overflow.

use std::fmt;

/// A bencoded value, borrowing its strings from the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// An integer (`i…e`).
    Int(i64),
    /// A byte string (`<len>:…`), not necessarily UTF-8.
    Bytes(&'a [u8]),
    /// A list (`l…e`).
    List(List<'a>),
    /// A dictionary (`d…e`).
    Dict(Dict<'a>),
}

/// A list with the raw bytes it was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct List<'a> {
    /// The values, in input order.
    pub items: Vec<Value<'a>>,
    /// The list's bencoding, `l` to `e`, as it stood in the input.
    pub raw: &'a [u8],
}

/// A dictionary with its entries in input order and the raw bytes it was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dict<'a> {
    /// Keys and values, in input order (duplicates kept, not sorted).
    pub entries: Vec<(&'a [u8], Value<'a>)>,
    /// The dictionary's bencoding, `d` to `e`, as it stood in the input.
    pub raw: &'a [u8],
}

impl<'a> Dict<'a> {
    /// The value under `key`, if present.
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        self.entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Whether the keys appear in strictly ascending byte order, as canonical bencode
    /// requires.
    pub fn is_sorted(&self) -> bool {
        self.entries.windows(2).all(|w| w[0].0 < w[1].0)
    }
}

impl<'a> Value<'a> {
    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The bytes, if this is a byte string.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The byte string as text, if it is one and is UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The items, if this is a list.
    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::List(l) => Some(&l.items),
            _ => None,
        }
    }

    /// The dictionary, if this is one.
    pub fn as_dict(&self) -> Option<&Dict<'a>> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// Whether every dictionary in this value has its keys sorted.
    pub fn is_canonical(&self) -> bool {
        match self {
            Value::Int(_) | Value::Bytes(_) => true,
            Value::List(l) => l.items.iter().all(Value::is_canonical),
            Value::Dict(d) => d.is_sorted() && d.entries.iter().all(|(_, v)| v.is_canonical()),
        }
    }

    /// Re-encodes the value with every dictionary's keys sorted (through `bendy`'s encoder).
    pub fn to_canonical(&self) -> Vec<u8> {
        use bendy::encoding::ToBencode;
        // Depth is already bounded by the reader's limits; the value can always be encoded.
        self.to_bencode()
            .expect("a decoded value re-encodes within bendy's default depth")
    }
}

impl bendy::encoding::ToBencode for Value<'_> {
    const MAX_DEPTH: usize = MAX_DEPTH_LIMIT;

    fn encode(
        &self,
        encoder: bendy::encoding::SingleItemEncoder,
    ) -> Result<(), bendy::encoding::Error> {
        match self {
            Value::Int(i) => encoder.emit_int(*i),
            Value::Bytes(b) => encoder.emit_bytes(b),
            Value::List(l) => encoder.emit_list(|e| {
                for item in &l.items {
                    e.emit(item)?;
                }
                Ok(())
            }),
            Value::Dict(d) => encoder.emit_unsorted_dict(|e| {
                for (k, v) in &d.entries {
                    e.emit_pair(k, v)?;
                }
                Ok(())
            }),
        }
    }
}

/// The most nesting [`Limits`] may allow: deep enough for any real document, shallow enough
/// for the recursive reader and `bendy`'s encoder.
pub const MAX_DEPTH_LIMIT: usize = 64;

/// Bounds on what a reader accepts.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Deepest nesting of lists and dictionaries (at most [`MAX_DEPTH_LIMIT`]).
    pub max_depth: usize,
    /// Most values in the whole document (bounds the memory of the returned tree).
    pub max_values: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 32,
            max_values: 1 << 20,
        }
    }
}

/// Why input is not acceptable bencode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input ended inside a value.
    UnexpectedEof,
    /// A byte that cannot start or continue a value here.
    UnexpectedByte(u8),
    /// An integer or string length that is not canonical decimal (`i-0e`, `i03e`, `ie`).
    BadNumber,
    /// An integer that does not fit an `i64`, or a string longer than the input.
    NumberOutOfRange,
    /// A dictionary key that is not a byte string.
    KeyNotString,
    /// The same key twice in one dictionary.
    DuplicateKey,
    /// Nesting deeper than [`Limits::max_depth`].
    TooDeep,
    /// More values than [`Limits::max_values`].
    TooManyValues,
    /// Bytes after the end of the top-level value.
    TrailingBytes,
}

/// A reading error and the input offset where it was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    /// What is wrong.
    pub kind: ErrorKind,
    /// The byte offset in the input where it was found.
    pub offset: usize,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ErrorKind::UnexpectedEof => "input ends inside a value".to_string(),
            ErrorKind::UnexpectedByte(b) => format!("unexpected byte 0x{b:02x}"),
            ErrorKind::BadNumber => "malformed number".to_string(),
            ErrorKind::NumberOutOfRange => "number out of range".to_string(),
            ErrorKind::KeyNotString => "dictionary key is not a string".to_string(),
            ErrorKind::DuplicateKey => "duplicate dictionary key".to_string(),
            ErrorKind::TooDeep => "nesting too deep".to_string(),
            ErrorKind::TooManyValues => "too many values".to_string(),
            ErrorKind::TrailingBytes => "trailing bytes after the value".to_string(),
        };
        write!(f, "bencode: {what} at byte {}", self.offset)
    }
}

impl std::error::Error for Error {}

/// Reads exactly one value spanning the whole input, with default [`Limits`].
pub fn decode(input: &[u8]) -> Result<Value<'_>, Error> {
    decode_with(input, Limits::default())
}

/// Reads exactly one value spanning the whole input.
pub fn decode_with(input: &[u8], limits: Limits) -> Result<Value<'_>, Error> {
    let (value, used) = decode_prefix_with(input, limits)?;
    if used != input.len() {
        return Err(Error {
            kind: ErrorKind::TrailingBytes,
            offset: used,
        });
    }
    Ok(value)
}

/// Reads one value from the start of the input and returns it with the number of bytes it
/// took; what follows is left alone (BEP 9 metadata messages append raw data to a dict).
pub fn decode_prefix_with(input: &[u8], limits: Limits) -> Result<(Value<'_>, usize), Error> {
    let mut reader = Reader {
        input,
        pos: 0,
        values: 0,
        limits: Limits {
            max_depth: limits.max_depth.min(MAX_DEPTH_LIMIT),
            ..limits
        },
    };
    let value = reader.value(0)?;
    Ok((value, reader.pos))
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    values: usize,
    limits: Limits,
}

impl<'a> Reader<'a> {
    fn err<T>(&self, kind: ErrorKind) -> Result<T, Error> {
        Err(Error {
            kind,
            offset: self.pos,
        })
    }

    fn peek(&self) -> Result<u8, Error> {
        match self.input.get(self.pos) {
            Some(&b) => Ok(b),
            None => self.err(ErrorKind::UnexpectedEof),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, Error> {
        self.values += 1;
        if self.values > self.limits.max_values {
            return self.err(ErrorKind::TooManyValues);
        }
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                let n = self.number(b'e', true)?;
                Ok(Value::Int(n))
            }
            b'0'..=b'9' => self.bytes().map(Value::Bytes),
            b'l' => {
                if depth >= self.limits.max_depth {
                    return self.err(ErrorKind::TooDeep);
                }
                let start = self.pos;
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(List {
                    items,
                    raw: &self.input[start..self.pos],
                }))
            }
            b'd' => {
                if depth >= self.limits.max_depth {
                    return self.err(ErrorKind::TooDeep);
                }
                let start = self.pos;
                self.pos += 1;
                let mut entries: Vec<(&'a [u8], Value<'a>)> = Vec::new();
                // Where each key starts: once the keys are out of order, duplicates are
                // found by sorting them at the end, in O(n log n).
                let mut offsets: Vec<usize> = Vec::new();
                let mut sorted = true;
                while self.peek()? != b'e' {
                    let key_at = self.pos;
                    if !self.peek()?.is_ascii_digit() {
                        return self.err(ErrorKind::KeyNotString);
                    }
                    // A key is a value too, for the bound on their number.
                    self.values += 1;
                    if self.values > self.limits.max_values {
                        return self.err(ErrorKind::TooManyValues);
                    }
                    let key = self.bytes()?;
                    if sorted {
                        match entries.last() {
                            Some((last, _)) if *last == key => {
                                return Err(Error {
                                    kind: ErrorKind::DuplicateKey,
                                    offset: key_at,
                                })
                            }
                            Some((last, _)) if *last > key => sorted = false,
                            _ => {}
                        }
                    }
                    offsets.push(key_at);
                    let value = self.value(depth + 1)?;
                    entries.push((key, value));
                }
                if !sorted {
                    if let Some(offset) = first_duplicate(&entries, &offsets) {
                        return Err(Error {
                            kind: ErrorKind::DuplicateKey,
                            offset,
                        });
                    }
                }
                self.pos += 1;
                Ok(Value::Dict(Dict {
                    entries,
                    raw: &self.input[start..self.pos],
                }))
            }
            b => self.err(ErrorKind::UnexpectedByte(b)),
        }
    }

    fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let len = self.number(b':', false)?;
        let len = usize::try_from(len).or_else(|_| self.err(ErrorKind::NumberOutOfRange))?;
        if len > self.input.len() - self.pos {
            return self.err(ErrorKind::NumberOutOfRange);
        }
        let s = &self.input[self.pos..self.pos + len];
        self.pos += len;
        Ok(s)
    }

    /// Reads canonical decimal digits up to `end`: no leading zeros, no `-0`, a sign only
    /// where `signed`.
    fn number(&mut self, end: u8, signed: bool) -> Result<i64, Error> {
        let start = self.pos;
        let negative = signed && self.peek()? == b'-';
        if negative {
            self.pos += 1;
        }
        let digits_start = self.pos;
        let mut n: i64 = 0;
        loop {
            let b = self.peek()?;
            if b == end {
                break;
            }
            if !b.is_ascii_digit() {
                return self.err(ErrorKind::UnexpectedByte(b));
            }
            let digit = i64::from(b - b'0');
            // Accumulate negatively so that i64::MIN is representable.
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_sub(digit))
                .ok_or(Error {
                    kind: ErrorKind::NumberOutOfRange,
                    offset: start,
                })?;
            self.pos += 1;
        }
        let digits = &self.input[digits_start..self.pos];
        self.pos += 1; // the terminator
        let malformed = digits.is_empty()
            || (digits.len() > 1 && digits[0] == b'0')
            || (negative && digits == b"0");
        if malformed {
            return Err(Error {
                kind: ErrorKind::BadNumber,
                offset: start,
            });
        }
        if negative {
            Ok(n)
        } else {
            n.checked_neg().ok_or(Error {
                kind: ErrorKind::NumberOutOfRange,
                offset: start,
            })
        }
    }
}

// ---------------------------------------------------------------- writing by hand

/// The offset of the first key (in input order) that repeats an earlier one, if any.
/// `offsets[i]` is where the key of `entries[i]` starts.
fn first_duplicate(entries: &[(&[u8], Value<'_>)], offsets: &[usize]) -> Option<usize> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|&a, &b| entries[a].0.cmp(entries[b].0).then(a.cmp(&b)));
    order
        .windows(2)
        .filter(|w| entries[w[0]].0 == entries[w[1]].0)
        .map(|w| offsets[w[1]])
        .min()
}

/// Appends a byte string, `<length>:<bytes>`. With [`put_int`], for the documents written
/// on hot paths (the BEP 10 handshake every connection sends, tracker answers), where
/// `bendy`'s encoder would reserve ~147 KB per use; their writers put the dictionary keys
/// in sorted order themselves.
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_decimal(out, bytes.len() as u64);
    out.push(b':');
    out.extend_from_slice(bytes);
}

/// Appends an integer, `i<n>e`.
pub(crate) fn put_int(out: &mut Vec<u8>, n: u64) {
    out.push(b'i');
    put_decimal(out, n);
    out.push(b'e');
}

/// Appends `n` in decimal, without allocating.
pub(crate) fn put_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20]; // u64::MAX has 20 digits
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    #[test]
    fn reads_every_kind() {
        let v = decode(b"d3:bari-42e3:fool4:spami0eee").unwrap();
        let d = v.as_dict().unwrap();
        assert_eq!(d.get(b"bar").and_then(Value::as_int), Some(-42));
        let foo = d.get(b"foo").and_then(Value::as_list).unwrap();
        assert_eq!(foo[0].as_bytes(), Some(&b"spam"[..]));
        assert_eq!(foo[1].as_int(), Some(0));
        assert_eq!(d.raw, b"d3:bari-42e3:fool4:spami0eee");
        assert!(v.is_canonical());
    }

    #[test]
    fn integer_edges() {
        assert_eq!(
            decode(b"i9223372036854775807e").unwrap().as_int(),
            Some(i64::MAX)
        );
        assert_eq!(
            decode(b"i-9223372036854775808e").unwrap().as_int(),
            Some(i64::MIN)
        );
        for bad in [
            &b"i9223372036854775808e"[..],
            b"i-0e",
            b"i03e",
            b"ie",
            b"i-e",
            b"i1",
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn string_edges() {
        assert_eq!(decode(b"0:").unwrap().as_bytes(), Some(&b""[..]));
        assert!(decode(b"5:abc").is_err());
        assert!(decode(b"01:a").is_err());
        assert!(decode(b"99999999999999999999:a").is_err());
    }

    #[test]
    fn unsorted_keys_are_accepted_and_canonicalised() {
        let v = decode(b"d1:bi1e1:ai2ee").unwrap();
        assert!(!v.is_canonical());
        assert_eq!(v.to_canonical(), b"d1:ai2e1:bi1ee");
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let e = decode(b"d1:ai1e1:ai2ee").unwrap_err();
        assert_eq!(e.kind, ErrorKind::DuplicateKey);
        assert_eq!(e.offset, 7);
        let e = decode(b"d1:bi1e1:ai2e1:bi3ee").unwrap_err();
        assert_eq!(e.kind, ErrorKind::DuplicateKey);
        assert_eq!(e.offset, 13, "the second `b`");
        // Out of order from the start, the repeat far from its first: found all the same.
        let mut big = b"d".to_vec();
        for i in (0..100_000u32).rev() {
            big.extend(format!("6:{i:06}i0e").as_bytes());
        }
        let at = big.len();
        big.extend(b"6:050000i1ee");
        let e = decode(&big).unwrap_err();
        assert_eq!((e.kind, e.offset), (ErrorKind::DuplicateKey, at));
        big.truncate(at);
        big.extend(b"6:100000i1ee");
        assert_eq!(
            decode(&big).unwrap().as_dict().unwrap().entries.len(),
            100_001
        );
    }

    #[test]
    fn keys_count_toward_the_bound_on_values() {
        let mut dict = b"d".to_vec();
        for i in 0..30 {
            dict.extend(format!("2:{i:02}i0e").as_bytes());
        }
        dict.push(b'e');
        let limits = |max_values| Limits {
            max_depth: 4,
            max_values,
        };
        // One dictionary, 30 keys, 30 values.
        assert!(decode_with(&dict, limits(61)).is_ok());
        assert_eq!(
            decode_with(&dict, limits(60)).unwrap_err().kind,
            ErrorKind::TooManyValues
        );
    }

    #[test]
    fn limits_hold() {
        let deep = [vec![b'l'; 100], vec![b'e'; 100]].concat();
        assert_eq!(decode(&deep).unwrap_err().kind, ErrorKind::TooDeep);
        let many = [b"l".to_vec(), b"i1e".repeat(100), b"e".to_vec()].concat();
        let limits = Limits {
            max_depth: 4,
            max_values: 50,
        };
        assert_eq!(
            decode_with(&many, limits).unwrap_err().kind,
            ErrorKind::TooManyValues
        );
        assert_eq!(
            decode(b"i1ei2e").unwrap_err().kind,
            ErrorKind::TrailingBytes
        );
        assert_eq!(
            decode(b"d1:ae").unwrap_err().kind,
            ErrorKind::UnexpectedByte(b'e')
        );
        assert_eq!(
            decode(b"di1ei1ee").unwrap_err().kind,
            ErrorKind::KeyNotString
        );
    }

    #[test]
    fn hand_written_integers_at_the_ends_of_the_range() {
        let mut out = Vec::new();
        put_int(&mut out, 0);
        put_int(&mut out, u64::MAX);
        put_decimal(&mut out, 1_000);
        assert_eq!(out, b"i0ei18446744073709551615e1000");
        let mut one = Vec::new();
        put_int(&mut one, i64::MAX as u64);
        assert_eq!(decode(&one).unwrap().as_int(), Some(i64::MAX));
    }

    #[test]
    fn prefix_leaves_the_rest() {
        let (v, used) = decode_prefix_with(b"d1:xi1eeRAW", Limits::default()).unwrap();
        assert_eq!(used, 8);
        assert!(v.as_dict().is_some());
    }

    quickcheck! {
        fn arbitrary_bytes_never_panic(input: Vec<u8>) -> bool {
            let _ = decode(&input);
            true
        }

        fn hand_written_values_read_back(n: u64, bytes: Vec<u8>) -> bool {
            let mut out = Vec::new();
            put_int(&mut out, n);
            put_bytes(&mut out, &bytes);
            let int = format!("i{n}e");
            let rest = &out[int.len()..];
            out.starts_with(int.as_bytes())
                && decode(rest).is_ok_and(|v| v.as_bytes() == Some(&bytes[..]))
        }

        fn canonical_output_is_accepted_by_bendy(input: Vec<u8>) -> bool {
            match decode(&input) {
                Ok(v) => {
                    let canon = v.to_canonical();
                    let again = decode(&canon).expect("canonical output re-reads");
                    again.is_canonical() && again.to_canonical() == canon
                        && bendy::decoding::Decoder::new(&canon).tokens().all(|t| t.is_ok())
                }
                Err(_) => true,
            }
        }
    }
}
