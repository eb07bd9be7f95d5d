//! Content codings of cached pages: the gzip and brotli copies made once per entry (when first
//! asked for), and the choice among them by `Accept-Encoding` with its q-values (RFC 9110
//! §12.5.3).

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::Bytes;

/// A coding a cached entry can answer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Identity,
    Gzip,
    Brotli,
}

/// The coding to answer `req` in, among those the entry has (`gzip`, `br`): the highest
/// q-value the client gives; on a tie brotli (smaller), then gzip. A coding the client does not
/// name gets `*`'s q-value; identity, unless named, ranks below any acceptable coding, and is
/// sent when nothing else is acceptable (a 406 helps nobody).
pub fn preferred(req: &HttpRequest, gzip: bool, br: bool) -> Coding {
    let mut named: Vec<(String, f32)> = Vec::new();
    for value in req.headers().get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for item in value.split(',') {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("").to_ascii_lowercase();
            if coding.is_empty() {
                continue;
            }
            // A malformed q-value refuses the coding rather than guess.
            let q = parts
                .find_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
                .map_or(Some(1.0), |q| {
                    q.parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q))
                })
                .unwrap_or(0.0);
            named.push((coding, q));
        }
    }
    if named.is_empty() {
        return Coding::Identity;
    }
    let star = named.iter().find(|(c, _)| c == "*").map(|(_, q)| *q);
    let named_q = |name: &str| named.iter().find(|(c, _)| c == name).map(|(_, q)| *q);
    let q_of = |name: &str| named_q(name).or(star);
    let candidates = [
        (Coding::Brotli, br, q_of("br").unwrap_or(0.0)),
        (
            Coding::Gzip,
            gzip,
            q_of("gzip").or(q_of("x-gzip")).unwrap_or(0.0),
        ),
        // Not named, identity comes last: a client that lists codings wants one of them.
        (Coding::Identity, true, named_q("identity").unwrap_or(0.001)),
    ];
    let mut best = (Coding::Identity, 0.0f32);
    for (coding, available, q) in candidates {
        if available && q > best.1 {
            best = (coding, q);
        }
    }
    best.0
}

pub fn gzip(body: &[u8]) -> Option<Bytes> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 3),
        flate2::Compression::best(),
    );
    encoder.write_all(body).ok()?;
    encoder.finish().ok().map(Bytes::from)
}

/// Quality 6 of 11. The brotli crate's encoder allocates its match finder by quality, whatever
/// the input's size: 32 MiB at 9 (written all over by a 60 kB page), 2 MiB at 6, for a copy
/// 1.5 % larger on the 60 kB home page and the same size on a 5 kB post, made 6 to 30 times
/// faster (issue 15: a burst of cache misses held one such encoder per request; figures in
/// benches/README.md).
const BROTLI_QUALITY: u32 = 6;
/// A 4 MiB window: larger than any page, so it never limits the match distance. (A window
/// sized to the page is no faster: at 64 KiB or less this crate's encoder falls back to a match
/// finder 40 times slower, measured on a post and the home page.)
const BROTLI_WINDOW: u32 = 22;

pub fn brotli(body: &[u8]) -> Option<Bytes> {
    use std::io::Write;
    let mut out = Vec::with_capacity(body.len() / 4);
    {
        let mut encoder =
            brotli::CompressorWriter::new(&mut out, 4096, BROTLI_QUALITY, BROTLI_WINDOW);
        encoder.write_all(body).ok()?;
        encoder.flush().ok()?;
    }
    Some(Bytes::from(out))
}
