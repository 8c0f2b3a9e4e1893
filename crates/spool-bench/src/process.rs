//! The `spool` process under test: started on a fresh SQLite database or
//! on a PostgreSQL schema, measured through /proc, killed when dropped.

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Where a spool process under test keeps its log.
#[derive(Debug, Clone)]
pub enum Database {
    /// A fresh SQLite file in its own directory.
    Sqlite,
    /// A PostgreSQL URL (a schema several processes may share).
    Postgres(String),
}

pub struct Spool {
    child: Child,
    pub base: String,
    db: Stored,
    /// /proc files opened once: with thousands of sockets open the bench
    /// may have no descriptor left to open them later.
    proc_status: std::sync::Mutex<std::fs::File>,
    proc_stat: std::sync::Mutex<std::fs::File>,
}

fn reread(file: &std::sync::Mutex<std::fs::File>) -> anyhow::Result<String> {
    use std::io::{Read, Seek};
    let mut file = file.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    file.rewind()?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok(text)
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The log of a process, as the bench reads it.
enum Stored {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Spool {
    pub async fn start(bin: &Path, upstream: &str, database: &Database) -> anyhow::Result<Self> {
        Self::start_with(bin, upstream, database, &[]).await
    }

    /// Like [`Spool::start`], with more `SPOOL_*` settings in `env`.
    pub async fn start_with(
        bin: &Path,
        upstream: &str,
        database: &Database,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = std::env::temp_dir().join(format!("spool-bench-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let (db, url) = match database {
            Database::Sqlite => {
                let db = dir.join("bench.db");
                let url = format!("sqlite://{}", db.display());
                (Stored::Sqlite(db), url)
            }
            Database::Postgres(url) => (Stored::Postgres(url.clone()), url.clone()),
        };
        let child = Command::new(bin)
            .arg("serve")
            .env("SPOOL_ADDR", format!("127.0.0.1:{port}"))
            .env("SPOOL_DATABASE_URL", url)
            // Instances sharing a database share the compaction key.
            .env(
                "SPOOL_COMPACTION_KEY_FILE",
                std::env::temp_dir().join("spool-bench-compaction.key"),
            )
            .env("SPOOL_UPSTREAM_URL", upstream)
            .env("SPOOL_SSE_KEEPALIVE_SECS", "0")
            .env("SPOOL_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let pid = child.id();
        let spool = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            db,
            proc_status: std::sync::Mutex::new(std::fs::File::open(format!("/proc/{pid}/status"))?),
            proc_stat: std::sync::Mutex::new(std::fs::File::open(format!("/proc/{pid}/stat"))?),
        };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            let healthy = client
                .get(format!("{}/healthz", spool.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if healthy {
                return Ok(spool);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("spool did not become healthy")
    }

    /// Resident memory, in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = reread(&self.proc_status)?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS")
    }

    /// CPU time used so far (user + system), in seconds.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        let stat = reread(&self.proc_stat)?;
        // Fields after the command name, which is in parentheses.
        let rest = stat.rsplit_once(')').context("bad stat")?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = fields
            .get(11)
            .zip(fields.get(12))
            .and_then(|(u, s)| Some(u.parse::<f64>().ok()? + s.parse::<f64>().ok()?))
            .context("no utime/stime")?;
        // USER_HZ is 100 on Linux.
        Ok(ticks / 100.0)
    }

    /// Events stored in the log so far.
    pub async fn persisted_events(&self) -> anyhow::Result<i64> {
        match &self.db {
            Stored::Sqlite(db) => {
                let db = db.clone();
                Ok(tokio::task::spawn_blocking(move || {
                    rusqlite::Connection::open(db)?.query_row(
                        "SELECT COUNT(*) FROM events",
                        [],
                        |r| r.get(0),
                    )
                })
                .await??)
            }
            Stored::Postgres(url) => {
                let (client, connection) =
                    tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
                let driver = tokio::spawn(connection);
                let count: i64 = client
                    .query_one("SELECT COUNT(*) FROM events", &[])
                    .await?
                    .get(0);
                drop(client);
                let _ = driver.await;
                Ok(count)
            }
        }
    }
}
