//! Comma-separated member lists (W3C `baggage`, `tracestate`) rebuilt piece by piece: the
//! new value is described once, as the byte strings it is made of ([`Pieces`]), and then
//! collected, written from a stack buffer, or compared with a line, without allocating
//! unless it is long.

/// A header value as consecutive byte strings.
pub trait Pieces {
    /// Hands each piece to `piece` until it returns false; whether it never did. A plain
    /// loop in each implementation: the iterator-adapter form took kilobytes of the module.
    fn each(&self, piece: &mut dyn FnMut(&[u8]) -> bool) -> bool;
}

/// The longest value [`write`] builds on the stack.
pub const STACK_VALUE: usize = 256;

/// The value, on the heap.
pub fn collect(pieces: &dyn Pieces) -> Vec<u8> {
    let mut out = Vec::with_capacity(len(pieces));
    pieces.each(&mut |piece| {
        out.extend_from_slice(piece);
        true
    });
    out
}

fn len(pieces: &dyn Pieces) -> usize {
    let mut len = 0;
    pieces.each(&mut |piece| {
        len += piece.len();
        true
    });
    len
}

/// Hands the value to `write`, built in a stack buffer when it is at most [`STACK_VALUE`]
/// bytes (a request usually carries a few members), so the filter's write allocates
/// nothing then.
pub fn write<T>(pieces: &dyn Pieces, write: impl FnOnce(&[u8]) -> T) -> T {
    if len(pieces) > STACK_VALUE {
        return write(&collect(pieces));
    }
    let mut buf = [0u8; STACK_VALUE];
    let mut at = 0;
    pieces.each(&mut |piece| {
        let Some(slot) = buf.get_mut(at..at + piece.len()) else {
            return false;
        };
        slot.copy_from_slice(piece);
        at += piece.len();
        true
    });
    write(buf.get(..at).unwrap_or_default())
}

/// Whether `line` already is exactly the value. Compares piece by piece: no allocation.
pub fn is_exactly(pieces: &dyn Pieces, line: &[u8]) -> bool {
    let mut rest = line;
    let all_matched = pieces.each(&mut |piece| match rest.strip_prefix(piece) {
        Some(after) => {
            rest = after;
            true
        }
        None => false,
    });
    all_matched && rest.is_empty()
}

/// Hands each non-empty list member of `lines` (several header lines are one list) to
/// `member`, white space around it trimmed, until it returns false; whether it never did.
pub fn each_member<'a>(
    lines: impl Iterator<Item = &'a [u8]>,
    member: &mut dyn FnMut(&'a [u8]) -> bool,
) -> bool {
    for line in lines {
        for item in line.split(|&b| b == b',') {
            let item = item.trim_ascii();
            if !item.is_empty() && !member(item) {
                return false;
            }
        }
    }
    true
}

/// What a list module shares with the others, defined once: its `Value { existing, version }`
/// (the list rebuilt from the request's existing lines, which several headers make one
/// list, with our member naming `version`, or `None`: ours removed), whose [`Pieces`] the
/// module writes (the layout is all that differs), and three ways to it: `with_version`
/// collects it, `write_with_version` hands it to `write` built on the stack unless it is
/// long ([`write`]), `is_current` says whether `line`, the request's only header of the
/// list, already is exactly it (then there is nothing to write).
macro_rules! rewrites {
    ($header:literal) => {
        #[doc = concat!("The new `", $header, "` value (see the module documentation).")]
        struct Value<'v, I> {
            existing: I,
            version: Option<&'v str>,
        }

        #[doc = concat!("The new `", $header, "` value (see the module documentation).")]
        pub fn with_version<'a>(
            existing: impl Iterator<Item = &'a [u8]> + Clone,
            version: Option<&str>,
        ) -> Vec<u8> {
            $crate::members::collect(&Value { existing, version })
        }

        /// Hands [`with_version`]'s value to `write`, built on the stack unless it is long
        /// ([`members::write`]).
        pub fn write_with_version<'a, T>(
            existing: impl Iterator<Item = &'a [u8]> + Clone,
            version: Option<&str>,
            write: impl FnOnce(&[u8]) -> T,
        ) -> T {
            $crate::members::write(&Value { existing, version }, write)
        }

        #[doc = concat!("Whether `line`, the request's only `", $header, "` header, already is")]
        /// exactly [`with_version`]'s value, so that there is nothing to write.
        pub fn is_current(line: &[u8], version: &str) -> bool {
            let value = Value {
                existing: std::iter::once(line),
                version: Some(version),
            };
            $crate::members::is_exactly(&value, line)
        }
    };
}
pub(crate) use rewrites;
