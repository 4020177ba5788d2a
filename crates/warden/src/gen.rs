//! `warden gen client`: the API's OpenAPI document, or a TypeScript client
//! generated from it (`warden-clientgen`), from the configuration alone.

use crate::config::Config;

/// What `warden gen client` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// An Encore-shaped TypeScript client.
    Typescript,
    /// The OpenAPI 3.1 document (JSON), as `/openapi.json` serves it.
    Openapi,
}

#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error(transparent)]
    Client(#[from] warden_clientgen::GenError),
    #[error("--base-url {0:?} must be an http:// or https:// URL")]
    BaseUrl(String),
}

/// The OpenAPI document this configuration serves at `/openapi.json`.
pub fn openapi_document(config: &Config) -> serde_json::Value {
    let betterauth = config
        .betterauth
        .enabled
        .then(|| warden_http::BetterAuthSettings {
            base_path: config.betterauth.base_path.clone(),
        });
    warden_http::openapi_document(
        betterauth.as_ref(),
        &crate::warden_settings(config).password,
    )
}

/// The generated file, byte for byte the same for the same binary and
/// configuration.
pub fn client(
    config: &Config,
    lang: Lang,
    services: Option<Vec<String>>,
    base_url: Option<String>,
) -> Result<String, GenError> {
    let doc = openapi_document(config);
    match lang {
        Lang::Openapi => {
            let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
            text.push('\n');
            Ok(text)
        }
        Lang::Typescript => {
            let base_url = base_url.unwrap_or_else(|| config.base_url.clone());
            if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                return Err(GenError::BaseUrl(base_url));
            }
            let options = warden_clientgen::Options {
                services,
                base_url: base_url.trim_end_matches('/').to_owned(),
                app_name: "warden".into(),
            };
            Ok(warden_clientgen::typescript(&doc, &options)?)
        }
    }
}
