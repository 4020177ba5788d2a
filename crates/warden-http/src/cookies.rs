//! The session cookie, signed as BetterAuth (better-call) signs it:
//! `<name>=encodeURIComponent(token + "." + base64(HMAC-SHA256(secret, token)))`.
//! The same signed form is accepted as a bearer token.

use std::fmt;
use std::sync::Arc;

use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderValue};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::Sha256;

/// Longest cookie or bearer value we look at; anything longer is refused
/// before any work is done on it.
pub const MAX_TOKEN_VALUE: usize = 512;

/// The characters `encodeURIComponent` leaves alone.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// The key that signs cookies: the server secret. Its `Debug` prints nothing.
#[derive(Clone)]
pub struct SigningKey(Arc<[u8]>);

impl SigningKey {
    pub fn new(secret: &[u8]) -> Self {
        SigningKey(secret.into())
    }

    /// A random key, for embedders that do not configure one: cookies then
    /// stop verifying when the process restarts (bearer tokens still work).
    pub fn random() -> Self {
        SigningKey::new(warden_core::token::random_string(48).as_bytes())
    }

    fn mac(&self, value: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(value.as_bytes());
        mac
    }

    /// `base64(HMAC-SHA256(key, value))`, 44 characters.
    pub fn signature(&self, value: &str) -> String {
        STANDARD.encode(self.mac(value).finalize().into_bytes())
    }

    /// Checks a signature in constant time.
    pub fn verify(&self, value: &str, signature: &str) -> bool {
        // better-call's shape check: 44 characters ending in '='.
        if signature.len() != 44 || !signature.ends_with('=') {
            return false;
        }
        match STANDARD.decode(signature) {
            Ok(bytes) => self.mac(value).verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// What a signed value turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Unsigned {
    /// The signature is valid: here is the token.
    Valid(String),
    /// Malformed, or the signature does not match.
    Invalid,
}

/// Cookie names and attributes.
#[derive(Clone, Debug)]
pub struct CookieSettings {
    /// Cookie names are `<prefix>.session_token` (default prefix `warden`).
    pub prefix: String,
    /// `Secure` cookies with the `__Secure-` name prefix: set when the base
    /// URL is https.
    pub secure: bool,
    pub key: SigningKey,
}

impl Default for CookieSettings {
    fn default() -> Self {
        CookieSettings {
            prefix: "warden".into(),
            secure: false,
            key: SigningKey::random(),
        }
    }
}

impl CookieSettings {
    pub fn session_cookie_name(&self) -> String {
        let name = format!("{}.session_token", self.prefix);
        if self.secure {
            format!("__Secure-{name}")
        } else {
            name
        }
    }

    /// The signed, URL-encoded form of a token: the cookie value, and what
    /// the `set-auth-token` header carries.
    pub fn signed_value(&self, token: &str) -> String {
        let signed = format!("{token}.{}", self.key.signature(token));
        utf8_percent_encode(&signed, URI_COMPONENT).to_string()
    }

    /// Verifies `token.signature`, URL-encoded or not.
    pub fn unsign(&self, value: &str) -> Unsigned {
        if value.len() > MAX_TOKEN_VALUE {
            return Unsigned::Invalid;
        }
        let decoded = match percent_decode_str(value).decode_utf8() {
            Ok(d) => d,
            Err(_) => return Unsigned::Invalid,
        };
        let Some((token, signature)) = decoded.rsplit_once('.') else {
            return Unsigned::Invalid;
        };
        if !token.is_empty() && self.key.verify(token, signature) {
            Unsigned::Valid(token.to_owned())
        } else {
            Unsigned::Invalid
        }
    }

    /// `Set-Cookie` for a session. `max_age_secs: None` makes a browser-session
    /// cookie ("remember me" off).
    pub fn set_session(&self, token: &str, max_age_secs: Option<i64>) -> HeaderValue {
        let mut c = format!(
            "{}={}; Path=/; HttpOnly; SameSite=Lax",
            self.session_cookie_name(),
            self.signed_value(token)
        );
        if let Some(age) = max_age_secs {
            c.push_str(&format!("; Max-Age={}", age.max(0)));
        }
        if self.secure {
            c.push_str("; Secure");
        }
        HeaderValue::try_from(c).expect("cookie is ASCII")
    }

    /// `Set-Cookie` that deletes the session cookie.
    pub fn clear_session(&self) -> HeaderValue {
        let mut c = format!(
            "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0",
            self.session_cookie_name()
        );
        if self.secure {
            c.push_str("; Secure");
        }
        HeaderValue::try_from(c).expect("cookie is ASCII")
    }

    pub fn device_cookie_name(&self) -> String {
        self.cookie_name("device")
    }

    /// `Set-Cookie` remembering that this browser signed in as `user_id`
    /// (400 days, the most browsers keep): a locked account still lets its
    /// owner in from such a device. Signed with a separate context, so it
    /// can never pass for a session cookie.
    pub fn set_device(&self, user_id: &str) -> HeaderValue {
        self.set_signed("device", "device", user_id, Some(400 * 24 * 3600))
    }

    /// The user id in a valid device cookie.
    pub fn read_device(&self, headers: &HeaderMap) -> Option<String> {
        self.read_signed(headers, "device", "device")
    }

    fn cookie_name(&self, suffix: &str) -> String {
        let name = format!("{}.{suffix}", self.prefix);
        if self.secure {
            format!("__Secure-{name}")
        } else {
            name
        }
    }

    /// `Set-Cookie` for `<prefix>.<suffix>` holding `value` signed in the
    /// context `context` (so that no cookie can pass for another kind).
    fn set_signed(
        &self,
        suffix: &str,
        context: &str,
        value: &str,
        max_age: Option<u64>,
    ) -> HeaderValue {
        let sig = self.key.signature(&format!("{context}|{value}"));
        let v = utf8_percent_encode(&format!("{value}.{sig}"), URI_COMPONENT).to_string();
        let mut c = format!(
            "{}={v}; Path=/; HttpOnly; SameSite=Lax",
            self.cookie_name(suffix)
        );
        if let Some(age) = max_age {
            c.push_str(&format!("; Max-Age={age}"));
        }
        if self.secure {
            c.push_str("; Secure");
        }
        HeaderValue::try_from(c).expect("cookie is ASCII")
    }

    /// The value of a valid cookie that [`Self::set_signed`] made.
    fn read_signed(&self, headers: &HeaderMap, suffix: &str, context: &str) -> Option<String> {
        let raw = cookie_value(headers, &self.cookie_name(suffix))?;
        if raw.len() > MAX_TOKEN_VALUE {
            return None;
        }
        let decoded = percent_decode_str(raw).decode_utf8().ok()?;
        let (value, sig) = decoded.rsplit_once('.')?;
        (!value.is_empty() && self.key.verify(&format!("{context}|{value}"), sig))
            .then(|| value.to_owned())
    }

    fn clear(&self, suffix: &str) -> HeaderValue {
        let mut c = format!(
            "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0",
            self.cookie_name(suffix)
        );
        if self.secure {
            c.push_str("; Secure");
        }
        HeaderValue::try_from(c).expect("cookie is ASCII")
    }

    /// `Set-Cookie` for a two-factor challenge (a password sign-in waiting
    /// for its second step): `<prefix>.two_factor`, signed.
    pub fn set_two_factor(&self, challenge: &str, max_age_secs: u64) -> HeaderValue {
        self.set_signed("two_factor", "two-factor", challenge, Some(max_age_secs))
    }

    pub fn read_two_factor(&self, headers: &HeaderMap) -> Option<String> {
        self.read_signed(headers, "two_factor", "two-factor")
    }

    pub fn clear_two_factor(&self) -> HeaderValue {
        self.clear("two_factor")
    }

    /// `Set-Cookie` naming a passkey ceremony (its options were handed out
    /// and its state is kept server-side): `<prefix>.better-auth-passkey`,
    /// BetterAuth's name, signed.
    pub fn set_passkey(&self, token: &str, max_age_secs: u64) -> HeaderValue {
        self.set_signed("better-auth-passkey", "passkey", token, Some(max_age_secs))
    }

    pub fn read_passkey(&self, headers: &HeaderMap) -> Option<String> {
        self.read_signed(headers, "better-auth-passkey", "passkey")
    }

    pub fn clear_passkey(&self) -> HeaderValue {
        self.clear("better-auth-passkey")
    }

    /// `Set-Cookie` for a trusted device (skips the second step):
    /// `<prefix>.trust_device`, signed.
    pub fn set_trust_device(&self, token: &str, max_age_secs: u64) -> HeaderValue {
        self.set_signed("trust_device", "trust-device", token, Some(max_age_secs))
    }

    pub fn read_trust_device(&self, headers: &HeaderMap) -> Option<String> {
        self.read_signed(headers, "trust_device", "trust-device")
    }

    pub fn clear_trust_device(&self) -> HeaderValue {
        self.clear("trust_device")
    }

    /// `Set-Cookie` keeping an admin's own session token while the admin
    /// impersonates a user (BetterAuth's `admin_session`), signed; a
    /// browser-session cookie.
    pub fn set_admin_session(&self, token: &str) -> HeaderValue {
        self.set_signed("admin_session", "admin-session", token, None)
    }

    pub fn read_admin_session(&self, headers: &HeaderMap) -> Option<String> {
        self.read_signed(headers, "admin_session", "admin-session")
    }

    pub fn clear_admin_session(&self) -> HeaderValue {
        self.clear("admin_session")
    }

    /// `Set-Cookie` binding an OAuth `state` to this browser:
    /// `<prefix>.oauth_state`, signed. `SameSite=Lax` lets it come back with
    /// the provider's top-level redirect.
    pub fn set_oauth_state(&self, oauth_state: &str, max_age_secs: u64) -> HeaderValue {
        self.set_signed(
            "oauth_state",
            "oauth-state",
            oauth_state,
            Some(max_age_secs),
        )
    }

    pub fn read_oauth_state(&self, headers: &HeaderMap) -> Option<String> {
        self.read_signed(headers, "oauth_state", "oauth-state")
    }

    pub fn clear_oauth_state(&self) -> HeaderValue {
        self.clear("oauth_state")
    }

    /// The session cookie of a request, if it sent one.
    pub fn read_session(&self, headers: &HeaderMap) -> Option<Unsigned> {
        let name = self.session_cookie_name();
        cookie_value(headers, &name).map(|v| self.unsign(v))
    }
}

/// The value of the first cookie called `name` in the request's `Cookie`
/// headers.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> CookieSettings {
        CookieSettings {
            prefix: "better-auth".into(),
            secure: false,
            key: SigningKey::new(b"better-auth-secret-12345678901234567890"),
        }
    }

    #[test]
    fn signs_like_better_call() {
        let s = settings();
        let v = s.signed_value("abc");
        // HMAC-SHA256("better-auth-secret-...", "abc"), base64, '+' '/' '='
        // percent-encoded as encodeURIComponent does.
        assert!(v.starts_with("abc."));
        assert!(v.ends_with("%3D"));
        assert!(!v.contains('+') && !v.contains('/') && !v.contains('='));
        assert_eq!(s.unsign(&v), Unsigned::Valid("abc".into()));
        // Not URL-encoded: accepted too.
        let raw = percent_decode_str(&v).decode_utf8().unwrap().to_string();
        assert_eq!(s.unsign(&raw), Unsigned::Valid("abc".into()));
    }

    #[test]
    fn rejects_tampering() {
        let s = settings();
        let v = percent_decode_str(&s.signed_value("tokenA"))
            .decode_utf8()
            .unwrap()
            .to_string();
        let (_, sig) = v.rsplit_once('.').unwrap();
        assert_eq!(s.unsign(&format!("tokenB.{sig}")), Unsigned::Invalid);
        assert_eq!(s.unsign("tokenA"), Unsigned::Invalid);
        assert_eq!(s.unsign("tokenA.short="), Unsigned::Invalid);
        let other = CookieSettings {
            key: SigningKey::new(b"another secret"),
            ..settings()
        };
        assert_eq!(other.unsign(&v), Unsigned::Invalid);
    }

    #[test]
    fn reads_cookie_headers() {
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_static("a=1; better-auth.session_token=x.y"),
        );
        h.append(COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie_value(&h, "better-auth.session_token"), Some("x.y"));
        assert_eq!(cookie_value(&h, "b"), Some("2"));
        assert_eq!(cookie_value(&h, "c"), None);
    }
}
