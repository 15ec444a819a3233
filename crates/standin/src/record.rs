//! One record of a page as Alpaca writes it: a JSON object appended field by field (the
//! stand-in serves millions of them; the numbers go through `ryu` and `itoa`). Every record
//! opens with its time, `{"t":"2024-01-02T09:00:00.123Z"`, as Alpaca's do.

use data_core::time::{civil_from_days, NANOS_PER_SEC};

/// A JSON object being appended to a page.
pub struct Record<'a> {
    out: &'a mut Vec<u8>,
    floats: ryu::Buffer,
    ints: itoa::Buffer,
}

impl<'a> Record<'a> {
    /// Opens a record of time `t` (ns since the epoch) at the end of `out`.
    pub fn at(out: &'a mut Vec<u8>, t: i64) -> Self {
        out.extend_from_slice(br#"{"t":""#);
        write_time(out, t);
        out.push(b'"');
        Record {
            out,
            floats: ryu::Buffer::new(),
            ints: itoa::Buffer::new(),
        }
    }

    fn key(&mut self, key: &str) {
        self.out.extend_from_slice(b",\"");
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// `"key":1.25` (the shortest text that reads back as `v`).
    pub(crate) fn float(&mut self, key: &str, v: f64) -> &mut Self {
        self.key(key);
        self.out.extend_from_slice(self.floats.format(v).as_bytes());
        self
    }

    /// `"key":100`.
    pub fn int(&mut self, key: &str, v: u64) -> &mut Self {
        self.key(key);
        self.out.extend_from_slice(self.ints.format(v).as_bytes());
        self
    }

    /// `"key":"V"`: a one-character string (an exchange code, a tape, a side).
    pub fn char(&mut self, key: &str, v: u8) -> &mut Self {
        self.text(key, std::slice::from_ref(&v))
    }

    /// `"key":"text"` (text the stand-in made: nothing in it needs escaping).
    pub fn text(&mut self, key: &str, text: &[u8]) -> &mut Self {
        self.key(key);
        self.out.push(b'"');
        self.out.extend_from_slice(text);
        self.out.push(b'"');
        self
    }

    /// `"key":json`: a value written as JSON already (a list of condition codes).
    pub fn json(&mut self, key: &str, json: &str) -> &mut Self {
        self.key(key);
        self.out.extend_from_slice(json.as_bytes());
        self
    }

    /// Closes the record.
    pub fn end(&mut self) {
        self.out.push(b'}');
    }
}

/// Writes `ns` as RFC 3339 UTC with trailing fractional zeros trimmed, as Alpaca does.
pub fn write_time(out: &mut Vec<u8>, ns: i64) {
    let secs = ns.div_euclid(NANOS_PER_SEC);
    let frac = ns.rem_euclid(NANOS_PER_SEC);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let two = |out: &mut Vec<u8>, v: i64| {
        out.push(b'0' + (v / 10) as u8);
        out.push(b'0' + (v % 10) as u8);
    };
    let mut ib = itoa::Buffer::new();
    out.extend_from_slice(ib.format(y).as_bytes());
    out.push(b'-');
    two(out, m as i64);
    out.push(b'-');
    two(out, d as i64);
    out.push(b'T');
    two(out, sod / 3600);
    out.push(b':');
    two(out, (sod / 60) % 60);
    out.push(b':');
    two(out, sod % 60);
    if frac != 0 {
        let mut digits = [b'0'; 9];
        let mut f = frac;
        for slot in digits.iter_mut().rev() {
            *slot = b'0' + (f % 10) as u8;
            f /= 10;
        }
        let len = 9 - digits.iter().rev().take_while(|&&c| c == b'0').count();
        out.push(b'.');
        out.extend_from_slice(&digits[..len]);
    }
    out.push(b'Z');
}
