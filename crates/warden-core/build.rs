//! Compiles `data/common-passwords.txt` into a sorted, de-duplicated array,
//! so that checking a new password is a binary search with nothing to build
//! at start-up or on the first sign-up.

use std::fmt::Write as _;

fn main() {
    let src = "data/common-passwords.txt";
    println!("cargo:rerun-if-changed={src}");
    let text = std::fs::read_to_string(src).expect("data/common-passwords.txt");
    let mut words: Vec<String> = text
        .lines()
        .map(|l| l.trim().to_lowercase())
        .filter(|l| !l.is_empty())
        .collect();
    words.sort_unstable();
    words.dedup();
    let mut out = format!("pub static COMMON_PASSWORDS: [&str; {}] = [\n", words.len());
    for w in &words {
        writeln!(out, "    {w:?},").unwrap();
    }
    out.push_str("];\n");
    let dest = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("common_passwords.rs");
    std::fs::write(dest, out).expect("write common_passwords.rs");
}
