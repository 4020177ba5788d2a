// The PostgreSQL half of the integration suite runs only when
// WARDEN_TEST_DATABASE_URL is set, the MySQL/MariaDB third only when
// WARDEN_TEST_MYSQL_URL is; otherwise their tests are listed as ignored
// with the reason, so `cargo test` output says the suite was not run.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(warden_pg_tests)");
    println!("cargo::rustc-check-cfg=cfg(warden_mysql_tests)");
    println!("cargo::rerun-if-env-changed=WARDEN_TEST_DATABASE_URL");
    println!("cargo::rerun-if-env-changed=WARDEN_TEST_MYSQL_URL");
    if std::env::var_os("WARDEN_TEST_DATABASE_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=warden_pg_tests");
    }
    if std::env::var_os("WARDEN_TEST_MYSQL_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=warden_mysql_tests");
    }
}
