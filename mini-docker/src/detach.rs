//! Detaching from a container's terminal with a key sequence (docker's `Ctrl-P Ctrl-Q`).
//!
//! The keys are watched on our side, in what we read from the terminal: the container
//! never sees them once they form the whole sequence. A prefix of the sequence is held
//! back until the next key decides: `Ctrl-P` followed by anything else reaches the
//! container as both keys, so a program that uses `Ctrl-P` (a shell's history) still works,
//! one keystroke late. (A repeated first key restarts the match: Ctrl-P Ctrl-P Ctrl-Q
//! sends one Ctrl-P and detaches; docker's client, which compares whole reads, would
//! send all three.) The syntax of `--detach-keys` is docker's: comma-separated keys,
//! each a single character or `ctrl-` and one of `a`-`z`, `@`, `[`, `\`, `]`, `^`, `_`.
use crate::Error;

/// docker's default sequence: Ctrl-P (0x10), Ctrl-Q (0x11).
pub const DEFAULT: &[u8] = &[0x10, 0x11];

/// Parses a `--detach-keys` value into the bytes the terminal sends for it.
pub fn parse(spec: &str) -> Result<Vec<u8>, Error> {
    let invalid = || Error::Usage(format!("Invalid detach keys ({spec}) provided"));
    let mut keys = Vec::new();
    for key in spec.split(',') {
        let lower = key.to_ascii_lowercase();
        let byte = match lower.strip_prefix("ctrl-") {
            Some(rest) if rest.len() == 1 => match rest.as_bytes()[0] {
                // The terminal sends a control key as its character with bits 5 and 6
                // cleared: Ctrl-A is 1, Ctrl-@ is 0, Ctrl-[ is ESC (27) ... Ctrl-_ is 31.
                c @ (b'a'..=b'z') => c - b'a' + 1,
                c @ (b'@' | b'[' | b'\\' | b']' | b'^' | b'_') => c & 0x1f,
                _ => return Err(invalid()),
            },
            Some(_) => return Err(invalid()),
            None if key.len() == 1 && key.is_ascii() => key.as_bytes()[0],
            None => return Err(invalid()),
        };
        keys.push(byte);
    }
    Ok(keys)
}

/// Watches typed input for the detach sequence.
#[derive(Debug)]
pub struct Escape {
    keys: Vec<u8>,
    /// How many keys of the sequence were typed last (held back, not yet passed on).
    matched: usize,
}

/// What typed `input` sends: with an `escape` watched, what it lets through (into `out`,
/// cleared first) and whether the sequence is complete; without one, everything.
pub fn typed(escape: Option<&mut Escape>, input: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    match escape {
        Some(e) => e.feed(input, out),
        None => {
            out.extend_from_slice(input);
            false
        }
    }
}

impl Escape {
    /// Watches for `keys` (at least one).
    pub fn new(keys: Vec<u8>) -> Escape {
        assert!(!keys.is_empty(), "a detach sequence has at least one key");
        Escape { keys, matched: 0 }
    }

    /// Takes what was read from the terminal; appends to `out` what the container should
    /// get, and returns true when the sequence is complete (the caller detaches; anything
    /// typed after it in the same read is dropped, as docker does).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return true;
                }
                continue;
            }
            // Not the sequence after all: what was held goes through, and this key may
            // start the sequence again.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    return true;
                }
            } else {
                out.push(b);
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(keys: &[u8], chunks: &[&[u8]]) -> (Vec<u8>, bool) {
        let mut e = Escape::new(keys.to_vec());
        let mut out = Vec::new();
        for c in chunks {
            if e.feed(c, &mut out) {
                return (out, true);
            }
        }
        (out, false)
    }

    #[test]
    fn docker_key_syntax() {
        assert_eq!(parse("ctrl-p,ctrl-q").unwrap(), DEFAULT);
        assert_eq!(
            parse("ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_").unwrap(),
            [0, 27, 28, 29, 30, 31]
        );
        assert_eq!(parse("a,Z,ctrl-A").unwrap(), [b'a', b'Z', 1]);
        for bad in ["", "ctrl-", "ctrl-1", "ctrl-pq", "ab", "p,,q", "é"] {
            let err = parse(bad).unwrap_err().to_string();
            assert_eq!(err, format!("Invalid detach keys ({bad}) provided"));
        }
    }

    #[test]
    fn the_sequence_detaches_and_never_reaches_the_container() {
        assert_eq!(typed(DEFAULT, &[b"ls\r\x10\x11"]), (b"ls\r".to_vec(), true));
        // Split across reads, as a human types it.
        assert_eq!(typed(DEFAULT, &[b"x\x10", b"\x11"]), (b"x".to_vec(), true));
        // Ctrl-P Ctrl-P Ctrl-Q: the first Ctrl-P goes through, the rest detaches.
        assert_eq!(typed(DEFAULT, &[b"\x10\x10\x11"]), (b"\x10".to_vec(), true));
    }

    #[test]
    fn a_prefix_alone_is_held_then_passed_on() {
        assert_eq!(typed(DEFAULT, &[b"\x10"]), (b"".to_vec(), false));
        assert_eq!(typed(DEFAULT, &[b"\x10", b"k"]), (b"\x10k".to_vec(), false));
        assert_eq!(
            typed(DEFAULT, &[b"\x11\x10a\x11"]),
            (b"\x11\x10a\x11".to_vec(), false)
        );
        assert_eq!(typed(b"q", &[b"abq"]), (b"ab".to_vec(), true));
    }
}
