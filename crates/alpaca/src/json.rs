//! A small JSON reader for Alpaca's pages ([`super::page`] walks their one shape with it):
//! strings borrowed from the body unless they hold escapes, numbers checked against JSON's
//! grammar and parsed from their text by the standard library (exact), values of any shape
//! skipped with a bounded depth. Whatever the bytes, each step either reads or fails:
//! [`Fail::Eof`] where the body ends early, [`Fail::Bad`] otherwise.

use super::response::ApiError;
use std::borrow::Cow;

/// Nesting deeper than this in a skipped value fails the page (no unbounded recursion on
/// hostile bytes).
const MAX_DEPTH: usize = 128;

/// Why reading stopped.
pub enum Fail {
    /// The body ended where more was due.
    Eof,
    /// Anything else, described.
    Bad(String),
}

impl Fail {
    pub(crate) fn into_api(self, at: usize) -> ApiError {
        match self {
            Fail::Eof => ApiError::Truncated(format!("EOF while parsing at byte {at}")),
            Fail::Bad(why) => ApiError::Decode(format!("{why} at byte {at}")),
        }
    }
}

pub type Read<T> = Result<T, Fail>;

#[cold]
pub fn bad<T>(why: impl Into<String>) -> Read<T> {
    Err(Fail::Bad(why.into()))
}

/// Bytes that go on a string unchanged: all but `"`, `\\` and control characters.
static PLAIN: [bool; 256] = {
    let mut plain = [true; 256];
    let mut c = 0;
    while c < 0x20 {
        plain[c] = false;
        c += 1;
    }
    plain[b'"' as usize] = false;
    plain[b'\\' as usize] = false;
    plain
};

/// A plain number at `at` read in one pass, when it is one this fast path answers exactly:
/// JSON's grammar, no exponent, at most 15 digits, followed by a byte that ends a value. The
/// mantissa (below 2^53) and the power of ten (up to 10^22) are both exact as `f64`, so one
/// correctly rounded division gives the correctly rounded value, as the general parser does
/// (Clinger's fast path). Returns the mantissa, the digits after the point, the sign and
/// where the number ends; `None` leaves the number to the general path.
#[inline]
fn fast_number(b: &[u8], at: usize) -> Option<(u64, usize, bool, usize)> {
    let mut i = at;
    let negative = b.get(i) == Some(&b'-');
    i += usize::from(negative);
    let start = i;
    let mut mantissa: u64 = 0;
    while let Some(&c) = b.get(i).filter(|c| c.is_ascii_digit()) {
        mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
        i += 1;
    }
    let whole = i - start;
    if whole == 0 || (whole > 1 && b[start] == b'0') {
        return None;
    }
    let mut scale = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let from = i;
        while let Some(&c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
            i += 1;
        }
        scale = i - from;
        if scale == 0 {
            return None;
        }
    }
    if whole + scale > 15 {
        return None;
    }
    match b.get(i) {
        Some(b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') => {
            Some((mantissa, scale, negative, i))
        }
        _ => None,
    }
}

/// Exact powers of ten as `f64`, as many as the fast path's 15 digits can need.
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Where the run of [`PLAIN`] bytes from `i` ends: eight bytes at a time while none of them
/// is `"`, `\\` or a control character (each test exact for the eight as a whole), then byte
/// by byte.
#[inline]
fn plain_end(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    while let Some(Ok(chunk)) = b.get(i..i + 8).map(<[u8; 8]>::try_from) {
        let x = u64::from_le_bytes(chunk);
        let stop = zero_byte(x ^ (ONES * u64::from(b'"')))
            | zero_byte(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x & HIGH);
        if stop != 0 {
            break;
        }
        i += 8;
    }
    while b.get(i).is_some_and(|&c| PLAIN[usize::from(c)]) {
        i += 1;
    }
    i
}

/// A position in the page's text.
pub(crate) struct Reader<'a> {
    text: &'a str,
    b: &'a [u8],
    /// Where reading stopped (for error messages).
    pub at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(text: &'a str) -> Self {
        Reader {
            text,
            b: text.as_bytes(),
            at: 0,
        }
    }

    /// The next byte after whitespace, not consumed.
    #[inline]
    pub fn peek(&mut self) -> Read<u8> {
        while let Some(&c) = self.b.get(self.at) {
            if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                return Ok(c);
            }
            self.at += 1;
        }
        Err(Fail::Eof)
    }

    #[inline]
    pub(crate) fn eat(&mut self, want: u8, what: &str) -> Read<()> {
        if self.peek()? == want {
            self.at += 1;
            Ok(())
        } else {
            bad(format!("expected {what}"))
        }
    }

    /// How many bytes are left to read.
    pub fn remaining(&self) -> usize {
        self.b.len().saturating_sub(self.at)
    }

    /// Only whitespace left.
    pub fn end(&mut self) -> Read<()> {
        match self.peek() {
            Err(Fail::Eof) => Ok(()),
            Ok(_) => bad("trailing characters"),
            Err(e) => Err(e),
        }
    }

    /// Consumes `null` if it comes next.
    #[inline]
    pub fn null(&mut self) -> Read<bool> {
        if self.peek()? != b'n' {
            return Ok(false);
        }
        self.literal(b"null")?;
        Ok(true)
    }

    fn literal(&mut self, word: &[u8]) -> Read<()> {
        let rest = &self.b[self.at..];
        let n = word.len().min(rest.len());
        if rest[..n] != word[..n] {
            return bad("expected value");
        }
        if n < word.len() {
            return Err(Fail::Eof);
        }
        self.at += n;
        Ok(())
    }

    /// Enters an object: `{`.
    pub(crate) fn open_object(&mut self) -> Read<()> {
        self.eat(b'{', "an object")
    }

    /// The next key of the object being read (and its `:`), or `None` at its end; `first`
    /// tells whether a comma is due.
    pub fn key(&mut self, first: &mut bool) -> Read<Option<Cow<'a, str>>> {
        match self.peek()? {
            b'}' => {
                self.at += 1;
                return Ok(None);
            }
            b',' if !*first => self.at += 1,
            _ if *first => {}
            _ => return bad("expected `,` or `}`"),
        }
        *first = false;
        if self.peek()? != b'"' {
            return bad("expected a key");
        }
        let key = self.string()?;
        self.eat(b':', "`:`")?;
        Ok(Some(key))
    }

    /// Consumes the next key and its `:` if it is exactly `name` written plainly (no
    /// escapes), as [`Reader::key`] would read it; otherwise consumes nothing. Records repeat
    /// their key order, so this one comparison usually replaces decoding the key.
    #[inline]
    pub(crate) fn key_is(&mut self, first: bool, name: &[u8]) -> bool {
        let b = self.b;
        let mut i = self.at;
        let ws = |i: &mut usize| {
            while b
                .get(*i)
                .is_some_and(|c| matches!(c, b' ' | b'\n' | b'\r' | b'\t'))
            {
                *i += 1;
            }
        };
        ws(&mut i);
        if !first {
            if b.get(i) != Some(&b',') {
                return false;
            }
            i += 1;
            ws(&mut i);
        }
        let end = i + name.len() + 2;
        match b.get(i..end) {
            Some(k)
                if k[0] == b'"'
                    && k[k.len() - 1] == b'"'
                    && k[1..k.len() - 1].iter().zip(name).all(|(a, b)| a == b) => {}
            _ => return false,
        }
        i = end;
        ws(&mut i);
        if b.get(i) != Some(&b':') {
            return false;
        }
        self.at = i + 1;
        true
    }

    /// Whether the array being read (its `[` consumed) has another element.
    pub fn more(&mut self, first: &mut bool) -> Read<bool> {
        match self.peek()? {
            b']' => {
                self.at += 1;
                Ok(false)
            }
            b',' if !*first => {
                self.at += 1;
                *first = false;
                Ok(true)
            }
            _ if *first => {
                *first = false;
                Ok(true)
            }
            _ => bad("expected `,` or `]`"),
        }
    }

    /// A string (the reader at its opening quote): borrowed from the body unless it holds
    /// escapes.
    #[inline]
    pub fn string(&mut self) -> Read<Cow<'a, str>> {
        if self.peek()? != b'"' {
            return bad("expected a string");
        }
        let start = self.at + 1;
        let i = plain_end(self.b, start);
        match self.b.get(i) {
            Some(b'"') => {
                self.at = i + 1;
                Ok(Cow::Borrowed(&self.text[start..i]))
            }
            Some(b'\\') => self.escaped(start, i).map(Cow::Owned),
            Some(_) => {
                self.at = i;
                bad("control character in a string")
            }
            None => {
                self.at = i;
                Err(Fail::Eof)
            }
        }
    }

    /// The rest of a string that holds escapes, from `start` (the first byte after the
    /// quote), `i` at the first backslash.
    fn escaped(&mut self, start: usize, mut i: usize) -> Read<String> {
        let mut out = String::with_capacity(i - start + 8);
        let mut run = start;
        loop {
            let Some(&c) = self.b.get(i) else {
                self.at = i;
                return Err(Fail::Eof);
            };
            match c {
                b'"' => {
                    out.push_str(&self.text[run..i]);
                    self.at = i + 1;
                    return Ok(out);
                }
                b'\\' => {
                    out.push_str(&self.text[run..i]);
                    let Some(&e) = self.b.get(i + 1) else {
                        self.at = i + 1;
                        return Err(Fail::Eof);
                    };
                    i += 2;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let (ch, next) = self.unicode(i)?;
                            out.push(ch);
                            i = next;
                        }
                        _ => {
                            self.at = i - 1;
                            return bad("invalid escape");
                        }
                    }
                    run = i;
                }
                0..=0x1f => {
                    self.at = i;
                    return bad("control character in a string");
                }
                _ => i += 1,
            }
        }
    }

    /// `XXXX` (after `\u`) at `i`, with its low surrogate when it is a high one: the
    /// character and where the string goes on.
    fn unicode(&mut self, i: usize) -> Read<(char, usize)> {
        let hi = self.hex4(i)?;
        if !(0xD800..0xDC00).contains(&hi) {
            return match char::from_u32(hi) {
                Some(c) => Ok((c, i + 4)),
                None => {
                    self.at = i;
                    bad("lone low surrogate in a \\u escape")
                }
            };
        }
        match (self.b.get(i + 4), self.b.get(i + 5)) {
            (Some(b'\\'), Some(b'u')) => {}
            (None, _) | (Some(b'\\'), None) => {
                self.at = self.b.len();
                return Err(Fail::Eof);
            }
            _ => {
                self.at = i;
                return bad("lone high surrogate in a \\u escape");
            }
        }
        let lo = self.hex4(i + 6)?;
        if !(0xDC00..0xE000).contains(&lo) {
            self.at = i + 6;
            return bad("invalid low surrogate in a \\u escape");
        }
        let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
        match char::from_u32(c) {
            Some(c) => Ok((c, i + 10)),
            None => bad("invalid \\u escape"),
        }
    }

    fn hex4(&mut self, i: usize) -> Read<u32> {
        let mut v = 0;
        for k in i..i + 4 {
            let Some(&c) = self.b.get(k) else {
                self.at = self.b.len();
                return Err(Fail::Eof);
            };
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => {
                    self.at = k;
                    return bad("invalid \\u escape");
                }
            };
            v = v * 16 + u32::from(d);
        }
        Ok(v)
    }

    /// A number's text, checked against JSON's grammar
    /// (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`), and whether it is an integer.
    fn number(&mut self) -> Read<(&'a str, bool)> {
        self.peek()?;
        let start = self.at;
        let b = self.b;
        let mut i = start;
        let digits = |i: &mut usize| {
            let from = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - from
        };
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let int_start = i;
        let n = digits(&mut i);
        let mut integer = true;
        let malformed = if n == 0 {
            true
        } else {
            b[int_start] == b'0' && n > 1
        };
        let mut ok = !malformed;
        if ok && b.get(i) == Some(&b'.') {
            i += 1;
            integer = false;
            ok = digits(&mut i) > 0;
        }
        if ok && matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            integer = false;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            ok = digits(&mut i) > 0;
        }
        self.at = i;
        if !ok {
            return if i >= b.len() {
                Err(Fail::Eof)
            } else {
                bad("invalid number")
            };
        }
        // A number must end the body or be followed by something that ends a value.
        if i >= b.len() {
            return Err(Fail::Eof);
        }
        Ok((&self.text[start..i], integer))
    }

    pub fn f64(&mut self) -> Read<f64> {
        self.peek()?;
        if let Some((m, scale, negative, end)) = fast_number(self.b, self.at) {
            self.at = end;
            let v = m as f64 / POW10[scale];
            return Ok(if negative { -v } else { v });
        }
        let (text, _) = self.number()?;
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => bad(format!("number {text} out of range")),
        }
    }

    pub fn u64(&mut self) -> Read<u64> {
        self.peek()?;
        if let Some((m, 0, false, end)) = fast_number(self.b, self.at) {
            self.at = end;
            return Ok(m);
        }
        let (text, integer) = self.number()?;
        if !integer || text.starts_with('-') {
            return bad(format!("{text} is not a non-negative integer"));
        }
        text.parse::<u64>()
            .or_else(|_| bad(format!("{text} is too large")))
    }

    /// Skips one value of any kind.
    pub fn skip(&mut self, depth: usize) -> Read<()> {
        if depth > MAX_DEPTH {
            return bad("nesting too deep");
        }
        match self.peek()? {
            b'{' => {
                self.at += 1;
                let mut first = true;
                while self.key(&mut first)?.is_some() {
                    self.skip(depth + 1)?;
                }
                Ok(())
            }
            b'[' => {
                self.at += 1;
                let mut first = true;
                while self.more(&mut first)? {
                    self.skip(depth + 1)?;
                }
                Ok(())
            }
            b'"' => self.string().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number().map(drop),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_runs_end_at_the_first_quote_backslash_or_control_byte() {
        let base: Vec<u8> = "abcdefghijklmnopqrstuvwxyzé€0123".bytes().collect();
        for at in 0..base.len() {
            for stop in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                let mut b = base.clone();
                b[at] = stop;
                for from in 0..=at {
                    assert_eq!(plain_end(&b, from), at, "{stop} at {at} from {from}");
                }
            }
        }
        assert_eq!(plain_end(&base, 3), base.len());
        assert_eq!(plain_end(b"", 0), 0);
    }

    /// The fast path gives the standard parser's value, bit for bit, wherever it answers.
    #[test]
    fn fast_numbers_equal_the_standard_parse() {
        let fast = |text: &str| {
            let body = format!("{text},");
            fast_number(body.as_bytes(), 0).map(|(m, scale, negative, end)| {
                assert_eq!(end, text.len());
                let v = m as f64 / POW10[scale];
                if negative {
                    -v
                } else {
                    v
                }
            })
        };
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut answered = 0;
        for n in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = (x % 10u64.pow(1 + n % 17)).to_string();
            let point = (x >> 40) as usize % (digits.len() + 1);
            let text = match point {
                0 => digits.clone(),
                p => format!("{}.{}", &digits[..p], &digits[p..]),
            };
            let text = if x & 1 == 1 { format!("-{text}") } else { text };
            let text = text.trim_end_matches('.');
            if let Some(v) = fast(text) {
                answered += 1;
                let want: f64 = text.parse().unwrap();
                assert_eq!(v.to_bits(), want.to_bits(), "{text}");
            }
        }
        assert!(answered > 100_000, "{answered}");
        assert_eq!(fast("411.25"), Some(411.25));
        assert_eq!(fast("-0").map(f64::to_bits), Some((-0.0f64).to_bits()));
        for left in ["1e5", "1234567890.123456", "01", "1.", ".5", "-", "1.5E2"] {
            assert_eq!(fast(left), None, "{left}");
        }
    }
}
