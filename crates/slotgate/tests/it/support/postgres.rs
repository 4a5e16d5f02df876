//! A throwaway PostgreSQL cluster for the tests of the PostgreSQL store
//! (issue 10): `initdb` and `pg_ctl` in a fresh temporary directory, on a
//! free port of 127.0.0.1, stopped (`-m immediate`) and removed on drop.
//!
//! A test file takes it beside `support` with
//! `#[path = "support/postgres.rs"] mod pg;`. The binaries are Debian's
//! `postgresql` package (`scripts/test.sh` installs it when missing): `initdb`
//! on `PATH`, else the newest `/usr/lib/postgresql/*/bin`. PostgreSQL refuses
//! to run as root, so as root they run as the `postgres` user (`runuser`), in
//! a directory it owns; as anyone else, as that user.

#![allow(dead_code, unreachable_pub)]

use std::fmt;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The database [`PgCluster::start`] creates.
pub const DATABASE: &str = "slotgate";

/// How long `pg_ctl` waits for the server to start or stop, in seconds (a
/// busy 2-core machine is slow to start one).
const PG_CTL_WAIT_S: &str = "120";

/// A PostgreSQL server of its own in a temporary directory.
pub struct PgCluster {
    /// Holds the data directory, the log and the socket; removed on drop.
    dir: tempfile::TempDir,
    /// Where `initdb`, `pg_ctl` and `postgres` are.
    bin: PathBuf,
    /// Whether the commands run as `postgres` (we are root) or as ourselves.
    as_postgres: bool,
    /// Its TCP port on 127.0.0.1, the same across [`PgCluster::stop`] and
    /// [`PgCluster::start_again`].
    pub port: u16,
}

impl PgCluster {
    /// Creates a cluster, starts it and creates the database [`DATABASE`].
    pub async fn start() -> PgCluster {
        let mut cluster = PgCluster::empty();
        let data = cluster.data_dir();
        // --no-sync: initdb need not flush what a test throws away; the server
        // itself runs with fsync on.
        cluster.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        cluster.configure_and_start();
        let client = cluster.connect_to("postgres").await;
        client
            .batch_execute(&format!("CREATE DATABASE {DATABASE}"))
            .await
            .expect("CREATE DATABASE");
        cluster
    }

    /// A streaming standby of this cluster (`pg_basebackup -R`), started,
    /// and made its synchronous standby: from now on a commit on this cluster
    /// returns once the standby has it on disk.
    pub async fn start_standby(&self) -> PgCluster {
        let mut standby = PgCluster::empty();
        let data = standby.data_dir();
        let port = self.port.to_string();
        standby.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                path_str(&data),
                "-R",
                "-X",
                "stream",
                "--no-sync",
                "-c",
                "fast",
            ],
        );
        standby.configure_and_start();
        let primary = self.connect_to("postgres").await;
        for sql in [
            "ALTER SYSTEM SET synchronous_standby_names = '*'",
            "SELECT pg_reload_conf()",
        ] {
            primary
                .batch_execute(sql)
                .await
                .expect("making the standby synchronous");
        }
        for _ in 0..600 {
            let sync = primary
                .query(
                    "SELECT 1 FROM pg_stat_replication WHERE sync_state = 'sync'",
                    &[],
                )
                .await
                .expect("pg_stat_replication");
            if !sync.is_empty() {
                return standby;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!(
            "the standby did not become synchronous; its log:\n{}",
            standby.log()
        );
    }

    /// Promotes a standby to primary (`pg_ctl promote`), waiting until it is.
    pub fn promote(&self) {
        let data = self.data_dir();
        let (data, wait) = (path_str(&data), PG_CTL_WAIT_S);
        self.run("pg_ctl", &["promote", "-D", data, "-w", "-t", wait]);
    }

    /// A new temporary directory for a cluster, owned by the user
    /// PostgreSQL runs as; nothing in it yet.
    fn empty() -> PgCluster {
        let bin = bin_dir();
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("slotgate-pg-")
            .tempdir()
            .expect("a temporary directory");
        if as_postgres {
            let pg = Command::new("id")
                .args(["-u", "postgres"])
                .output()
                .expect("id(1) runs");
            let uid = String::from_utf8_lossy(&pg.stdout).trim().parse().ok();
            assert!(uid.is_some(), "no postgres user to run PostgreSQL as");
            std::os::unix::fs::chown(dir.path(), uid, None).expect("chown to postgres");
        }
        PgCluster {
            dir,
            bin,
            as_postgres,
            port: 0,
        }
    }

    /// Points the data directory's server at 127.0.0.1 and this directory's
    /// socket, and starts it on a free port.
    fn configure_and_start(&mut self) {
        let socket_dir = path_str(self.dir.path()).to_string();
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{socket_dir}'\nfsync = on\n"
        );
        append(&self.data_dir().join("postgresql.conf"), &conf);
        // A free port can be taken by someone else before the server binds
        // it: then try another.
        for attempt in 1..=5 {
            self.port = free_port();
            if self.try_start() {
                break;
            }
            assert!(
                attempt < 5 && self.log().contains("could not bind"),
                "PostgreSQL did not start; its log:\n{}",
                self.log()
            );
        }
    }

    /// `postgres://postgres@127.0.0.1:PORT/slotgate`.
    pub fn url(&self) -> String {
        self.url_of(DATABASE)
    }

    /// The URL of another database of this cluster.
    pub fn url_of(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// A new connection to [`DATABASE`], driven on a task of its own.
    pub async fn connect(&self) -> tokio_postgres::Client {
        self.connect_to(DATABASE).await
    }

    /// A new connection to database `db`.
    pub async fn connect_to(&self, db: &str) -> tokio_postgres::Client {
        let url = self.url_of(db);
        connect(&url)
            .await
            .unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
    }

    /// Stops the server at once, as a crash would (`pg_ctl stop -m immediate`);
    /// the data stays for [`PgCluster::start_again`]. Like that, it blocks
    /// the calling thread while `pg_ctl` runs: a test with load running
    /// calls it on a multi-thread runtime.
    pub fn stop(&self) {
        let data = self.data_dir();
        let (data, wait) = (path_str(&data), PG_CTL_WAIT_S);
        self.run(
            "pg_ctl",
            &["stop", "-D", data, "-m", "immediate", "-w", "-t", wait],
        );
    }

    /// Makes the server listen on `addr` too (beside 127.0.0.1), trusting
    /// every connection from the network `trusted` (CIDR), and restarts it
    /// there: for replicas in network namespaces of their own
    /// (`tests/it/partitions.rs`). The address must exist on this machine.
    pub fn listen_also(&self, addr: &str, trusted: &str) {
        let data = self.data_dir();
        append(
            &data.join("postgresql.conf"),
            &format!("\nlisten_addresses = '127.0.0.1,{addr}'\n"),
        );
        append(
            &data.join("pg_hba.conf"),
            &format!("\nhost all all {trusted} trust\n"),
        );
        self.stop();
        self.start_again();
    }

    /// Starts the stopped server again on the same port and data (it
    /// recovers from its WAL as after a crash).
    pub fn start_again(&self) {
        assert!(
            self.try_start(),
            "PostgreSQL did not start again; its log:\n{}",
            self.log()
        );
    }

    /// The cluster's temporary directory (data, log, socket).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `pg_ctl start` on [`PgCluster::port`]; false if the server did not start.
    fn try_start(&self) -> bool {
        let data = self.data_dir();
        let log = self.dir.path().join("postgres.log");
        let port = format!("-p {}", self.port);
        let (data, log, wait) = (path_str(&data), path_str(&log), PG_CTL_WAIT_S);
        let args = [
            "start", "-D", data, "-l", log, "-o", &port, "-w", "-t", wait,
        ];
        // pg_ctl sends the server's own output to the log (-l), so reading
        // its output ends when pg_ctl does.
        self.command("pg_ctl", &args)
            .output()
            .expect("pg_ctl runs")
            .status
            .success()
    }

    /// Runs a PostgreSQL program to its end; panics with its output if it fails.
    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program, args)
            .output()
            .unwrap_or_else(|e| panic!("{program} does not run: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `program args` from [`PgCluster::bin`], as the user PostgreSQL runs as,
    /// in the cluster's directory (which that user can read, unlike perhaps ours).
    fn command(&self, program: &str, args: &[&str]) -> Command {
        let program = self.bin.join(program);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        c.args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.data_dir().join("postmaster.pid").exists() {
            let data = self.data_dir();
            let args = ["stop", "-D", path_str(&data), "-m", "immediate", "-w"];
            let _ = self.command("pg_ctl", &args).output();
        }
    }
}

impl fmt::Debug for PgCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgCluster({})", self.url())
    }
}

/// Connects to `url` without TLS and drives the connection on a task of its own.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        // It ends when the client is dropped or the server goes away.
        let _ = connection.await;
    });
    Ok(client)
}

/// The directory of Debian's PostgreSQL programs: that of `initdb` on `PATH`
/// (following its link, so `pg_ctl` and `postgres` are beside it), else the
/// newest `/usr/lib/postgresql/VERSION/bin`.
fn bin_dir() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("initdb"))
        .find(|p| p.is_file());
    if let Some(initdb) = on_path {
        let real = std::fs::canonicalize(&initdb).expect("initdb's path resolves");
        return real
            .parent()
            .expect("initdb is in a directory")
            .to_path_buf();
    }
    let versions = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten();
    versions
        .flatten()
        .filter_map(|v| {
            let version: u32 = v.file_name().to_str()?.parse().ok()?;
            let bin = v.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max()
        .map(|(_, bin)| bin)
        .expect(
            "PostgreSQL is not installed: no initdb on PATH nor in /usr/lib/postgresql/*/bin \
             (scripts/test.sh installs Debian's postgresql package)",
        )
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id(1) runs");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// A port of 127.0.0.1 nobody listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding port 0");
    listener.local_addr().expect("a bound address").port()
}

fn append(file: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(file)
        .unwrap_or_else(|e| panic!("{} opens: {e}", file.display()));
    f.write_all(text.as_bytes())
        .unwrap_or_else(|e| panic!("{} is written: {e}", file.display()));
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}
