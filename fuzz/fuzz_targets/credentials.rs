//! The bearer / session-cookie parser, on arbitrary `Authorization` and
//! `Cookie` header bytes.
//!
//! Input: `<authorization bytes> 0x00 <cookie bytes>` (split at the first NUL,
//! a byte no header value may hold; no NUL means no cookie). An empty
//! authorization part means no `Authorization` header.
//!
//! Properties checked besides "no panic":
//! 1. A returned token is non-empty, at most 512 bytes
//!    (`cookies::MAX_TOKEN_VALUE`), and is either exactly the raw bearer
//!    value (no '.', '%' or whitespace in it) or came from a value that
//!    percent-decodes to exactly what `sign(token)` percent-decodes to, i.e.
//!    a correctly signed value (no other signature is accepted).
//! 2. Round trip: for the whole input taken as a token (when it is non-empty
//!    UTF-8 and its signed form fits in 512 bytes), `sign(token)` is accepted
//!    back as the same token, as a cookie and as a bearer value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode;
use warden_http::fuzzing::{credentials, sign};

const MAX_TOKEN_VALUE: usize = 512;
const COOKIE_NAME: &str = "warden.session_token";

/// Whether the harness sends an `Authorization` header, as
/// `fuzzing::credentials` decides it.
fn has_authorization(auth: &[u8]) -> bool {
    !auth.is_empty() && axum_like_header_ok(auth)
}

/// `http::HeaderValue::from_bytes`: visible ASCII, SP, HTAB, and obs-text.
fn axum_like_header_ok(b: &[u8]) -> bool {
    b.iter().all(|&c| c == b'\t' || (c >= 32 && c != 127))
}

/// The value the parser looked at: the bearer credential, or the session
/// cookie's value (first cookie of that name).
fn source_value<'a>(auth: &'a [u8], cookie: &'a [u8]) -> Option<&'a str> {
    if has_authorization(auth) {
        let s = std::str::from_utf8(auth).ok()?.trim();
        let (_, token) = s.split_once(char::is_whitespace)?;
        Some(token.trim())
    } else {
        if !axum_like_header_ok(cookie) {
            return None;
        }
        std::str::from_utf8(cookie)
            .ok()?
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| *n == COOKIE_NAME)
            .map(|(_, v)| v.trim())
    }
}

fn decoded(v: &str) -> Vec<u8> {
    percent_decode(v.as_bytes()).collect()
}

fuzz_target!(|data: &[u8]| {
    let (auth, cookie) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };

    if let Some(token) = credentials(auth, cookie) {
        assert!(!token.is_empty(), "empty token accepted");
        assert!(
            token.len() <= MAX_TOKEN_VALUE,
            "token of {} bytes accepted",
            token.len()
        );
        let source = source_value(auth, cookie)
            .unwrap_or_else(|| panic!("token {token:?} returned with no credential in the input"));
        let raw_bearer = has_authorization(auth)
            && source == token
            && !token.contains(['.', '%'])
            && !token.contains(char::is_whitespace);
        if !raw_bearer {
            assert_eq!(
                decoded(source),
                decoded(&sign(&token)),
                "token {token:?} accepted from {source:?}, which is not sign(token)"
            );
        }
    }

    // Round trip of a valid signed value.
    if let Ok(token) = std::str::from_utf8(data) {
        if token.is_empty() {
            return;
        }
        let signed = sign(token);
        if signed.len() > MAX_TOKEN_VALUE {
            return;
        }
        let cookie = format!("a=b; {COOKIE_NAME}={signed}; c=d");
        assert_eq!(
            credentials(b"", cookie.as_bytes()).as_deref(),
            Some(token),
            "signed cookie not accepted back"
        );
        let bearer = format!("Bearer {signed}");
        assert_eq!(
            credentials(bearer.as_bytes(), b"").as_deref(),
            Some(token),
            "signed bearer not accepted back"
        );
    }
});
