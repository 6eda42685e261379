//! Test support: one test body, run on both backends.
//!
//! `on_both_backends! { fn a_sentence(backend) { ... } }` makes a module
//! `a_sentence` with two tests, `sqlite` and `postgres`, that run the body
//! with [`Backend::Sqlite`] and [`Backend::Postgres`]; the body gets a fresh
//! database from [`TestDb::new`]. PostgreSQL tests use the server in
//! `BPR_TEST_DATABASE_URL` (`scripts/standins/postgres.sh start` prints it),
//! each in a database of its own, dropped afterwards. Without it they are
//! skipped with a message, except under `CI=true`, where that is a failure.

use std::path::Path;

use super::{Database, DatabaseSettings, PasswordSource, PostgresTarget};

/// Which backend a test body runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on the test PostgreSQL server.
    Postgres,
}

/// One test's database, removed when dropped.
pub(crate) struct TestDb {
    db: Option<Database>,
    dir: tempfile::TempDir,
    scratch: Option<Scratch>,
}

impl TestDb {
    /// A fresh, migrated database on `backend`.
    pub(crate) fn new(backend: Backend) -> TestDb {
        let dir = tempfile::tempdir().expect("a temporary directory");
        match backend {
            Backend::Sqlite => TestDb {
                db: Some(Database::open(&dir.path().join("bpr.sqlite3")).expect("open SQLite")),
                dir,
                scratch: None,
            },
            Backend::Postgres => {
                let scratch = Scratch::create(dir.path());
                let db = scratch.open().expect("connect to the test database");
                TestDb {
                    db: Some(db),
                    dir,
                    scratch: Some(scratch),
                }
            }
        }
    }

    /// The database (a handle; cheap to clone).
    pub(crate) fn db(&self) -> Database {
        self.db.clone().expect("open until dropped")
    }

    /// A temporary directory of the test's own.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Another handle on the same database, as a second process would open
    /// it (its own connection or pool).
    pub(crate) fn reopen(&self) -> Database {
        match &self.scratch {
            Some(s) => s.open().expect("connect again"),
            None => Database::open(&self.dir.path().join("bpr.sqlite3")).expect("open again"),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        self.db = None;
        if let Some(s) = self.scratch.take() {
            s.drop_database();
        }
    }
}

/// True when PostgreSQL tests can run; false (with a message) when they are
/// skipped locally. Under `CI=true` a missing server is a failure.
pub(crate) fn postgres_available() -> bool {
    if std::env::var_os("BPR_TEST_DATABASE_URL").is_some() {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci,
        "BPR_TEST_DATABASE_URL is not set under CI=true: the PostgreSQL half of the store \
         tests must run (start it with `eval \"$(scripts/standins/postgres.sh start)\"`)"
    );
    eprintln!(
        "skipped on PostgreSQL: BPR_TEST_DATABASE_URL is not set (run `eval \"$(scripts/standins/postgres.sh start)\"`)"
    );
    false
}

/// A database of a test's own on the test server.
pub(crate) struct Scratch {
    admin: String,
    target: PostgresTarget,
    password: PasswordSource,
}

impl Scratch {
    /// Creates it; the password goes to a file in `dir` (never in a URL bpr reads).
    pub(crate) fn create(dir: &Path) -> Scratch {
        let admin = std::env::var("BPR_TEST_DATABASE_URL").expect("BPR_TEST_DATABASE_URL");
        let mut url = url::Url::parse(&admin).expect("BPR_TEST_DATABASE_URL is a URL");
        let password = url.password().unwrap_or_default().to_string();
        let _ = url.set_password(None);
        let base = PostgresTarget::parse(url.as_str()).expect("BPR_TEST_DATABASE_URL parses");
        let name = format!(
            "bpr_test_{}_{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        admin_sql(&admin, &format!("CREATE DATABASE {name}"));
        let file = dir.join("pg-password");
        std::fs::write(&file, &password).expect("write the password file");
        Scratch {
            admin,
            target: base.with_database(&name),
            password: PasswordSource::File(file),
        }
    }

    /// The target and its password source.
    pub(crate) fn settings(&self) -> (PostgresTarget, DatabaseSettings) {
        (
            self.target.clone(),
            DatabaseSettings {
                password: Some(self.password.clone()),
                ..DatabaseSettings::default()
            },
        )
    }

    /// Opens it (migrating it the first time).
    pub(crate) fn open(&self) -> super::Result<Database> {
        let (target, settings) = self.settings();
        Database::connect(&target, &settings)
    }

    fn drop_database(&self) {
        admin_sql(
            &self.admin,
            &format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.target.dbname()
            ),
        );
    }
}

/// Runs `sql` on the server as the test superuser, from a thread of its own
/// (the sync client must not run inside a tokio runtime).
pub(crate) fn admin_sql(admin: &str, sql: &str) {
    let (admin, sql) = (admin.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&admin, postgres::NoTls)
            .expect("connect to BPR_TEST_DATABASE_URL");
        client.batch_execute(&sql).expect("admin statement");
    })
    .join()
    .expect("admin thread");
}

/// One test body, two tests: `mod <name> { fn sqlite(); fn postgres(); }`.
macro_rules! on_both_backends {
    ($($(#[$attr:meta])* fn $name:ident($backend:ident) $body:block)*) => {$(
        $(#[$attr])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($backend: $crate::db::testing::Backend) $body

            #[test]
            fn sqlite() {
                body($crate::db::testing::Backend::Sqlite)
            }

            #[test]
            fn postgres() {
                if $crate::db::testing::postgres_available() {
                    body($crate::db::testing::Backend::Postgres)
                }
            }
        }
    )*};
}
pub(crate) use on_both_backends;
