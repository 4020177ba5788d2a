//! Two-factor primitives: TOTP (RFC 6238), backup codes, and the
//! encryption of TOTP secrets at rest. The sign-in flow that uses them is in
//! `two_factor_flow.rs`.
//!
//! Formats are BetterAuth's, so that a BetterAuth database's two-factor
//! users keep working under Warden with the same server secret:
//! - the TOTP secret is 32 alphanumeric characters whose ASCII bytes are the
//!   HMAC key (the authenticator sees them base32-encoded);
//! - it is stored as `hex(nonce || XChaCha20-Poly1305(SHA-256(secret), s))`;
//! - backup codes are `XXXXX-XXXXX` from `[A-Za-z0-9]`. BetterAuth stores
//!   them encrypted; Warden reads that and writes its own form, a keyed hash
//!   of each code (`warden-hmac:` + JSON array of hex HMAC-SHA256), so that a
//!   leaked database yields no usable code.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::token::random_string;

/// TOTP parameters: RFC 6238's defaults, which every authenticator app uses.
pub const DIGITS: u32 = 6;
pub const PERIOD_SECS: u64 = 30;
/// Steps accepted either side of the current one (clock drift).
pub const WINDOW: i64 = 1;
/// Backup codes per set.
pub const BACKUP_CODES: usize = 10;

const BACKUP_PREFIX: &str = "warden-hmac:";

/// The HOTP value (RFC 4226) of `key` at `counter`, HMAC-SHA1, `digits`
/// long with leading zeros.
pub fn hotp(key: &[u8], counter: u64, digits: u32) -> String {
    let mut mac =
        <Hmac<sha1::Sha1> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = (h[19] & 0x0f) as usize;
    let bin = u32::from_be_bytes([
        h[offset] & 0x7f,
        h[offset + 1],
        h[offset + 2],
        h[offset + 3],
    ]);
    let modulus = 10u64.pow(digits);
    format!("{:0width$}", bin as u64 % modulus, width = digits as usize)
}

/// The TOTP time step of a Unix time.
pub fn step_at(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(PERIOD_SECS as i64)
}

/// The TOTP code of `key` for time step `step`.
pub fn totp(key: &[u8], step: i64) -> String {
    hotp(key, step.max(0) as u64, DIGITS)
}

/// The step within the window around `now_step` whose code is `code`, if
/// any. Compares in constant time.
pub fn matching_step(key: &[u8], code: &str, now_step: i64) -> Option<i64> {
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut found = None;
    for step in now_step - WINDOW..=now_step + WINDOW {
        if bool::from(totp(key, step).as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    found
}

/// A new TOTP secret (BetterAuth's shape: 32 alphanumeric characters).
pub fn new_secret() -> String {
    random_string(32)
}

/// RFC 4648 base32 without padding, as authenticator apps expect.
pub fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in data {
        buffer = (buffer << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            out.push(ALPHABET[((buffer >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// What stays unescaped in an `otpauth://` label or parameter: RFC 3986's
/// unreserved characters, and `@` (emails read better, apps accept it).
const OTPAUTH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'@');

/// The `otpauth://` URI an authenticator app scans.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &str) -> String {
    let enc = |s| utf8_percent_encode(s, OTPAUTH);
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&digits={DIGITS}&period={PERIOD_SECS}",
        enc(issuer),
        enc(account),
        base32(secret.as_bytes()),
        enc(issuer),
    )
}

/// A new set of backup codes, `XXXXX-XXXXX` each (about 59 bits).
pub fn new_backup_codes() -> Vec<String> {
    (0..BACKUP_CODES)
        .map(|_| {
            let s = random_string(10);
            format!("{}-{}", &s[..5], &s[5..])
        })
        .collect()
}

/// A backup code as typed: surrounding space removed, the dash optional.
pub fn normalize_backup_code(code: &str) -> Option<String> {
    let c = code.trim();
    let plain: String = c.chars().filter(|ch| *ch != '-').collect();
    (plain.len() == 10 && plain.bytes().all(|b| b.is_ascii_alphanumeric()) && c.len() <= 11)
        .then(|| format!("{}-{}", &plain[..5], &plain[5..]))
}

/// Keys derived from the server secret.
#[derive(Clone)]
pub struct SecretKeys {
    /// BetterAuth's `symmetricEncrypt` key: SHA-256 of the secret.
    aead: [u8; 32],
    /// Keyed hashing of backup codes.
    codes: [u8; 32],
}

impl std::fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKeys(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("stored two-factor data cannot be decrypted (was the server secret changed?)")]
pub struct DecryptError;

impl SecretKeys {
    pub fn from_secret(secret: &[u8]) -> Self {
        let aead: [u8; 32] = Sha256::digest(secret).into();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("any key length");
        mac.update(b"warden/two-factor/backup-codes/v1");
        SecretKeys {
            aead,
            codes: mac.finalize().into_bytes().into(),
        }
    }

    /// Keys nobody else knows: data encrypted with them dies with the
    /// process (for a service built without a secret).
    pub fn random() -> Self {
        let mut s = [0u8; 32];
        OsRng.fill_bytes(&mut s);
        Self::from_secret(&s)
    }

    /// `hex(nonce || ciphertext)`, BetterAuth's `symmetricEncrypt`.
    pub fn encrypt(&self, plaintext: &str) -> String {
        let cipher = XChaCha20Poly1305::new((&self.aead).into());
        let mut nonce = [0u8; 24];
        OsRng.fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(XNonce::from_slice(&nonce), plaintext.as_bytes())
            .expect("encryption of in-memory data cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        hex::encode(out)
    }

    pub fn decrypt(&self, stored: &str) -> Result<String, DecryptError> {
        let bytes = hex::decode(stored.trim()).map_err(|_| DecryptError)?;
        if bytes.len() < 24 + 16 {
            return Err(DecryptError);
        }
        let (nonce, ct) = bytes.split_at(24);
        let cipher = XChaCha20Poly1305::new((&self.aead).into());
        let pt = cipher
            .decrypt(XNonce::from_slice(nonce), ct)
            .map_err(|_| DecryptError)?;
        String::from_utf8(pt).map_err(|_| DecryptError)
    }

    fn code_hash(&self, code: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.codes).expect("any key length");
        mac.update(code.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The stored form of an emailed one-time code kept under `identifier`:
    /// a keyed hash bound to the identifier (a leaked row is no use
    /// without the server secret, and no use for another email).
    pub fn otp_hash(&self, identifier: &str, code: &str) -> String {
        hex::encode(self.otp_mac(identifier, code).finalize().into_bytes())
    }

    /// Does `code` match `stored` (from [`SecretKeys::otp_hash`])? In
    /// constant time.
    pub fn otp_matches(&self, identifier: &str, code: &str, stored: &str) -> bool {
        match hex::decode(stored) {
            Ok(bytes) => self.otp_mac(identifier, code).verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }

    fn otp_mac(&self, identifier: &str, code: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.codes).expect("any key length");
        mac.update(b"warden/email-otp/v1\0");
        mac.update(identifier.as_bytes());
        mac.update(b"\0");
        mac.update(code.as_bytes());
        mac
    }

    /// The stored form of a set of backup codes.
    pub fn seal_backup_codes(&self, codes: &[String]) -> String {
        let hashes: Vec<String> = codes.iter().map(|c| self.code_hash(c)).collect();
        seal_hashes(&hashes)
    }

    /// Checks `code` against a stored set. On a match, returns the stored
    /// form of the set without it (each code works once).
    pub fn use_backup_code(
        &self,
        stored: &str,
        code: &str,
    ) -> Result<Option<String>, DecryptError> {
        let Some(code) = normalize_backup_code(code) else {
            return Ok(None);
        };
        let want = self.code_hash(&code);
        let mut hashes = self.stored_code_hashes(stored)?;
        let mut hit = None;
        for (i, h) in hashes.iter().enumerate() {
            if bool::from(h.as_bytes().ct_eq(want.as_bytes())) {
                hit = Some(i);
            }
        }
        Ok(hit.map(|i| {
            hashes.remove(i);
            seal_hashes(&hashes)
        }))
    }

    /// How many unused codes a stored set holds.
    pub fn backup_codes_left(&self, stored: &str) -> Result<usize, DecryptError> {
        Ok(self.stored_code_hashes(stored)?.len())
    }

    /// The hashes of a stored set of codes, in Warden's form or BetterAuth's
    /// (the codes themselves, encrypted).
    fn stored_code_hashes(&self, stored: &str) -> Result<Vec<String>, DecryptError> {
        match stored.strip_prefix(BACKUP_PREFIX) {
            Some(json) => serde_json::from_str(json).map_err(|_| DecryptError),
            None => {
                let plain: Vec<String> =
                    serde_json::from_str(&self.decrypt(stored)?).map_err(|_| DecryptError)?;
                Ok(plain.iter().map(|c| self.code_hash(c)).collect())
            }
        }
    }
}

/// Warden's stored form of a set of code hashes.
fn seal_hashes(hashes: &[String]) -> String {
    format!(
        "{BACKUP_PREFIX}{}",
        serde_json::to_string(hashes).expect("strings serialize")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 (key "12345678901234567890", 8 digits).
    #[test]
    fn rfc6238_vectors() {
        let key = b"12345678901234567890";
        for (t, want) in [
            (59i64, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(hotp(key, step_at(t) as u64, 8), want, "T={t}");
            // 6 digits are the last 6 of the 8 (the same truncation, mod 10^6).
            assert_eq!(totp(key, step_at(t)), want[2..], "T={t}");
        }
    }

    /// RFC 4226 Appendix D.
    #[test]
    fn rfc4226_vectors() {
        let want = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (i, w) in want.iter().enumerate() {
            assert_eq!(hotp(b"12345678901234567890", i as u64, 6), *w);
        }
    }

    #[test]
    fn window_is_one_step_either_side() {
        let key = b"12345678901234567890";
        let now = 1000;
        for d in -1..=1 {
            assert_eq!(matching_step(key, &totp(key, now + d), now), Some(now + d));
        }
        for d in [-3, -2, 2, 3] {
            assert_eq!(matching_step(key, &totp(key, now + d), now), None);
        }
        assert_eq!(matching_step(key, "12345", now), None);
        assert_eq!(matching_step(key, "12345a", now), None);
    }

    #[test]
    fn base32_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(i.as_bytes()), o);
        }
    }

    #[test]
    fn uri_shape() {
        let uri = otpauth_uri("My App", "a+b@example.com", "12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/My%20App:a%2Bb@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=My%20App&digits=6&period=30"
        );
    }

    #[test]
    fn encryption_round_trips_and_detects_tampering() {
        let k = SecretKeys::from_secret(b"a server secret of enough length!!");
        let sealed = k.encrypt("JBSWY3DPEHPK3PXP");
        assert_eq!(k.decrypt(&sealed).unwrap(), "JBSWY3DPEHPK3PXP");
        assert_ne!(k.encrypt("x"), k.encrypt("x"), "random nonces");
        let mut bad = sealed.clone().into_bytes();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'0' { b'1' } else { b'0' };
        assert!(k.decrypt(std::str::from_utf8(&bad).unwrap()).is_err());
        let other = SecretKeys::from_secret(b"another secret");
        assert!(other.decrypt(&sealed).is_err());
    }

    #[test]
    fn backup_codes_work_once() {
        let k = SecretKeys::from_secret(b"secret");
        let codes = new_backup_codes();
        assert_eq!(codes.len(), 10);
        assert!(codes.iter().all(|c| c.len() == 11 && &c[5..6] == "-"));
        let stored = k.seal_backup_codes(&codes);
        assert!(!stored.contains(&codes[0]), "codes are not stored");
        let after = k.use_backup_code(&stored, &codes[3]).unwrap().unwrap();
        assert_eq!(k.backup_codes_left(&after).unwrap(), 9);
        assert!(k.use_backup_code(&after, &codes[3]).unwrap().is_none());
        // Without the dash too.
        let plain = codes[4].replace('-', "");
        assert!(k.use_backup_code(&after, &plain).unwrap().is_some());
        assert!(k.use_backup_code(&after, "AAAAA-AAAAA").unwrap().is_none());
    }

    #[test]
    fn reads_betterauth_encrypted_backup_codes() {
        let k = SecretKeys::from_secret(b"secret");
        let stored = k.encrypt(r#"["abcde-12345","ZZZZZ-00000"]"#);
        let after = k.use_backup_code(&stored, "ZZZZZ-00000").unwrap().unwrap();
        assert!(after.starts_with(BACKUP_PREFIX));
        assert_eq!(k.backup_codes_left(&after).unwrap(), 1);
    }
}
