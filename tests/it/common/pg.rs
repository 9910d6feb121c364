//! A database of its own per test on the machine's PostgreSQL
//! (127.0.0.1:5432, trust authentication; REPORTSPLIT_TEST_PG_URL names
//! another server's maintenance database), dropped when the test ends.

use deadpool_postgres::tokio_postgres::{self, NoTls};

/// The maintenance database the test databases are created from.
fn admin_url() -> String {
    std::env::var("REPORTSPLIT_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh, empty database; dropped (connections and all) on drop.
pub struct TestDb {
    pub url: String,
    name: String,
}

async fn admin(sql: &str) {
    let (client, connection) = tokio_postgres::connect(&admin_url(), NoTls)
        .await
        .expect("PostgreSQL at 127.0.0.1:5432 (see docs/operations.md)");
    let task = tokio::spawn(connection);
    client.batch_execute(sql).await.expect(sql);
    drop(client);
    let _ = task.await;
}

impl TestDb {
    pub async fn create(prefix: &str) -> TestDb {
        let name = format!(
            "reportsplit_{prefix}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        admin(&format!("CREATE DATABASE {name}")).await;
        let base = admin_url();
        let server = base
            .rsplit_once('/')
            .map_or(base.as_str(), |(server, _)| server);
        TestDb {
            url: format!("{server}/{name}"),
            name,
        }
    }

    /// Closes the database to connections (and ends those open) or opens
    /// it again: a PostgreSQL outage as a worker sees it (its connections
    /// fail, new ones are refused), without stopping the shared server.
    pub async fn accept_connections(&self, accept: bool) {
        let mut sql = format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS {accept};",
            self.name
        );
        if !accept {
            sql.push_str(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}';",
                self.name
            ));
        }
        admin(&sql).await;
    }

    /// A plain client on the test database, for the test's own reads.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .expect("connect to the test database");
        tokio::spawn(connection);
        client
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop runs inside the test's runtime: a thread of its own with a
        // runtime of its own does the async work.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|runtime| runtime.block_on(admin(&sql)))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}
