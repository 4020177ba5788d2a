//! The stored-password-hash parser (argon2 PHC strings and BetterAuth's
//! `<salt>:<hex key>` scrypt form) on arbitrary UTF-8. Never hashes: the
//! verify functions are deliberately slow. For PHC strings it also runs the
//! cost-parameter extraction that verification does before hashing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_core::password::{parse_stored_hash, stored_argon2_params, StoredHash};

fuzz_target!(|data: &[u8]| {
    let Ok(stored) = std::str::from_utf8(data) else {
        return;
    };
    match parse_stored_hash(stored) {
        None => {}
        Some(StoredHash::Phc(parsed)) => {
            assert!(stored.starts_with('$'));
            // What `verify_blocking` does before any hashing; accepted
            // costs stay within the bounds it promises.
            if let Some(params) = stored_argon2_params(&parsed) {
                assert!(params.m_cost() <= 256 * 1024);
                assert!(params.t_cost() <= 16 && params.p_cost() <= 16);
            }
        }
        Some(StoredHash::Scrypt { salt, key }) => {
            assert!(!stored.starts_with('$'));
            let (want_salt, key_hex) = stored.split_once(':').expect("scrypt form has a ':'");
            assert_eq!(salt, want_salt);
            assert!(!salt.is_empty());
            assert_eq!(key.len(), 64);
            assert!(key_hex.eq_ignore_ascii_case(&hex_encode(&key)));
        }
    }
});

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
