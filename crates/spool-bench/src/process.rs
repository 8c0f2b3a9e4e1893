//! The `spool` process under test: started on a fresh SQLite database,
//! measured through /proc, killed when dropped.

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Spool {
    child: Child,
    pub base: String,
    pub db: PathBuf,
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

impl Spool {
    pub async fn start(bin: &Path, upstream: &str) -> anyhow::Result<Self> {
        Self::start_with(bin, upstream, &[]).await
    }

    /// Like [`Spool::start`], with more `SPOOL_*` settings in `env`.
    pub async fn start_with(
        bin: &Path,
        upstream: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = std::env::temp_dir().join(format!("spool-bench-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let db = dir.join("bench.db");
        let child = Command::new(bin)
            .arg("serve")
            .env("SPOOL_ADDR", format!("127.0.0.1:{port}"))
            .env("SPOOL_DATABASE_URL", format!("sqlite://{}", db.display()))
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
        let db = self.db.clone();
        Ok(tokio::task::spawn_blocking(move || {
            rusqlite::Connection::open(db)?
                .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        })
        .await??)
    }
}
