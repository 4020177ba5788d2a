//! `MailSink`: a real SMTP server for the integration tests.
//!
//! `MailSink::start()` runs `tests/support/smtp_sink.py` (Python 3 with
//! aiosmtpd, from the tests' own virtual environment: `python_env.rs`) on a
//! free port of 127.0.0.1. It speaks plain SMTP (no TLS), accepts AUTH
//! PLAIN/LOGIN with any credentials but does not require AUTH, and stores
//! each message it accepts in a temporary folder as `<n>.eml` (the DATA
//! exactly as received) and `<n>.json` (`{"mail_from", "rcpt_tos",
//! "auth_mechanism", "auth_login"}`), the .json first, each written
//! atomically. `messages()` reads that folder and parses the messages with
//! the small MIME parser below, which handles what lettre builds:
//! multipart/alternative (possibly inside multipart/mixed) with text/plain
//! and text/html parts in 7bit, 8bit, quoted-printable or base64, and
//! RFC 2047 encoded words in headers.
//!
//! The interpreter is `python_env::python()`: that environment's, or
//! `$WARDEN_TEST_PYTHON` when set.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

/// How long `start()` waits for the script's `LISTENING <port>` line.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A server (with a mock clock) that sends mail through a real SMTP sink,
/// as "Acme"; `tweak` adjusts the configuration further.
pub async fn spawn_app_with_sink(
    backend: crate::helpers::Backend,
    tweak: impl FnOnce(&mut warden::Config),
) -> (crate::helpers::TestApp, MailSink) {
    let sink = MailSink::start();
    let port = sink.port;
    let app = crate::helpers::spawn_app_with_clock(backend, |c| {
        c.mail.transport = Some(warden::config::MailTransport::Smtp);
        c.mail.smtp.host = "127.0.0.1".into();
        c.mail.smtp.port = port;
        c.mail.smtp.tls = warden::config::SmtpTls::None;
        c.mail.from = "Acme <no-reply@acme.example>".into();
        c.mail.app_name = "Acme".into();
        c.session.cache_ttl = std::time::Duration::ZERO;
        tweak(c);
    })
    .await;
    (app, sink)
}

/// A running SMTP sink; the process is killed when this is dropped.
pub struct MailSink {
    pub port: u16,
    child: Mutex<Child>,
    /// Held open: the script exits when its stdin closes.
    stdin: Option<ChildStdin>,
    dir: tempfile::TempDir,
    stderr: Arc<Mutex<String>>,
}

/// One message the sink received.
#[derive(Clone, Debug)]
pub struct SentMail {
    /// Envelope recipients (`RCPT TO`), in the order given.
    pub to: Vec<String>,
    /// Envelope sender (`MAIL FROM`), a bare address ("" for the null sender).
    pub from: String,
    /// The Subject header, unfolded and RFC 2047-decoded ("" if absent).
    pub subject: String,
    /// The first text/plain part, decoded, line endings normalized to `\n`
    /// ("" if the message has none).
    pub text: String,
    /// The first text/html part, decoded, line endings normalized to `\n`.
    pub html: Option<String>,
    /// The whole message as received (CRLF line endings), lossily as UTF-8.
    pub raw: String,
}

impl MailSink {
    /// Starts the sink and waits (at most 10 s) until it accepts connections.
    /// Panics, with the script's stderr, if it cannot be started.
    pub fn start() -> MailSink {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let dir = tempfile::Builder::new()
            .prefix("warden-mail-sink-")
            .tempdir()
            .expect("MailSink: cannot create a temporary folder");
        let interpreter = crate::python_env::python();
        let python = interpreter.display();
        let mut child = Command::new(&interpreter)
            .arg(&script)
            .args(["--port", "0", "--dir"])
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "MailSink: cannot run `{python} {}`: {e}. The SMTP sink needs Python 3 \
                     with aiosmtpd (tests/support/requirements.txt); set WARDEN_TEST_PYTHON \
                     to use another interpreter.",
                    script.display()
                )
            });

        // Drain stderr for the whole life of the process, so that the script
        // never blocks on a full pipe and failures can quote it.
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_thread = {
            let mut pipe = child.stderr.take().expect("stderr is piped");
            let stderr = Arc::clone(&stderr);
            std::thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                    stderr
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&chunk[..n]));
                }
            })
        };
        let (lines_tx, lines_rx) = mpsc::channel::<String>();
        {
            let pipe = child.stdout.take().expect("stdout is piped");
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    // After the LISTENING line nobody listens; keep draining.
                    let _ = lines_tx.send(line);
                }
            });
        }

        let deadline = Instant::now() + START_TIMEOUT;
        let mut other_output = Vec::new();
        let failure = loop {
            match lines_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => match line
                    .strip_prefix("LISTENING ")
                    .map(|p| p.trim().parse::<u16>())
                {
                    Some(Ok(port)) => {
                        return MailSink {
                            port,
                            stdin: child.stdin.take(),
                            child: Mutex::new(child),
                            dir,
                            stderr,
                        };
                    }
                    _ => other_output.push(line),
                },
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break format!("printed no `LISTENING <port>` line within {START_TIMEOUT:?}");
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    break match child.wait() {
                        Ok(status) => format!("exited ({status}) before listening"),
                        Err(e) => format!("closed its stdout before listening ({e})"),
                    };
                }
            }
        };
        let _ = stderr_thread.join();
        let stderr = stderr.lock().unwrap().clone();
        let stdout = if other_output.is_empty() {
            String::new()
        } else {
            format!("--- its stdout ---\n{}\n", other_output.join("\n"))
        };
        panic!(
            "MailSink: `{python} {}` {failure}.\n\
             The SMTP sink needs Python 3 with aiosmtpd (tests/support/requirements.txt)\n\
             {stdout}--- its stderr ---\n{}",
            script.display(),
            stderr.trim_end(),
        );
    }

    /// The folder the sink writes to.
    fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// All messages received so far, in the order the sink accepted them.
    pub fn messages(&self) -> Vec<SentMail> {
        let mut numbered: Vec<(u64, PathBuf)> = std::fs::read_dir(self.dir())
            .expect("MailSink: cannot read its folder")
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let n = path
                    .file_name()?
                    .to_str()?
                    .strip_suffix(".eml")?
                    .parse()
                    .ok()?;
                Some((n, path))
            })
            .collect();
        numbered.sort();
        numbered
            .into_iter()
            .filter_map(|(_, eml)| {
                // The sink renames <n>.eml into place after <n>.json.
                let raw = std::fs::read(&eml).ok()?;
                let meta: serde_json::Value = std::fs::read(eml.with_extension("json"))
                    .ok()
                    .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                    .unwrap_or_default();
                let from = meta["mail_from"].as_str().unwrap_or_default().to_owned();
                let to = meta["rcpt_tos"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|r| r.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                Some(SentMail::parse(&raw, from, to))
            })
            .collect()
    }

    /// Waits until at least `n` messages to `to` (compared case-insensitively
    /// with the envelope recipients and the addresses of the To header) have
    /// arrived, polling every 50 ms, and returns all messages to `to`.
    /// Panics after `timeout`, listing every message that did arrive.
    pub async fn wait_for(&self, to: &str, n: usize, timeout: Duration) -> Vec<SentMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let all = self.messages();
            let count = all.iter().filter(|m| m.is_to(to)).count();
            if count >= n {
                return all.into_iter().filter(|m| m.is_to(to)).collect();
            }
            if tokio::time::Instant::now() >= deadline {
                let mut report = String::new();
                for (i, m) in all.iter().enumerate() {
                    report.push_str(&format!(
                        "\n  #{}: from {:?} to {:?} (To: {:?}) subject {:?}",
                        i + 1,
                        m.from,
                        m.to,
                        m.header("To").unwrap_or_default(),
                        m.subject
                    ));
                }
                if all.is_empty() {
                    report.push_str(" none");
                }
                let exited = match self.child.lock().unwrap().try_wait() {
                    Ok(Some(status)) => format!("\nThe sink process has exited ({status})."),
                    _ => String::new(),
                };
                let stderr = self.stderr.lock().unwrap().clone();
                panic!(
                    "MailSink: expected at least {n} message(s) to {to} within {timeout:?}, \
                     got {count}. Arrived at the sink on port {}:{report}{exited}{}",
                    self.port,
                    if stderr.trim().is_empty() {
                        String::new()
                    } else {
                        format!("\n--- sink stderr ---\n{}", stderr.trim_end())
                    }
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for MailSink {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl SentMail {
    /// Parses a received message; `from` and `to` are its envelope.
    fn parse(raw: &[u8], from: String, to: Vec<String>) -> SentMail {
        let (head, body) = split_head_body(raw);
        let headers = parse_headers(head);
        let mut parts = Parts::default();
        walk_entity(&headers, body, &mut parts, 0);
        SentMail {
            to,
            from,
            subject: header_value(&headers, "Subject")
                .map(decode_words)
                .unwrap_or_default(),
            text: parts.text.unwrap_or_default(),
            html: parts.html,
            raw: String::from_utf8_lossy(raw).into_owned(),
        }
    }

    /// The first top-level header called `name` (case-insensitive),
    /// unfolded and RFC 2047-decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        let (head, _) = split_head_body(self.raw.as_bytes());
        header_value(&parse_headers(head), name).map(decode_words)
    }

    /// Whether `address` (case-insensitive) is an envelope recipient or in
    /// the To header.
    pub fn is_to(&self, address: &str) -> bool {
        let address = address.trim();
        let (head, _) = split_head_body(self.raw.as_bytes());
        let headers = parse_headers(head);
        let in_header = headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("To"))
            .flat_map(|(_, value)| header_addresses(value));
        self.to
            .iter()
            .cloned()
            .chain(in_header)
            .any(|a| a.trim().eq_ignore_ascii_case(address))
    }

    /// Every http(s) URL in the text part, in order, without trailing
    /// punctuation (`.`, `,`, `;`, `:`, `!`, `?`, quotes, closing brackets;
    /// a `)` only when it has no matching `(` in the URL).
    pub fn links(&self) -> Vec<String> {
        let text = self.text.as_str();
        // ASCII lowercasing keeps every byte offset.
        let lower = text.to_ascii_lowercase();
        let mut links = Vec::new();
        let mut from = 0;
        while let Some(found) = lower[from..].find("http") {
            let start = from + found;
            let rest = &lower[start + 4..];
            if !(rest.starts_with("://") || rest.starts_with("s://")) {
                from = start + 4;
                continue;
            }
            let end = text[start..]
                .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '`'))
                .map_or(text.len(), |e| start + e);
            let mut url = &text[start..end];
            while let Some(last) = url.chars().last() {
                let trim = match last {
                    '.' | ',' | ';' | ':' | '!' | '?' | '\'' | ']' | '}' => true,
                    ')' => url.matches(')').count() > url.matches('(').count(),
                    _ => false,
                };
                if !trim {
                    break;
                }
                url = &url[..url.len() - 1];
            }
            let scheme_len = if url.as_bytes()[4] == b':' { 7 } else { 8 };
            if url.len() > scheme_len {
                links.push(url.to_owned());
            }
            from = end.max(start + 1);
        }
        links
    }
}

// ---------------------------------------------------------------------------
// A small MIME parser, enough for what lettre sends.

/// Lines of `bytes` as (start offset, content without the line ending,
/// offset just past the line ending).
fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8], usize)> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= bytes.len() {
            return None;
        }
        let start = pos;
        let (content_end, next) = match bytes[start..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                let nl = start + i;
                let content_end = if nl > start && bytes[nl - 1] == b'\r' {
                    nl - 1
                } else {
                    nl
                };
                (content_end, nl + 1)
            }
            None => (bytes.len(), bytes.len()),
        };
        pos = next;
        Some((start, &bytes[start..content_end], next))
    })
}

/// Splits an entity at the first empty line into its header block and body.
fn split_head_body(entity: &[u8]) -> (&[u8], &[u8]) {
    for (start, line, next) in lines(entity) {
        if line.is_empty() {
            return (&entity[..start], &entity[next..]);
        }
    }
    (entity, &[])
}

/// Header fields in order, unfolded, values trimmed but not decoded.
fn parse_headers(head: &[u8]) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for (_, line, _) in lines(head) {
        let line = String::from_utf8_lossy(line);
        if line.starts_with([' ', '\t']) {
            // Unfolding removes only the line break, keeping the whitespace.
            if let Some((_, value)) = headers.last_mut() {
                value.push_str(&line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim_start().to_owned()));
        }
    }
    for (_, value) in &mut headers {
        let trimmed = value.trim_end().len();
        value.truncate(trimmed);
    }
    headers
}

fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Splits at `sep` outside double quotes (with backslash escapes), angle
/// brackets and parenthesized comments.
fn split_outside_quotes(value: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut quoted, mut escaped, mut angle, mut comment) = (false, false, 0u32, 0u32);
    let mut start = 0;
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted || comment > 0 => escaped = true,
            '"' if comment == 0 => quoted = !quoted,
            '(' if !quoted => comment += 1,
            ')' if !quoted => comment = comment.saturating_sub(1),
            '<' if !quoted && comment == 0 => angle += 1,
            '>' if !quoted && comment == 0 => angle = angle.saturating_sub(1),
            c if c == sep && !quoted && angle == 0 && comment == 0 => {
                parts.push(&value[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

fn unquote(value: &str) -> String {
    let value = value.trim();
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' {
                    chars.next().unwrap_or('\\')
                } else {
                    c
                });
            }
            out
        }
        None => value.to_owned(),
    }
}

/// `type/subtype; name=value; ...` as the lowercased type and the
/// parameters (names lowercased, values unquoted).
fn parse_content_type(value: &str) -> (String, Vec<(String, String)>) {
    let mut fields = split_outside_quotes(value, ';').into_iter();
    let mime = fields
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let params = fields
        .filter_map(|field| {
            let (name, value) = field.split_once('=')?;
            Some((name.trim().to_ascii_lowercase(), unquote(value)))
        })
        .collect();
    (mime, params)
}

/// The addresses of an address-list header (`"Name" <a@b>, c@d`).
fn header_addresses(value: &str) -> Vec<String> {
    split_outside_quotes(value, ',')
        .into_iter()
        .filter_map(|mailbox| {
            let address = match (mailbox.rfind('<'), mailbox.rfind('>')) {
                (Some(open), Some(close)) if open < close => &mailbox[open + 1..close],
                _ => mailbox.split('(').next().unwrap_or_default(),
            };
            let address = address.trim();
            (!address.is_empty()).then(|| address.to_owned())
        })
        .collect()
}

#[derive(Default)]
struct Parts {
    text: Option<String>,
    html: Option<String>,
}

/// Collects the first text/plain and text/html parts of an entity that are
/// not attachments, depth-first.
fn walk_entity(headers: &[(String, String)], body: &[u8], parts: &mut Parts, depth: usize) {
    let (mime, params) = header_value(headers, "Content-Type")
        .map(parse_content_type)
        .unwrap_or_else(|| ("text/plain".to_owned(), Vec::new()));
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    if mime.starts_with("multipart/") {
        if let Some(boundary) = param("boundary").filter(|b| !b.is_empty()) {
            if depth < 16 {
                for part in split_multipart(body, boundary) {
                    let (head, part_body) = split_head_body(part);
                    walk_entity(&parse_headers(head), part_body, parts, depth + 1);
                }
            }
        }
        return;
    }
    let attachment = header_value(headers, "Content-Disposition")
        .is_some_and(|d| d.trim().to_ascii_lowercase().starts_with("attachment"));
    if attachment {
        return;
    }
    let slot = match mime.as_str() {
        "text/plain" => &mut parts.text,
        "text/html" => &mut parts.html,
        _ => return,
    };
    if slot.is_none() {
        let bytes = decode_transfer(header_value(headers, "Content-Transfer-Encoding"), body);
        let text = decode_charset(&bytes, param("charset").unwrap_or("us-ascii"));
        *slot = Some(text.replace("\r\n", "\n"));
    }
}

/// The body parts of a multipart body, without their delimiter lines (the
/// line break before a delimiter belongs to the delimiter).
fn split_multipart<'a>(body: &'a [u8], boundary: &str) -> Vec<&'a [u8]> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut part_start: Option<usize> = None;
    for (start, line, next) in lines(body) {
        let Some(after) = line.strip_prefix(delimiter.as_bytes()) else {
            continue;
        };
        let closing = after.starts_with(b"--");
        let padding = if closing { &after[2..] } else { after };
        if !padding.iter().all(|b| matches!(b, b' ' | b'\t')) {
            continue;
        }
        if let Some(part_start) = part_start {
            let mut end = start;
            if end > part_start && body[end - 1] == b'\n' {
                end -= 1;
                if end > part_start && body[end - 1] == b'\r' {
                    end -= 1;
                }
            }
            parts.push(&body[part_start..end]);
        }
        if closing {
            return parts;
        }
        part_start = Some(next);
    }
    // No closing delimiter: the last part runs to the end.
    if let Some(part_start) = part_start {
        parts.push(&body[part_start..]);
    }
    parts
}

fn decode_transfer(encoding: Option<&str>, body: &[u8]) -> Vec<u8> {
    match encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        Some("quoted-printable") => decode_quoted_printable(body),
        Some("base64") => decode_base64(body).unwrap_or_else(|| body.to_vec()),
        _ => body.to_vec(), // 7bit, 8bit, binary
    }
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Quoted-printable (RFC 2045 6.7): `=XX` escapes, `=` at the end of a line
/// is a soft line break, trailing whitespace on a line is dropped, hard line
/// breaks come out as CRLF.
fn decode_quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    for (_, line, next) in lines(body) {
        let has_break = body[..next].ends_with(b"\n");
        let end = line
            .iter()
            .rposition(|b| !matches!(b, b' ' | b'\t'))
            .map_or(0, |i| i + 1);
        let line = &line[..end];
        let mut soft_break = false;
        let mut i = 0;
        while i < line.len() {
            if line[i] == b'=' {
                if i + 1 == line.len() {
                    soft_break = true;
                    break;
                }
                if let (Some(hi), Some(lo)) = (
                    hex_value(line[i + 1]),
                    line.get(i + 2).copied().and_then(hex_value),
                ) {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
            }
            out.push(line[i]);
            i += 1;
        }
        if has_break && !soft_break {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// Base64, ignoring whitespace and tolerating missing padding.
fn decode_base64(encoded: &[u8]) -> Option<Vec<u8>> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let compact: Vec<u8> = encoded
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    LENIENT.decode(compact).ok()
}

fn decode_charset(bytes: &[u8], charset: &str) -> String {
    match charset.trim().to_ascii_lowercase().as_str() {
        "iso-8859-1" | "iso8859-1" | "latin1" | "latin-1" => {
            bytes.iter().map(|&b| b as char).collect()
        }
        _ => String::from_utf8_lossy(bytes).into_owned(), // utf-8, us-ascii, and a best effort
    }
}

/// Decodes RFC 2047 encoded words (`=?charset?Q?...?=`, `=?charset?B?...?=`).
/// Whitespace between two encoded words is dropped, and adjacent words in
/// the same charset are decoded together (an encoder may split a character
/// across them).
fn decode_words(value: &str) -> String {
    enum Piece<'a> {
        Plain(&'a str),
        Encoded { charset: String, bytes: Vec<u8> },
    }
    let mut pieces: Vec<Piece> = Vec::new();
    let mut plain_start = 0;
    let mut i = 0;
    while let Some(found) = value[i..].find("=?") {
        let start = i + found;
        match parse_encoded_word(&value[start..]) {
            Some((charset, bytes, len)) => {
                let between = &value[plain_start..start];
                let follows_word = matches!(pieces.last(), Some(Piece::Encoded { .. }));
                if !(follows_word && between.chars().all(char::is_whitespace)) {
                    pieces.push(Piece::Plain(between));
                }
                match pieces.last_mut() {
                    Some(Piece::Encoded {
                        charset: c,
                        bytes: b,
                    }) if *c == charset => b.extend_from_slice(&bytes),
                    _ => pieces.push(Piece::Encoded { charset, bytes }),
                }
                i = start + len;
                plain_start = i;
            }
            None => i = start + 2,
        }
    }
    pieces.push(Piece::Plain(&value[plain_start..]));
    pieces
        .into_iter()
        .map(|piece| match piece {
            Piece::Plain(text) => text.to_owned(),
            Piece::Encoded { charset, bytes } => decode_charset(&bytes, &charset),
        })
        .collect()
}

/// Parses the encoded word at the start of `s`: its charset (lowercased,
/// without an RFC 2231 language), decoded bytes and length in `s`.
fn parse_encoded_word(s: &str) -> Option<(String, Vec<u8>, usize)> {
    let rest = s.strip_prefix("=?")?;
    let (charset, rest) = rest.split_once('?')?;
    let (encoding, rest) = rest.split_once('?')?;
    let end = rest.find("?=")?;
    let text = &rest[..end];
    if charset.is_empty()
        || text.contains(char::is_whitespace)
        || charset.contains(char::is_whitespace)
    {
        return None;
    }
    let bytes = match encoding {
        "b" | "B" => decode_base64(text.as_bytes())?,
        "q" | "Q" => {
            let (text, mut out, mut j) = (text.as_bytes(), Vec::new(), 0);
            while j < text.len() {
                match text[j] {
                    b'_' => out.push(b' '),
                    b'=' => match (
                        text.get(j + 1).copied().and_then(hex_value),
                        text.get(j + 2).copied().and_then(hex_value),
                    ) {
                        (Some(hi), Some(lo)) => {
                            out.push(hi << 4 | lo);
                            j += 3;
                            continue;
                        }
                        _ => out.push(b'='),
                    },
                    b => out.push(b),
                }
                j += 1;
            }
            out
        }
        _ => return None,
    };
    let len = "=?".len() + charset.len() + 1 + encoding.len() + 1 + end + "?=".len();
    let charset = charset
        .split('*')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    Some((charset, bytes, len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as TokioBufReader};
    use tokio::net::TcpStream;

    fn parse(raw: &str, to: &[&str]) -> SentMail {
        SentMail::parse(
            raw.as_bytes(),
            "noreply@warden.test".to_owned(),
            to.iter().map(|s| s.to_string()).collect(),
        )
    }

    /// The shape lettre builds for `MultiPart::alternative_plain_html`: a
    /// 7bit text part and a quoted-printable HTML part, a base64 subject
    /// folded into two encoded words.
    const LETTRE_QP: &str = "From: Warden <noreply@warden.test>\r\n\
        To: =?utf-8?b?SsO8cmdlbiBNw7xsbGVy?= <juergen@example.com>\r\n\
        Subject: =?utf-8?b?VmVyaWZ5IHlvdXIgZW1haWwgYWRkcmVzcyDigJQg?=\r\n\
        \x20=?utf-8?b?V2FyZGVu?=\r\n\
        Message-ID: <8a3c1f@warden.test>\r\n\
        Date: Tue, 03 Jun 2025 10:00:00 +0000\r\n\
        MIME-Version: 1.0\r\n\
        Content-Type: multipart/alternative;\r\n\
        \x20boundary=\"QJZXfsRqw5cAlTXcp6Q1r0Fd6wn6PYyUd0wpGnY1\"\r\n\
        \r\n\
        --QJZXfsRqw5cAlTXcp6Q1r0Fd6wn6PYyUd0wpGnY1\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\
        Content-Transfer-Encoding: 7bit\r\n\
        \r\n\
        Hello,\r\n\
        \r\n\
        Confirm your address: https://auth.example.com/verify?token=abc123.\r\n\
        (Or open <https://auth.example.com/help>.)\r\n\
        --QJZXfsRqw5cAlTXcp6Q1r0Fd6wn6PYyUd0wpGnY1\r\n\
        Content-Type: text/html; charset=utf-8\r\n\
        Content-Transfer-Encoding: quoted-printable\r\n\
        \r\n\
        <p>Hello,</p><p><a href=3D\"https://auth.example.com/verify?token=3Dabc12=\r\n\
        3\">Confirm</a> =E2=80=94 thanks</p>\r\n\
        --QJZXfsRqw5cAlTXcp6Q1r0Fd6wn6PYyUd0wpGnY1--\r\n";

    #[test]
    fn parses_lettre_alternative_with_quoted_printable_html() {
        let mail = parse(LETTRE_QP, &["juergen@example.com"]);
        assert_eq!(mail.subject, "Verify your email address — Warden");
        assert_eq!(mail.from, "noreply@warden.test");
        assert_eq!(mail.to, ["juergen@example.com"]);
        assert_eq!(
            mail.text,
            "Hello,\n\nConfirm your address: https://auth.example.com/verify?token=abc123.\n\
             (Or open <https://auth.example.com/help>.)"
        );
        assert_eq!(
            mail.html.as_deref(),
            Some(
                "<p>Hello,</p><p><a href=\"https://auth.example.com/verify?token=abc123\">\
                 Confirm</a> — thanks</p>"
            )
        );
        assert_eq!(
            mail.links(),
            [
                "https://auth.example.com/verify?token=abc123",
                "https://auth.example.com/help"
            ]
        );
        assert_eq!(
            mail.header("to").as_deref(),
            Some("Jürgen Müller <juergen@example.com>")
        );
        assert_eq!(
            mail.header("Message-Id").as_deref(),
            Some("<8a3c1f@warden.test>")
        );
        assert!(mail.is_to("JUERGEN@example.com"));
        assert!(!mail.is_to("someone@example.com"));
        assert!(mail
            .raw
            .starts_with("From: Warden <noreply@warden.test>\r\n"));
    }

    /// Base64 parts inside multipart/mixed with an attachment, LF line
    /// endings, a Q-encoded subject mixed with plain words.
    const MIXED_BASE64: &str = "Subject: Sign-in code =?UTF-8?Q?f=C3=BCr_Ren=C3=A9e?= (new)\n\
        From: \"Warden, Auth\" <noreply@warden.test>\n\
        To: \"Doe, Jane\" <Jane@Example.org>, bob@example.org (Bob)\n\
        MIME-Version: 1.0\n\
        Content-Type: multipart/mixed; boundary=outer\n\
        \n\
        This is a multi-part message in MIME format.\n\
        --outer\n\
        Content-Type: multipart/alternative; boundary=\"inner; x\"\n\
        \n\
        --inner; x\n\
        Content-Type: text/plain; charset=\"utf-8\"\n\
        Content-Transfer-Encoding: base64\n\
        \n\
        WW91ciBjb2RlOiA0MjQyNDIg4oCUIHNlZSBodHRwczovL2F1dGguZXhhbXBsZS5jb20vY29k\n\
        ZT94PTEu\n\
        --inner; x\n\
        Content-Type: text/html; charset=utf-8\n\
        Content-Transfer-Encoding: base64\n\
        \n\
        PGI+NDI0MjQyPC9iPg==\n\
        --inner; x--\n\
        --outer\n\
        Content-Type: text/plain; name=notes.txt\n\
        Content-Disposition: attachment; filename=notes.txt\n\
        \n\
        not the body\n\
        --outer--\n\
        epilogue\n";

    #[test]
    fn parses_nested_base64_parts_and_skips_attachments() {
        let mail = parse(MIXED_BASE64, &[]);
        assert_eq!(mail.subject, "Sign-in code für Renée (new)");
        assert_eq!(
            mail.text,
            "Your code: 424242 — see https://auth.example.com/code?x=1."
        );
        assert_eq!(mail.html.as_deref(), Some("<b>424242</b>"));
        assert_eq!(mail.links(), ["https://auth.example.com/code?x=1"]);
        assert!(mail.is_to("jane@example.org"));
        assert!(mail.is_to("BOB@example.org"));
        assert!(!mail.is_to("Doe"));
        assert_eq!(
            mail.header("From").as_deref(),
            Some("\"Warden, Auth\" <noreply@warden.test>")
        );
    }

    #[test]
    fn parses_single_part_quoted_printable() {
        let raw = "Subject: plain\r\n\
            Content-Type: text/plain; charset=utf-8\r\n\
            Content-Transfer-Encoding: quoted-printable\r\n\
            \r\n\
            Reset link (valid 1 h): https://auth.example.com/reset?token=3DZm9v&next=3D=\r\n\
            %2Fhome),=20\r\n\
            wiki: https://en.wikipedia.org/wiki/Foo_(bar)!   \r\n\
            caf=C3=A9 =3D done=\r\n";
        let mail = parse(raw, &["a@b.c"]);
        assert_eq!(mail.html, None);
        assert_eq!(
            mail.text,
            "Reset link (valid 1 h): https://auth.example.com/reset?token=Zm9v&next=%2Fhome), \n\
             wiki: https://en.wikipedia.org/wiki/Foo_(bar)!\n\
             café = done"
        );
        assert_eq!(
            mail.links(),
            [
                "https://auth.example.com/reset?token=Zm9v&next=%2Fhome",
                "https://en.wikipedia.org/wiki/Foo_(bar)"
            ]
        );
    }

    #[test]
    fn message_without_body_or_content_type() {
        let mail = parse("Subject: =?utf-8?q?only_headers?=\r\n", &[]);
        assert_eq!(mail.subject, "only headers");
        assert_eq!(mail.text, "");
        assert_eq!(mail.html, None);
        assert!(mail.links().is_empty());
    }

    #[test]
    fn decodes_encoded_words() {
        assert_eq!(decode_words("plain text"), "plain text");
        // Whitespace (even folding) between encoded words is not text...
        assert_eq!(decode_words("=?utf-8?q?a?= \t =?utf-8?q?b?="), "ab");
        // ...but it is next to plain words.
        assert_eq!(decode_words("x =?utf-8?q?a?= y"), "x a y");
        // A character split across two words.
        assert_eq!(
            decode_words("=?utf-8?b?ww==?= =?utf-8?b?qQ==?= =?utf-8?b?w6k=?="),
            "éé"
        );
        assert_eq!(decode_words("=?UTF-8?B?w6k?="), "é");
        assert_eq!(decode_words("=?iso-8859-1?q?caf=E9?="), "café");
        assert_eq!(decode_words("=?utf-8*en?q?hi?="), "hi");
        // Not encoded words: left alone.
        assert_eq!(decode_words("a =? b ?= c"), "a =? b ?= c");
        assert_eq!(decode_words("=?utf-8?x?abc?="), "=?utf-8?x?abc?=");
    }

    #[test]
    fn quoted_printable_edge_cases() {
        assert_eq!(decode_quoted_printable(b"a=\r\nb=\nc"), b"abc");
        assert_eq!(
            decode_quoted_printable(b"x=3d=3D=4\r\n"),
            b"x===4\r\n" /* a malformed "=4" is kept */
        );
        assert_eq!(decode_quoted_printable(b"soft =  \r\nbreak"), b"soft break");
        assert_eq!(decode_quoted_printable(b"=E2=80=94"), "—".as_bytes());
    }

    #[test]
    fn links_trimming() {
        let mail = SentMail {
            to: vec![],
            from: String::new(),
            subject: String::new(),
            text: "Go to https://a.example/x. Or HTTP://B.example/y?z=1; \
                   also (https://c.example/p), [https://d.example/q]; 'https://e.example/r'\n\
                   not http:/bad, nor https://, but http://f.example:8080/s?t=u#v>"
                .to_owned(),
            html: None,
            raw: String::new(),
        };
        assert_eq!(
            mail.links(),
            [
                "https://a.example/x",
                "HTTP://B.example/y?z=1",
                "https://c.example/p",
                "https://d.example/q",
                "https://e.example/r",
                "http://f.example:8080/s?t=u#v",
            ]
        );
    }

    /// Verbatim output of lettre 0.11 (`Message::formatted()`), LF line endings.
    const LETTRE_REAL_QP: &str = r#"From: Warden <noreply@warden.test>
To: =?utf-8?b?SsO8cmdlbiBNw7xsbGVy?= <juergen@example.com>
Subject: =?utf-8?b?QmVzdMOkdGlnZW4=?= Sie Ihre E-Mail-Adresse
 =?utf-8?b?ZsO8cg==?= Warden =?utf-8?b?4oCT?= ein sehr langer Betreff, der
 gefaltet werden muss
MIME-Version: 1.0
Date: Fri, 27 Nov 2026 10:47:10 +0000
Content-Type: multipart/alternative;
 boundary="dufYmaQIhfY9BcS9dI77Lde917xnyhbj3IYsREOR"

--dufYmaQIhfY9BcS9dI77Lde917xnyhbj3IYsREOR
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Hi J=C3=BCrgen,

Please confirm your email address by opening this link:
https://auth.example.com/verify-email?token=3DeyJhbGciOiJIUzI1NiJ9.eyJzdWIi=
OiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJ=
SMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c&redirect=3D%2Fapp

If you did not sign up, ignore this message.

--dufYmaQIhfY9BcS9dI77Lde917xnyhbj3IYsREOR
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<p>Hi J&uuml;rgen,</p><p><a href=3D"https://auth.example.com/verify-email?t=
oken=3DeyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9=
lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c&red=
irect=3D%2Fapp">Confirm your email address</a> =E2=80=94 it expires in 24 h=
ours.</p>
--dufYmaQIhfY9BcS9dI77Lde917xnyhbj3IYsREOR--
"#;

    /// Verbatim output of lettre 0.11 (`Message::formatted()`), LF line endings.
    const LETTRE_REAL_BASE64: &str = r#"From: noreply@warden.test
To: bob@example.com
Subject: Your code
MIME-Version: 1.0
Date: Fri, 27 Nov 2026 10:47:10 +0000
Content-Type: multipart/alternative;
 boundary="4lJXPcfxHgL3dJckODrOtNOxHR2rIc05uDVLNvqC"

--4lJXPcfxHgL3dJckODrOtNOxHR2rIc05uDVLNvqC
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

5pel5pys6Kqe44Gu44OG44Kt44K544OIIGh0dHBzOi8veC5leGFtcGxlL2E=
--4lJXPcfxHgL3dJckODrOtNOxHR2rIc05uDVLNvqC
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

PGI+5pel5pys6KqePC9iPg==
--4lJXPcfxHgL3dJckODrOtNOxHR2rIc05uDVLNvqC--
"#;

    fn crlf(lf: &str) -> String {
        lf.replace('\n', "\r\n")
    }

    #[test]
    fn parses_real_lettre_quoted_printable_message() {
        let mail = parse(&crlf(LETTRE_REAL_QP), &["juergen@example.com"]);
        assert_eq!(
            mail.subject,
            "Bestätigen Sie Ihre E-Mail-Adresse für Warden – ein sehr langer Betreff, der gefaltet werden muss"
        );
        let link = "https://auth.example.com/verify-email?token=eyJhbGciOiJIUzI1NiJ9.\
            eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.\
            SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c&redirect=%2Fapp";
        assert_eq!(
            mail.text,
            format!(
                "Hi Jürgen,\n\nPlease confirm your email address by opening this link:\n{link}\n\n\
                 If you did not sign up, ignore this message.\n"
            )
        );
        assert_eq!(mail.links(), [link]);
        assert_eq!(
            mail.html.as_deref(),
            Some(
                format!(
                    "<p>Hi J&uuml;rgen,</p><p><a href=\"{link}\">Confirm your email address</a> \
                     — it expires in 24 hours.</p>"
                )
                .as_str()
            )
        );
        assert_eq!(
            mail.header("To").as_deref(),
            Some("Jürgen Müller <juergen@example.com>")
        );
        assert!(mail.is_to("Juergen@Example.com"));
    }

    #[test]
    fn parses_real_lettre_base64_message() {
        let mail = parse(&crlf(LETTRE_REAL_BASE64), &["bob@example.com"]);
        assert_eq!(mail.subject, "Your code");
        assert_eq!(mail.text, "日本語のテキスト https://x.example/a");
        assert_eq!(mail.html.as_deref(), Some("<b>日本語</b>"));
        assert_eq!(mail.links(), ["https://x.example/a"]);
    }

    // --- Against the real sink ----------------------------------------------

    /// Reads one (possibly multi-line) SMTP reply and checks its code.
    async fn expect_reply(reader: &mut TokioBufReader<tokio::net::tcp::OwnedReadHalf>, code: &str) {
        loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line).await.expect("read SMTP reply");
            assert!(n > 0, "SMTP server closed the connection; expected {code}");
            assert!(line.starts_with(code), "expected SMTP {code}, got {line:?}");
            if line.as_bytes().get(3) != Some(&b'-') {
                return;
            }
        }
    }

    /// One SMTP session by hand: EHLO, optional AUTH PLAIN, MAIL, RCPT...,
    /// DATA (dot-stuffed), QUIT.
    async fn smtp_send(
        port: u16,
        auth: Option<(&str, &str)>,
        from: &str,
        rcpts: &[&str],
        message: &str,
    ) {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to sink");
        let (read, mut write) = stream.into_split();
        let mut reader = TokioBufReader::new(read);
        expect_reply(&mut reader, "220").await;
        write.write_all(b"EHLO warden.test\r\n").await.unwrap();
        expect_reply(&mut reader, "250").await;
        if let Some((user, password)) = auth {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
            write
                .write_all(format!("AUTH PLAIN {token}\r\n").as_bytes())
                .await
                .unwrap();
            expect_reply(&mut reader, "235").await;
        }
        write
            .write_all(format!("MAIL FROM:<{from}>\r\n").as_bytes())
            .await
            .unwrap();
        expect_reply(&mut reader, "250").await;
        for rcpt in rcpts {
            write
                .write_all(format!("RCPT TO:<{rcpt}>\r\n").as_bytes())
                .await
                .unwrap();
            expect_reply(&mut reader, "250").await;
        }
        write.write_all(b"DATA\r\n").await.unwrap();
        expect_reply(&mut reader, "354").await;
        let mut data = String::new();
        for line in message
            .strip_suffix("\r\n")
            .unwrap_or(message)
            .split("\r\n")
        {
            if line.starts_with('.') {
                data.push('.');
            }
            data.push_str(line);
            data.push_str("\r\n");
        }
        data.push_str(".\r\n");
        write.write_all(data.as_bytes()).await.unwrap();
        expect_reply(&mut reader, "250").await;
        write.write_all(b"QUIT\r\n").await.unwrap();
        expect_reply(&mut reader, "221").await;
    }

    #[tokio::test]
    async fn sink_receives_and_parses_over_smtp() {
        let sink = MailSink::start();
        assert!(sink.messages().is_empty());

        // Without AUTH, two envelope recipients; the To header names only one.
        smtp_send(
            sink.port,
            None,
            "noreply@warden.test",
            &["juergen@example.com", "audit@example.com"],
            LETTRE_QP,
        )
        .await;
        // With AUTH PLAIN; a line starting with "." must survive dot-stuffing.
        let second =
            LETTRE_QP.replace("Hello,\r\n\r\nConfirm", "Hello,\r\n.dotted line\r\nConfirm");
        smtp_send(
            sink.port,
            Some(("smtp-user", "smtp-pass")),
            "bounce@warden.test",
            &["Juergen@Example.com"],
            &second,
        )
        .await;

        let mails = sink
            .wait_for("JUERGEN@example.com", 2, Duration::from_secs(10))
            .await;
        assert_eq!(mails.len(), 2);
        assert_eq!(mails[0].to, ["juergen@example.com", "audit@example.com"]);
        assert_eq!(mails[0].from, "noreply@warden.test");
        assert_eq!(mails[0].subject, "Verify your email address — Warden");
        assert_eq!(
            mails[0].links()[0],
            "https://auth.example.com/verify?token=abc123"
        );
        assert!(mails[0]
            .html
            .as_deref()
            .unwrap()
            .contains("token=abc123\">Confirm</a> — thanks"));
        assert_eq!(mails[0].raw, LETTRE_QP, "stored exactly as sent");
        assert_eq!(mails[1].from, "bounce@warden.test");
        assert!(
            mails[1].text.starts_with("Hello,\n.dotted line\nConfirm"),
            "{:?}",
            mails[1].text
        );

        // Found by envelope recipient alone, not in the To header.
        let audit = sink
            .wait_for("audit@example.com", 1, Duration::from_secs(1))
            .await;
        assert_eq!(audit.len(), 1);
        assert_eq!(sink.messages().len(), 2);

        // The sink records the AUTH login beside the message.
        let meta = std::fs::read_to_string(sink.dir().join("2.json")).unwrap();
        let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
        assert_eq!(meta["auth_mechanism"], "PLAIN");
        assert_eq!(meta["auth_login"], "smtp-user");
    }

    #[tokio::test]
    #[should_panic(expected = "expected at least 1 message(s) to nobody@example.com")]
    async fn wait_for_panics_listing_what_arrived() {
        let sink = MailSink::start();
        smtp_send(
            sink.port,
            None,
            "noreply@warden.test",
            &["someone@example.com"],
            MIXED_BASE64.replace('\n', "\r\n").as_str(),
        )
        .await;
        sink.wait_for("someone@example.com", 1, Duration::from_secs(10))
            .await;
        sink.wait_for("nobody@example.com", 1, Duration::from_millis(200))
            .await;
    }
}
