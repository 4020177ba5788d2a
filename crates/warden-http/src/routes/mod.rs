pub mod admin;
pub mod auth;
pub mod email;
pub mod health;
#[cfg(feature = "passkey")]
pub mod passkey;
pub mod password;
pub mod passwordless;
pub mod profile;
pub mod sessions;
pub mod two_factor;

use serde::{Deserialize, Deserializer};

/// For optional, nullable fields: absent -> `None`, `null` -> `Some(None)`.
pub(crate) fn double_option<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}
