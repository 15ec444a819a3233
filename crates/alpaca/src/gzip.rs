//! The client's gunzip of a page body (Alpaca answers `Accept-Encoding: gzip`), whole-buffer
//! with libdeflate: the body is complete in memory before it is decoded anyway, and
//! libdeflate inflates a buffer about twice as fast as a streaming inflater (zlib-rs measured
//! beside it: benches/RESULTS.md, session 10). The output is sized from the gzip trailer's
//! length field, which libdeflate checks, with the CRC, against what it inflated.

use super::response::ApiError;

/// The most a page body may expand to (a page of 10,000 records is a few MB).
pub(crate) const MAX_BODY: usize = 1 << 30;

/// The gzip body `gz` inflated. A body cut short or corrupt, or claiming more than
/// [`MAX_BODY`], is [`ApiError::Truncated`]: the retry policy asks again.
pub fn gunzip(gz: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    let n = inflate(gz, &mut out)?;
    out.truncate(n);
    Ok(out)
}

/// [`gunzip`] into `scratch`, reused from page to page (it only grows: no allocation or
/// zeroing once it holds the largest page); returns how many of its bytes are the body.
pub fn inflate(gz: &[u8], scratch: &mut Vec<u8>) -> Result<usize, ApiError> {
    let damaged = || {
        ApiError::Truncated(format!(
            "the gzip body ({} bytes) is cut short or corrupt",
            gz.len()
        ))
    };
    // The trailer's last four bytes: the inflated size (modulo 2^32; bodies stay far below).
    let size = gz
        .len()
        .checked_sub(4)
        .and_then(|at| gz.get(at..))
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(|b| u32::from_le_bytes(b) as usize)
        .ok_or_else(damaged)?;
    if size > MAX_BODY {
        // A cut body's last bytes are no trailer; a whole one this large is no page either.
        return Err(ApiError::Truncated(format!(
            "the gzip body ({} bytes) is cut short or corrupt: its trailer claims {size} \
             bytes, over {} MiB",
            gz.len(),
            MAX_BODY >> 20
        )));
    }
    if scratch.len() < size {
        scratch.resize(size, 0);
    }
    libdeflater::Decompressor::new()
        .gzip_decompress(gz, &mut scratch[..size])
        .map_err(|_| damaged())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn bodies_inflate_exactly_and_damage_is_an_error_never_a_panic() {
        let page: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("{{\"bp\":{}.{}}},", i % 977, i % 13).into_bytes())
            .collect();
        let body = gz(&page);
        assert_eq!(gunzip(&body).unwrap(), page);
        assert_eq!(gunzip(&gz(b"")).unwrap(), b"");
        // Into a reused buffer: a smaller body after a larger one.
        let mut scratch = Vec::new();
        let n = inflate(&body, &mut scratch).unwrap();
        assert_eq!(&scratch[..n], &page[..]);
        let n = inflate(&gz(b"{}"), &mut scratch).unwrap();
        assert_eq!(&scratch[..n], b"{}");
        // A trailer that lies about the size, smaller or larger, or an oversized claim.
        for size in [16u32, page.len() as u32 + 1] {
            let mut lying = body.clone();
            let n = lying.len();
            lying[n - 4..].copy_from_slice(&size.to_le_bytes());
            assert!(matches!(gunzip(&lying), Err(ApiError::Truncated(_))));
        }
        let mut huge = body.clone();
        let n = huge.len();
        huge[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(
            matches!(gunzip(&huge), Err(ApiError::Truncated(e)) if e.contains("over 1024 MiB"))
        );
        // Every cut is an error to retry.
        for cut in [0, 1, 10, body.len() / 2, body.len() - 1] {
            assert!(
                matches!(gunzip(&body[..cut]), Err(ApiError::Truncated(_))),
                "cut at {cut}"
            );
        }
        assert!(matches!(
            gunzip(b"not gzip at all"),
            Err(ApiError::Truncated(_))
        ));
    }
}
