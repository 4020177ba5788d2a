//! The database explorer on a freshly migrated database of each backend:
//! SQLite always (a temporary file), PostgreSQL when
//! `WARDEN_TEST_DATABASE_URL` is set (a database of its own, dropped at
//! the end with the console's role).
//!
//! Every secret the fixtures write contains `SECRET`; no answer of the
//! explorer may contain it.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::Connection;
use warden_store::explore::{
    is_secret, ExploreError, Explorer, FilterOp, RowQuery, SqlLimits, MASKED, NOT_SECRET_COLUMNS,
    SECRET_COLUMNS,
};
use warden_store::{open_database, Database, PoolOptions};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

struct Fixture {
    backend: Backend,
    db: Database,
    /// PostgreSQL: the administrative URL and the database's name.
    pg: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Fixture {
    fn ex(&self) -> &dyn Explorer {
        &*self.db.explorer
    }

    async fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("warden.db").display());
        let db = open_database(&url, &PoolOptions::default(), true)
            .await
            .unwrap();
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(SQLITE_SEED.as_str())
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        Fixture {
            backend: Backend::Sqlite,
            db,
            pg: None,
            _dir: Some(dir),
        }
    }

    async fn postgres() -> Option<Fixture> {
        let admin = std::env::var("WARDEN_TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())?;
        let name = unique_name("warden_explore");
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::raw_sql(&format!(r#"CREATE DATABASE "{name}""#))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let url = database_url(&admin, &name);
        let db = open_database(&url, &PoolOptions::default(), true)
            .await
            .unwrap();
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(PG_SEED.as_str())
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        Some(Fixture {
            backend: Backend::Postgres,
            db,
            pg: Some((admin, name)),
            _dir: None,
        })
    }

    /// Drops the PostgreSQL database and the console's role.
    async fn cleanup(self) {
        let Fixture { db, pg, .. } = self;
        drop(db);
        if let Some((admin, name)) = pg {
            drop_database(&admin, &name, &[console_role(&name)]).await;
        }
    }
}

async fn drop_database(admin: &str, name: &str, roles: &[String]) {
    let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
    sqlx::raw_sql(&format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))
        .execute(&mut conn)
        .await
        .unwrap();
    for role in roles {
        sqlx::raw_sql(&format!(r#"DROP ROLE IF EXISTS "{role}""#))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    conn.close().await.unwrap();
}

fn unique_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let seed = format!(
        "{:?}-{}-{}",
        std::time::SystemTime::now(),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    format!(
        "{prefix}_{}",
        &hex::encode(Sha256::digest(seed.as_bytes()))[..12]
    )
}

/// `admin` with its database replaced by `name`.
fn database_url(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{name}{query}", &base[..host_end])
}

/// The console's role for database `name`, as documented.
fn console_role(name: &str) -> String {
    format!(
        "warden_console_{}",
        &hex::encode(Sha256::digest(name.as_bytes()))[..16]
    )
}

/// Runs `$check` on SQLite, then on PostgreSQL if configured (its
/// database dropped even when the check fails).
macro_rules! on_each_backend {
    ($name:ident, $check:ident) => {
        #[tokio::test(flavor = "multi_thread")]
        async fn $name() {
            let f = Fixture::sqlite().await;
            $check(&f).await;
            f.cleanup().await;
            if let Some(f) = Fixture::postgres().await {
                let r = AssertUnwindSafe($check(&f)).catch_unwind().await;
                f.cleanup().await;
                if let Err(p) = r {
                    std::panic::resume_unwind(p);
                }
            }
        }
    };
}

const USERS: &str = r#"
INSERT INTO "user" ("id", "name", "email", "emailVerified", "createdAt", "updatedAt") VALUES
 ('u1', 'Ada', 'ada@example.com', TRUE_, 'T2025', 'T2025'),
 ('u2', 'Bob 100%_sure', 'bob@example.com', FALSE_, 'T2025', 'T2025'),
 ('u3', 'Carol', 'carol@EXAMPLE.org', FALSE_, 'T2025', 'T2025'),
 ('u4', 'Dave', 'dave@example.net', FALSE_, 'T2025', 'T2025'),
 ('u5', 'Eve', 'eve@example.com', FALSE_, 'T2025', 'T2025');
INSERT INTO "session" ("id", "expiresAt", "token", "createdAt", "updatedAt", "ipAddress", "userAgent", "userId") VALUES
 ('s1', 'T2099', 'tokenhash-1-SECRET', 'T2025', 'T2025', '127.0.0.1', 'curl', 'u1'),
 ('s2', 'T2000', 'tokenhash-2-SECRET', 'T2025', 'T2025', NULL, NULL, 'u1');
INSERT INTO "account" ("id", "accountId", "providerId", "userId", "password", "issuer", "createdAt", "updatedAt") VALUES
 ('a1', 'u1', 'credential', 'u1', '$argon2id$v=19$m=19456,t=2,p=1$SECRETsalt$SECREThash', 'local:credential', 'T2025', 'T2025');
INSERT INTO "account" ("id", "accountId", "providerId", "userId", "accessToken", "refreshToken", "idToken", "createdAt", "updatedAt") VALUES
 ('a2', 'gh-42', 'github', 'u1', 'access-SECRET', 'refresh-SECRET', 'idtoken-SECRET', 'T2025', 'T2025');
INSERT INTO "twoFactor" ("id", "secret", "backupCodes", "userId") VALUES
 ('t1', 'totp-SECRET', 'backup-SECRET', 'u1');
INSERT INTO "verification" ("id", "identifier", "value", "expiresAt", "createdAt", "updatedAt") VALUES
 ('v1', 'reset-password:identhash-SECRET', 'value-SECRET', 'T2099', 'T2025', 'T2025');
INSERT INTO "warden_rate_limit" ("key", "count", "resetAt") VALUES
 ('2fa-attempts:challengehash-SECRET', 1, 0);
"#;

static SQLITE_SEED: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    USERS
        .replace("TRUE_", "1")
        .replace("FALSE_", "0")
        .replace("'T2025'", "'2025-01-01T00:00:00.000Z'")
        .replace("'T2099'", "'2099-01-01T00:00:00.000Z'")
        .replace("'T2000'", "'2000-01-01T00:00:00.000Z'")
        // Index statistics: sqlite_stat4 then samples real index keys
        // (session tokens among them).
        + "ANALYZE;"
});

static PG_SEED: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    USERS
        .replace("TRUE_", "true")
        .replace("FALSE_", "false")
        .replace("'T2025'", "'2025-01-01 00:00:00'")
        .replace("'T2099'", "'2099-01-01 00:00:00'")
        .replace("'T2000'", "'2000-01-01 00:00:00'")
        + "ANALYZE;"
});

fn page(table: &str, limit: u32) -> RowQuery {
    RowQuery {
        table: table.into(),
        limit,
        offset: 0,
        sort: None,
        filter: None,
    }
}

fn assert_no_secret(what: &str, v: &impl serde::Serialize) {
    let s = serde_json::to_string(v).unwrap();
    assert!(!s.contains("SECRET"), "{what} shows a secret: {s}");
    assert!(!s.contains("argon2"), "{what} shows a password hash: {s}");
}

fn column<'a>(page: &'a warden_store::explore::RowPage, name: &str) -> Vec<&'a Value> {
    let i = page
        .columns
        .iter()
        .position(|c| c == name)
        .unwrap_or_else(|| panic!("no column {name} in {:?}", page.columns));
    page.rows.iter().map(|r| &r[i]).collect()
}

// ---------------------------------------------------------------------------
// Classification

/// Every column of every table of a freshly migrated database is in one of
/// the two lists; every listed column exists.
async fn every_column_is_classified(f: &Fixture) {
    let tables = f.ex().tables().await.unwrap();
    let mut unclassified = Vec::new();
    for t in &tables {
        for c in &t.columns {
            let pair = (t.name.as_str(), c.name.as_str());
            let secret = SECRET_COLUMNS.contains(&pair);
            if !secret && !NOT_SECRET_COLUMNS.contains(&pair) {
                unclassified.push(format!("{}.{}", t.name, c.name));
                continue;
            }
            assert_eq!(c.secret, secret, "{}.{} secret flag", t.name, c.name);
            assert_eq!(is_secret(pair.0, pair.1), secret);
        }
    }
    assert!(
        unclassified.is_empty(),
        "{:?}: columns in neither SECRET_COLUMNS nor NOT_SECRET_COLUMNS \
         (crates/warden-store/src/explore/mod.rs): {unclassified:?}",
        f.backend
    );
    for (t, c) in SECRET_COLUMNS.iter().chain(NOT_SECRET_COLUMNS) {
        let exists = tables
            .iter()
            .any(|x| x.name == *t && x.columns.iter().any(|col| col.name == *c));
        assert!(
            exists,
            "{:?}: listed column {t}.{c} does not exist",
            f.backend
        );
    }
}
on_each_backend!(classification_is_complete, every_column_is_classified);

#[test]
fn unknown_tables_use_the_name_rule() {
    for c in [
        "api_key",
        "refreshToken",
        "pwHash",
        "PASSWORD",
        "otp_seed",
        "client_secret",
        "backup",
        "credentials",
    ] {
        assert!(is_secret("my_own_table", c), "{c}");
    }
    for c in ["id", "title", "email", "created_at"] {
        assert!(!is_secret("my_own_table", c), "{c}");
    }
    // A Warden table's column nobody classified yet: secret.
    assert!(is_secret("session", "somethingNew"));
}

// ---------------------------------------------------------------------------
// Tables

async fn lists_tables(f: &Fixture) {
    let tables = f.ex().tables().await.unwrap();
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "_sqlx_migrations",
            "account",
            "passkey",
            "session",
            "twoFactor",
            "user",
            "verification",
            "warden_audit",
            "warden_rate_limit",
            "warden_revocation"
        ]
    );
    let t = |n: &str| tables.iter().find(|t| t.name == n).unwrap();
    assert_eq!(t("user").rows, 5);
    assert_eq!(t("session").rows, 2);
    assert_eq!(t("account").rows, 2);
    assert_eq!(t("warden_audit").rows, 0);
    let id = t("user").columns.iter().find(|c| c.name == "id").unwrap();
    assert!(id.primary_key && !id.secret);
    let token = t("session")
        .columns
        .iter()
        .find(|c| c.name == "token")
        .unwrap();
    assert!(token.secret && !token.primary_key);
    assert!(!token.sql_type.is_empty());

    let link = |table: &str, column: &str, to: &str, foreign: &str| {
        let links = &t(table).links;
        assert!(
            links
                .iter()
                .any(|l| l.column == column && l.table == to && l.foreign_column == foreign),
            "{:?}: {table}.{column} -> {to}.{foreign} missing from {links:?}",
            f.backend
        );
    };
    for other in ["session", "account", "twoFactor", "warden_revocation"] {
        link("user", "id", other, "userId");
        link(other, "userId", "user", "id");
    }
    link("session", "impersonatedBy", "user", "id");
    link("user", "id", "session", "impersonatedBy");
    // Serialized in camelCase.
    let v = serde_json::to_value(t("session")).unwrap();
    assert!(v["links"][0].get("foreignColumn").is_some(), "{v}");
    assert!(v["columns"][0].get("sqlType").is_some(), "{v}");
    assert!(v["columns"][0].get("primaryKey").is_some(), "{v}");
}
on_each_backend!(tables_are_listed_with_counts_and_links, lists_tables);

// ---------------------------------------------------------------------------
// Rows

async fn masks_rows(f: &Fixture) {
    for t in f.ex().tables().await.unwrap() {
        let p = f.ex().rows(&page(&t.name, 500)).await.unwrap();
        assert_eq!(p.total, t.rows, "{}", t.name);
        assert_eq!(p.rows.len() as u64, t.rows, "{}", t.name);
        assert_no_secret(&format!("{:?} rows of {}", f.backend, t.name), &p);
    }
    let s = f.ex().rows(&page("session", 10)).await.unwrap();
    assert_eq!(column(&s, "token"), [&json!(MASKED), &json!(MASKED)]);
    assert_eq!(column(&s, "id"), [&json!("s1"), &json!("s2")]);
    let a = f.ex().rows(&page("account", 10)).await.unwrap();
    // NULL stays NULL; a value reads as [masked].
    assert_eq!(column(&a, "password"), [&json!(MASKED), &Value::Null]);
    assert_eq!(column(&a, "accessToken"), [&Value::Null, &json!(MASKED)]);
    assert_eq!(
        column(&a, "providerId"),
        [&json!("credential"), &json!("github")]
    );
    let v = f.ex().rows(&page("verification", 10)).await.unwrap();
    assert_eq!(column(&v, "identifier"), [&json!(MASKED)]);
    assert_eq!(column(&v, "value"), [&json!(MASKED)]);
    let tf = f.ex().rows(&page("twoFactor", 10)).await.unwrap();
    assert_eq!(column(&tf, "secret"), [&json!(MASKED)]);
    assert_eq!(column(&tf, "backupCodes"), [&json!(MASKED)]);
    let rl = f.ex().rows(&page("warden_rate_limit", 10)).await.unwrap();
    assert_eq!(column(&rl, "key"), [&json!(MASKED)]);
    assert_eq!(column(&rl, "count"), [&json!(1)]);

    // Natural JSON per backend.
    let u = f.ex().rows(&page("user", 1)).await.unwrap();
    match f.backend {
        Backend::Sqlite => {
            assert_eq!(column(&u, "emailVerified"), [&json!(1)]);
            assert_eq!(
                column(&u, "createdAt"),
                [&json!("2025-01-01T00:00:00.000Z")]
            );
            // Blobs as hex.
            let m = f.ex().rows(&page("_sqlx_migrations", 1)).await.unwrap();
            let sum = column(&m, "checksum")[0].as_str().unwrap().to_owned();
            assert!(
                sum.len() == 96 && sum.bytes().all(|b| b.is_ascii_hexdigit()),
                "{sum}"
            );
        }
        Backend::Postgres => {
            assert_eq!(column(&u, "emailVerified"), [&json!(true)]);
            assert_eq!(column(&u, "createdAt"), [&json!("2025-01-01T00:00:00")]);
            assert_eq!(column(&u, "banned"), [&json!(false)]);
        }
    }
}
on_each_backend!(rows_mask_secrets_in_the_database, masks_rows);

fn emails(p: &warden_store::explore::RowPage) -> Vec<String> {
    column(p, "email")
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

async fn filters_sorts_pages(f: &Fixture) {
    let ex = f.ex();
    let q = |filter: Option<(&str, FilterOp, &str)>, sort: Option<(&str, bool)>, limit, offset| {
        RowQuery {
            table: "user".into(),
            limit,
            offset,
            sort: sort.map(|(c, d)| (c.to_owned(), d)),
            filter: filter.map(|(c, o, v)| (c.to_owned(), o, v.to_owned())),
        }
    };
    let asc = Some(("email", false));
    // Contains: case-insensitive.
    let p = ex
        .rows(&q(
            Some(("email", FilterOp::Contains, "EXAMPLE.COM")),
            asc,
            50,
            0,
        ))
        .await
        .unwrap();
    assert_eq!(
        emails(&p),
        ["ada@example.com", "bob@example.com", "eve@example.com"]
    );
    assert_eq!(p.total, 3);
    let p = ex
        .rows(&q(
            Some(("email", FilterOp::Contains, "example.org")),
            asc,
            50,
            0,
        ))
        .await
        .unwrap();
    assert_eq!(emails(&p), ["carol@EXAMPLE.org"]);
    // LIKE's wildcards are ordinary characters.
    for w in ["%", "_", "0%_s"] {
        let p = ex
            .rows(&q(Some(("name", FilterOp::Contains, w)), asc, 50, 0))
            .await
            .unwrap();
        assert_eq!(emails(&p), ["bob@example.com"], "contains {w:?}");
        assert_eq!(p.total, 1);
    }
    // Eq: exact, case-sensitive.
    let p = ex
        .rows(&q(
            Some(("email", FilterOp::Eq, "carol@EXAMPLE.org")),
            None,
            50,
            0,
        ))
        .await
        .unwrap();
    assert_eq!(emails(&p), ["carol@EXAMPLE.org"]);
    let p = ex
        .rows(&q(
            Some(("email", FilterOp::Eq, "carol@example.org")),
            None,
            50,
            0,
        ))
        .await
        .unwrap();
    assert_eq!((p.rows.len(), p.total), (0, 0));
    // Eq on a non-text column compares its text.
    let p = ex
        .rows(&RowQuery {
            table: "warden_rate_limit".into(),
            limit: 10,
            offset: 0,
            sort: None,
            filter: Some(("count".into(), FilterOp::Eq, "1".into())),
        })
        .await
        .unwrap();
    assert_eq!(p.total, 1);
    // Sort, both ways.
    let all = [
        "ada@example.com",
        "bob@example.com",
        "carol@EXAMPLE.org",
        "dave@example.net",
        "eve@example.com",
    ];
    let p = ex.rows(&q(None, asc, 50, 0)).await.unwrap();
    assert_eq!(emails(&p), all);
    let p = ex
        .rows(&q(None, Some(("email", true)), 50, 0))
        .await
        .unwrap();
    let mut rev = all.to_vec();
    rev.reverse();
    assert_eq!(emails(&p), rev);
    let p = ex.rows(&q(None, Some(("id", true)), 50, 0)).await.unwrap();
    assert_eq!(column(&p, "id")[0], &json!("u5"));
    // Pages: total counts all matching rows.
    let p = ex.rows(&q(None, asc, 2, 2)).await.unwrap();
    assert_eq!(emails(&p), ["carol@EXAMPLE.org", "dave@example.net"]);
    assert_eq!(p.total, 5);
    let p = ex.rows(&q(None, asc, 2, 4)).await.unwrap();
    assert_eq!(emails(&p), ["eve@example.com"]);
    let p = ex.rows(&q(None, asc, 2, 10)).await.unwrap();
    assert_eq!((p.rows.len(), p.total), (0, 5));
    let p = ex
        .rows(&q(
            Some(("email", FilterOp::Contains, "example.com")),
            asc,
            2,
            0,
        ))
        .await
        .unwrap();
    assert_eq!((p.rows.len(), p.total), (2, 3));
    // Unsorted pages follow the primary key.
    let p = ex.rows(&q(None, None, 2, 1)).await.unwrap();
    assert_eq!(column(&p, "id"), [&json!("u2"), &json!("u3")]);
}
on_each_backend!(rows_filter_sort_and_page, filters_sorts_pages);

async fn refuses_bad_row_queries(f: &Fixture) {
    let ex = f.ex();
    let with = |table: &str, sort: Option<&str>, filter: Option<&str>| RowQuery {
        table: table.into(),
        limit: 10,
        offset: 0,
        sort: sort.map(|s| (s.to_owned(), false)),
        filter: filter.map(|c| (c.to_owned(), FilterOp::Contains, "t".to_owned())),
    };
    let secret_cases = [
        ("session", None, Some("token")),
        ("session", Some("token"), None),
        ("account", Some("password"), None),
        ("account", None, Some("password")),
        ("verification", None, Some("identifier")),
        ("twoFactor", Some("secret"), None),
        ("warden_rate_limit", Some("key"), None),
    ];
    for (t, s, fl) in secret_cases {
        match ex.rows(&with(t, s, fl)).await {
            Err(ExploreError::SecretColumn(c)) => assert_eq!(Some(c.as_str()), s.or(fl)),
            other => panic!("{:?} {t} {s:?} {fl:?}: {other:?}", f.backend),
        }
    }
    for t in [
        "nope",
        "user\"; DROP TABLE \"session\"; --",
        "",
        "USER",
        "sqlite_schema",
        "pg_class",
    ] {
        assert!(
            matches!(
                ex.rows(&page(t, 10)).await,
                Err(ExploreError::UnknownTable(_))
            ),
            "{:?} table {t:?}",
            f.backend
        );
    }
    for (s, fl) in [
        (Some("nope"), None),
        (None, Some("nope")),
        (Some("id\" DESC --"), None),
    ] {
        assert!(
            matches!(
                ex.rows(&with("user", s, fl)).await,
                Err(ExploreError::UnknownColumn(_))
            ),
            "{:?} {s:?} {fl:?}",
            f.backend
        );
    }
    for limit in [0, 501, u32::MAX] {
        assert!(
            matches!(
                ex.rows(&page("user", limit)).await,
                Err(ExploreError::BadQuery(_))
            ),
            "limit {limit}"
        );
    }
    assert_eq!(ex.rows(&page("user", 500)).await.unwrap().rows.len(), 5);
    assert_eq!(ex.rows(&page("user", 1)).await.unwrap().rows.len(), 1);
    let mut far = page("user", 10);
    far.offset = u64::MAX;
    assert!(matches!(
        ex.rows(&far).await,
        Err(ExploreError::BadQuery(_))
    ));
    // Nothing was dropped.
    assert_eq!(ex.rows(&page("session", 10)).await.unwrap().total, 2);
}
on_each_backend!(
    rows_refuse_secret_unknown_and_bad_queries,
    refuses_bad_row_queries
);

// ---------------------------------------------------------------------------
// Console

async fn sql(f: &Fixture, q: &str) -> Result<warden_store::explore::SqlResult, ExploreError> {
    f.ex().sql(q, SqlLimits::default()).await
}

async fn console_selects(f: &Fixture) {
    let r = sql(f, r#"select "id", "email" from "user" order by "id""#)
        .await
        .unwrap();
    assert_eq!(r.columns, ["id", "email"]);
    assert_eq!(r.rows.len(), 5);
    assert_eq!(r.rows[0], [json!("u1"), json!("ada@example.com")]);
    assert!(!r.truncated);
    let r = sql(f, r#"select count(*) as n from "session";"#)
        .await
        .unwrap();
    assert_eq!(r.rows, [[json!(2)]]);
    // Repeated names stay apart.
    let r = sql(f, "select 1 as a, 2 as a").await.unwrap();
    assert_eq!(r.columns, ["a", "a"]);
    assert_eq!(r.rows, [[json!(1), json!(2)]]);
    // Values as JSON.
    match f.backend {
        Backend::Sqlite => {
            let r = sql(f, "select 1, 1.5, 'x', x'01ff', null").await.unwrap();
            assert_eq!(
                r.rows,
                [[json!(1), json!(1.5), json!("x"), json!("01ff"), Value::Null]]
            );
        }
        Backend::Postgres => {
            let r = sql(
                f,
                "select 1::int4 as i, 9000000000::int8 as b, true as t, 'x'::text as s, \
                 timestamp '2025-01-23 10:00:00' as at, '{\"a\": [1]}'::json as j, \
                 '{\"k\": 2}'::jsonb as jb, 1.5::numeric as n, null::text as z",
            )
            .await
            .unwrap();
            assert_eq!(r.columns, ["i", "b", "t", "s", "at", "j", "jb", "n", "z"]);
            assert_eq!(
                r.rows,
                [[
                    json!(1),
                    json!(9_000_000_000_i64),
                    json!(true),
                    json!("x"),
                    json!("2025-01-23T10:00:00"),
                    json!({"a": [1]}),
                    json!({"k": 2}),
                    json!(1.5),
                    Value::Null
                ]]
            );
            // More columns than one json_build_array call takes.
            let many: Vec<String> = (0..150).map(|i| format!("{i} as c{i}")).collect();
            let r = sql(f, &format!("select {}", many.join(", ")))
                .await
                .unwrap();
            assert_eq!(r.columns.len(), 150);
            assert_eq!(r.rows[0][149], json!(149));
        }
    }
    // No rows: the columns still.
    let r = sql(f, r#"select "id" from "user" where "id" = 'nobody'"#)
        .await
        .unwrap();
    assert_eq!((r.columns.len(), r.rows.len()), (1, 0));
}
on_each_backend!(console_selects_and_decodes, console_selects);

async fn console_truncates(f: &Fixture) {
    let q = r#"select "id" from "user" order by "id""#;
    let limits = |max_rows| SqlLimits {
        max_rows,
        ..SqlLimits::default()
    };
    let r = f.ex().sql(q, limits(2)).await.unwrap();
    assert_eq!(r.rows, [[json!("u1")], [json!("u2")]]);
    assert!(r.truncated);
    let r = f.ex().sql(q, limits(5)).await.unwrap();
    assert_eq!(r.rows.len(), 5);
    assert!(!r.truncated, "exactly max_rows is not truncated");
    let r = f.ex().sql(q, limits(0)).await.unwrap();
    assert!(r.rows.is_empty() && r.truncated);
}
on_each_backend!(console_row_limit_truncates, console_truncates);

async fn console_cannot_read_secrets(f: &Fixture) {
    match f.backend {
        Backend::Sqlite => {
            // Secret columns read as NULL, wherever they are used.
            let r = sql(f, r#"select "id", "token" from "session" order by "id""#)
                .await
                .unwrap();
            assert_eq!(
                r.rows,
                [[json!("s1"), Value::Null], [json!("s2"), Value::Null]]
            );
            for q in [
                r#"select * from "account""#,
                r#"select * from "twoFactor""#,
                r#"select * from "verification""#,
                r#"select * from "warden_rate_limit""#,
                r#"select * from session s join account a on a."userId" = s."userId""#,
                r#"select group_concat("token") from session"#,
                r#"select substr(password, 1, 40) from account"#,
                r#"with x as (select token as t from session) select t from x"#,
                r#"select * from sqlite_stat4"#,
                r#"select * from sqlite_stat1"#,
            ] {
                let r = sql(f, q).await.unwrap();
                assert_no_secret(q, &r);
            }
            let r = sql(
                f,
                r#"select count(*) from session where token like 'tokenhash%'"#,
            )
            .await
            .unwrap();
            assert_eq!(r.rows, [[json!(0)]], "a secret cannot be matched either");
            let r = sql(f, r#"select "password" from account order by id"#)
                .await
                .unwrap();
            assert_eq!(r.rows, [[Value::Null], [Value::Null]]);
        }
        Backend::Postgres => {
            for q in [
                r#"select * from "account""#,
                r#"select * from "session""#,
                r#"select "token" from "session""#,
                r#"select row_to_json(a) from "account" a"#,
                r#"select a from "account" a"#,
                r#"select count(*) from "session" where "token" like 'tokenhash%'"#,
                r#"select query_to_xml('select "token" from "session"', true, false, '')"#,
                // Switching back to the server's role in mid-statement.
                r#"select set_config('role', 'none', true), query_to_xml('select "token" from "session"', true, false, '')"#,
                // ... and reading it through an error message.
                r#"select set_config('role', 'none', true), query_to_xml('select "token" from "session"', true, false, '')::text::int"#,
                r#"select set_config('session_authorization', 'postgres', true)"#,
                r#"select table_to_xml('"session"', true, false, '')"#,
                r#"select * from "twoFactor""#,
                r#"select "identifier" from "verification""#,
                r#"select "key" from "warden_rate_limit""#,
            ] {
                match sql(f, q).await {
                    Err(ExploreError::Sql(m)) => assert!(!m.contains("SECRET"), "{q}: {m}"),
                    other => panic!("{q}: {other:?}"),
                }
            }
            match sql(f, r#"select * from "account""#).await {
                Err(ExploreError::Sql(m)) => {
                    assert!(m.contains("permission denied"), "{m}");
                    assert!(m.contains("secret columns"), "{m}");
                }
                other => panic!("{other:?}"),
            }
            let r = sql(f, r#"select "id", "userId" from "account" order by "id""#)
                .await
                .unwrap();
            assert_eq!(
                r.rows,
                [[json!("a1"), json!("u1")], [json!("a2"), json!("u1")]]
            );
            let r = sql(f, r#"select count(*) from "session""#).await.unwrap();
            assert_eq!(r.rows, [[json!(2)]]);
            // pg_stats shows values only for columns the role may read.
            let r = sql(
                f,
                "select most_common_vals::text from pg_stats where tablename = 'session'",
            )
            .await
            .unwrap();
            assert_no_secret("pg_stats", &r);
            // The role as documented: NOLOGIN, no attributes.
            let (_, name) = f.pg.as_ref().unwrap();
            let role = console_role(name);
            let r = sql(
                f,
                &format!(
                "select rolcanlogin, rolsuper, rolbypassrls from pg_roles where rolname = '{role}'"
            ),
            )
            .await
            .unwrap();
            assert_eq!(r.rows, [[json!(false), json!(false), json!(false)]]);
        }
    }
}
on_each_backend!(console_never_reads_a_secret, console_cannot_read_secrets);

async fn console_refuses_changes(f: &Fixture) {
    let mut refused = vec![
        r#"insert into "user" ("id", "name", "email") values ('x', 'x', 'x@example.com')"#,
        r#"update "user" set "name" = 'x'"#,
        r#"delete from "session""#,
        r#"create table t (x int)"#,
        r#"drop table "session""#,
        r#"alter table "user" add column x int"#,
        r#"create index i on "user" ("name")"#,
        "select 1; select 2",
        r#"select 1; delete from "session""#,
        "select 1;\n-- a comment\nselect 2",
        "",
        "  ;  ",
        "-- only a comment",
        "selec 1",
        "begin",
        "commit",
    ];
    match f.backend {
        Backend::Sqlite => refused.extend([
            r#"pragma table_info("user")"#,
            "pragma writable_schema = 1",
            "select * from pragma_table_info('user')",
            "attach database 'other.db' as other",
            "vacuum",
            "analyze",
            "reindex",
            "select load_extension('x')",
            "savepoint a",
            "create temp table t (x)",
            r#"with d as (select 1) delete from "session""#,
            r#"replace into "user" ("id", "name", "email") values ('u1', 'x', 'x')"#,
        ]),
        Backend::Postgres => refused.extend([
            "set role none",
            "reset role",
            "show search_path",
            "select nextval('warden_audit_seq_seq')",
            r#"copy "user" to stdout"#,
            r#"with d as (delete from "session" returning 1) select * from d"#,
            r#"select * from "user" for update"#,
            "select pg_advisory_lock(1)",
            "create temp table t (x int)",
            "select $1",
            "truncate \"session\"",
            "notify x",
        ]),
    }
    for q in refused {
        match sql(f, q).await {
            Err(ExploreError::Sql(_)) => {}
            // A session advisory lock is allowed on PostgreSQL's read-only
            // transaction: harmless, the console's connection is closed.
            Ok(_) if q.contains("pg_advisory_lock") => {}
            other => panic!("{:?} {q:?}: {other:?}", f.backend),
        }
    }
    match sql(f, "select 1; select 2").await {
        Err(ExploreError::Sql(m)) => assert!(
            m.contains("one statement") || m.contains("multiple commands"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    // Nothing changed.
    let ex = f.ex();
    assert_eq!(ex.rows(&page("session", 10)).await.unwrap().total, 2);
    assert_eq!(ex.rows(&page("user", 10)).await.unwrap().total, 5);
    let names: Vec<String> = ex
        .tables()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert!(!names.iter().any(|n| n == "t"), "{names:?}");
    let r = sql(f, r#"select "name" from "user" where "id" = 'u1'"#)
        .await
        .unwrap();
    assert_eq!(r.rows, [[json!("Ada")]]);
    // A trailing semicolon and comment are one statement.
    let r = sql(f, "select 1 as one;").await.unwrap();
    assert_eq!(r.rows, [[json!(1)]]);
}
on_each_backend!(
    console_refuses_writes_ddl_and_several_statements,
    console_refuses_changes
);

async fn console_times_out(f: &Fixture) {
    let endless =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c";
    let run = |limits: SqlLimits| async move {
        let started = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(10), f.ex().sql(endless, limits))
            .await
            .unwrap_or_else(|_| panic!("{:?}: the endless statement never stopped", f.backend));
        (r, started.elapsed())
    };
    // The default limit, 2 s.
    let (r, took) = run(SqlLimits::default()).await;
    assert!(
        matches!(r, Err(ExploreError::Timeout)),
        "{:?}: {r:?}",
        f.backend
    );
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_millis(2800),
        "{:?}: returned after {took:?}",
        f.backend
    );
    let (r, took) = run(SqlLimits {
        timeout: Duration::from_millis(300),
        ..SqlLimits::default()
    })
    .await;
    assert!(matches!(r, Err(ExploreError::Timeout)), "{r:?}");
    assert!(
        took < Duration::from_millis(1000),
        "{:?}: {took:?}",
        f.backend
    );
    // The console still answers afterwards.
    assert_eq!(sql(f, "select 1").await.unwrap().rows, [[json!(1)]]);
}
on_each_backend!(console_statement_timeout, console_times_out);

#[tokio::test]
async fn console_needs_a_database_file() {
    let db = open_database("sqlite::memory:", &PoolOptions::default(), true)
        .await
        .unwrap();
    assert!(matches!(
        db.explorer.sql("select 1", SqlLimits::default()).await,
        Err(ExploreError::Unavailable(_))
    ));
    // Everything else works on it.
    assert_eq!(db.explorer.tables().await.unwrap().len(), 10);
}

/// A server user that may not create roles: the console is unavailable,
/// with a message saying why; the rest of the explorer works.
#[tokio::test(flavor = "multi_thread")]
async fn console_without_createrole_is_unavailable() {
    let Some(admin) = std::env::var("WARDEN_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        return;
    };
    let name = unique_name("warden_explore_nocr");
    let user = format!("{name}_user");
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    for stmt in [
        format!(r#"CREATE ROLE "{user}" LOGIN NOCREATEROLE"#),
        format!(r#"CREATE DATABASE "{name}" OWNER "{user}""#),
    ] {
        sqlx::raw_sql(&stmt).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
    let body = async {
        let url = database_url(&admin, &name);
        let (scheme, rest) = url.split_once("://").unwrap();
        let host = rest.split_once('@').map_or(rest, |(_, h)| h);
        let url = format!("{scheme}://{user}@{host}");
        let db = open_database(&url, &PoolOptions::default(), true)
            .await
            .unwrap();
        match db.explorer.sql("select 1", SqlLimits::default()).await {
            Err(ExploreError::Unavailable(m)) => {
                assert!(m.contains("CREATEROLE"), "{m}");
                assert!(m.contains(&console_role(&name)), "{m}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(db.explorer.tables().await.unwrap().len(), 10);
        assert_eq!(db.explorer.migrations().await.unwrap().len(), 9);
    };
    let r = AssertUnwindSafe(body).catch_unwind().await;
    drop_database(&admin, &name, &[console_role(&name), user]).await;
    if let Err(p) = r {
        std::panic::resume_unwind(p);
    }
}

// ---------------------------------------------------------------------------
// Overview

async fn lists_migrations(f: &Fixture) {
    let m = f.ex().migrations().await.unwrap();
    let versions: Vec<i64> = m.iter().map(|m| m.version).collect();
    match f.backend {
        Backend::Sqlite => assert_eq!(versions, [1, 2, 4, 5, 6, 7, 9]),
        Backend::Postgres => assert_eq!(versions, [1, 2, 3, 4, 5, 6, 7, 8, 9]),
    }
    assert_eq!(m[0].description, "create auth tables");
    for x in &m {
        let at = chrono::DateTime::parse_from_rfc3339(&x.applied_at)
            .unwrap_or_else(|e| panic!("{:?}: {x:?}: {e}", f.backend));
        let age = chrono::Utc::now().signed_duration_since(at);
        assert!(age < chrono::TimeDelta::minutes(10), "{x:?}");
    }
    let v = serde_json::to_value(&m[0]).unwrap();
    assert!(v.get("appliedAt").is_some(), "{v}");
}
on_each_backend!(migrations_are_listed_oldest_first, lists_migrations);

async fn counts_active_sessions(f: &Fixture) {
    let at = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let ex = f.ex();
    assert_eq!(ex.active_sessions(chrono::Utc::now()).await.unwrap(), 1);
    assert_eq!(
        ex.active_sessions(at("1999-01-01T00:00:00Z"))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        ex.active_sessions(at("2099-01-01T00:00:00Z"))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        ex.active_sessions(at("2098-12-31T23:59:59.999Z"))
            .await
            .unwrap(),
        1
    );
}
on_each_backend!(active_sessions_are_counted, counts_active_sessions);
