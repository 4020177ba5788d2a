//! The page's files, embedded in the binary at build time (rust-embed, in
//! debug builds too): nothing is read from disk or fetched from a network.

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        _ => "text/plain; charset=utf-8",
    }
}

/// The file at `path`, revalidated by its hash (`ETag`, 304).
fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(file) = Assets::get(path) else {
        return crate::guard::error(StatusCode::NOT_FOUND, "not_found", "no such file");
    };
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
    let mut response = if headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(CONTENT_TYPE, HeaderValue::from_static(content_type(path)))],
            file.data.into_owned(),
        )
            .into_response()
    };
    let h = response.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(ETAG, v);
    }
    response
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

pub(crate) async fn explorer(headers: HeaderMap) -> Response {
    serve("explorer.html", &headers)
}

pub(crate) async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    if path.split('/').any(|seg| seg == ".." || seg.is_empty()) {
        return crate::guard::error(StatusCode::NOT_FOUND, "not_found", "no such file");
    }
    serve(&path, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page's own files and the vendored explorer are in the binary,
    /// with their licence.
    #[test]
    fn the_page_is_embedded() {
        for f in [
            "index.html",
            "explorer.html",
            "app.js",
            "app.css",
            "explorer.js",
            "vendor/swagger-ui/swagger-ui-bundle.js",
            "vendor/swagger-ui/swagger-ui.css",
            "vendor/swagger-ui/LICENSE",
        ] {
            assert!(Assets::get(f).is_some(), "{f} is not embedded");
        }
    }

    /// No page loads anything from another host, and none has an inline
    /// script or style (the CSP would block it).
    #[test]
    fn pages_load_nothing_from_elsewhere_and_nothing_inline() {
        for name in Assets::iter() {
            if name.starts_with("vendor/") {
                continue;
            }
            let file = Assets::get(&name).unwrap();
            let text = String::from_utf8_lossy(&file.data);
            if name.ends_with(".html") {
                for bad in [
                    "src=\"http",
                    "href=\"http",
                    "src=\"//",
                    "href=\"//",
                    " style=",
                    " onclick=",
                    " onload=",
                ] {
                    assert!(!text.contains(bad), "{name} contains {bad:?}");
                }
                for (i, _) in text.match_indices("<script") {
                    let tag = &text[i..i + text[i..].find('>').unwrap()];
                    assert!(tag.contains("src="), "{name} has an inline script");
                }
                assert!(!text.contains("<style"), "{name} has an inline style");
            }
            if name.ends_with(".js") {
                for bad in ["eval(", "new Function(", "import(\"http", "fetch(\"http"] {
                    assert!(!text.contains(bad), "{name} contains {bad:?}");
                }
            }
        }
    }
}
