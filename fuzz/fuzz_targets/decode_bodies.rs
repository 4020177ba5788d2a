//! Every request-body decoder (tutorial JSON, BetterAuth JSON and form) on
//! arbitrary bytes. Input: one byte choosing the content type, then the body.
//! Errors are expected; a panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// What `BaBody` passes on: the media type, lower-cased, without parameters,
/// or none when the request has no `Content-Type`.
const MIMES: [Option<&str>; 5] = [
    None,
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    Some("text/plain"),
    Some("application/vnd.x+json"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let mime = MIMES[usize::from(selector) % MIMES.len()];
    warden_http::fuzzing::decode_bodies(mime, body);
});
