//! TLS to PostgreSQL (issue 21): a cluster started by the test with
//! `ssl = on`, a CA and a server certificate (for `localhost` only) made by
//! the test, and a `pg_hba.conf` that accepts only `hostssl`. The real
//! binary is started with each `--store` URL: `verify-full` connects and
//! serves an acquire; a wrong host name, an unknown CA and a plain
//! connection are refused, each with a message that says why; a client
//! certificate is accepted where the database asks for one. A URL without
//! `sslmode` takes `PGSSLMODE` (and `PGSSLROOTCERT`) from the environment,
//! as libpq does; the URL's own `sslmode` wins.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::support::pg::PgCluster;
use crate::support::tls::TestCa;
use crate::support::{serve_command, OPERATOR_KEY};
use slotgate_client::{Acquire, CallType, Client};
use tokio::io::{AsyncBufReadExt, BufReader};

/// A cluster that accepts TLS only: its server certificate names
/// `localhost` (not 127.0.0.1), signed by `ca`; `certuser` must show a
/// client certificate of that CA, `postgres` need not. It has databases
/// `case0` to `case{cases - 1}`, one for each server, so that none follows
/// the one before it as its leader.
async fn tls_cluster(ca: &TestCa, cases: usize) -> PgCluster {
    let cluster = PgCluster::start().await;
    let admin = cluster.connect().await;
    admin
        .batch_execute("CREATE ROLE certuser LOGIN SUPERUSER")
        .await
        .expect("CREATE ROLE");
    for i in 0..cases {
        admin
            .batch_execute(&format!("CREATE DATABASE case{i}"))
            .await
            .expect("CREATE DATABASE");
    }
    let data = cluster.dir().join("data");
    let owner = std::fs::metadata(&data).unwrap().uid();
    let (cert, key) = ca.issue("db", "db", &["localhost"]);
    for (from, to) in [
        (&cert, "server.crt"),
        (&key, "server.key"),
        (&ca.cert_path(), "root.crt"),
    ] {
        let to = data.join(to);
        std::fs::copy(from, &to).unwrap();
        std::os::unix::fs::chown(&to, Some(owner), None).unwrap();
        std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    }
    let mut conf = std::fs::OpenOptions::new()
        .append(true)
        .open(data.join("postgresql.conf"))
        .unwrap();
    std::io::Write::write_all(
        &mut conf,
        b"\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nssl_ca_file = 'root.crt'\n",
    )
    .unwrap();
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\n\
         hostssl all certuser 127.0.0.1/32 cert\n\
         hostssl all postgres 127.0.0.1/32 trust\n",
    )
    .unwrap();
    cluster.stop();
    cluster.start_again();
    cluster
}

/// Runs `slotgate serve --store URL` until it is ready (`Ok`, with its
/// stderr and port; the child is killed on drop) or exits (`Err`, its stderr).
async fn serve(
    dir: &Path,
    url: &str,
    env: &[(&str, String)],
) -> Result<(tokio::process::Child, u16, String), String> {
    let mut child = tokio::process::Command::from(serve_command("127.0.0.1:0", dir))
        .args(["--store", url])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("slotgate starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    let outcome = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            log.push_str(&line);
            log.push('\n');
            if let Some(rest) = line.split("slotgate ready on http://127.0.0.1:").nth(1) {
                let port = rest.split(|c: char| !c.is_ascii_digit()).next().unwrap();
                return Some(port.parse().unwrap());
            }
        }
        None
    })
    .await
    .expect("slotgate is ready or exits within 30 s");
    // Keep draining stderr, so the server never writes into a closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    match outcome {
        Some(port) => Ok((child, port, log)),
        None => Err(log),
    }
}

/// A user@host, the URL's parameters, Ok(the startup log says) or Err(the
/// error says), and the server's environment.
type Case<'a> = (
    &'a str,
    String,
    Result<&'a str, &'a str>,
    Vec<(&'a str, String)>,
);

#[tokio::test(flavor = "multi_thread")]
async fn tls_to_postgresql_as_libpq_means_sslmode() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new(tmp.path(), "ca");
    let stranger = TestCa::new(tmp.path(), "stranger");
    let (client_cert, client_key) = ca.issue("client", "certuser", &[]);
    let root = ca.cert_path().display().to_string();
    let other = stranger.cert_path().display().to_string();
    let client = format!(
        "sslcert={}&sslkey={}",
        client_cert.display(),
        client_key.display()
    );
    // (user@host, the URL's parameters, Ok(the startup log says) or Err(the error says)).
    #[rustfmt::skip]
    let cases: Vec<Case<'_>> = vec![
        ("postgres@localhost", format!("sslmode=verify-full&sslrootcert={root}"),
            Ok("sslmode=verify-full (certificate chain and host name checked"), vec![]),
        ("postgres@127.0.0.1", format!("sslmode=verify-full&sslrootcert={root}"),
            Err("certificate not valid for name \"127.0.0.1\""), vec![]),
        ("postgres@127.0.0.1", format!("sslmode=verify-ca&sslrootcert={root}"),
            Ok("sslmode=verify-ca (certificate chain checked"), vec![]),
        ("postgres@localhost", format!("sslmode=verify-full&sslrootcert={other}"),
            Err("invalid peer certificate: UnknownIssuer"), vec![]),
        ("postgres@localhost", format!("sslmode=require&sslrootcert={other}"),
            Err("invalid peer certificate: UnknownIssuer"), vec![]),
        ("postgres@127.0.0.1", "sslmode=require".to_string(),
            Ok("sslmode=require (encrypted, the server's certificate not checked)"), vec![]),
        ("postgres@127.0.0.1", String::new(),
            Ok("sslmode=prefer by default (encrypted, the server's certificate not checked)"), vec![]),
        ("postgres@127.0.0.1", "sslmode=disable".to_string(),
            Err("no pg_hba.conf entry for host \"127.0.0.1\", user \"postgres\", database \"case7\", no encryption"), vec![]),
        ("certuser@localhost", format!("sslmode=verify-full&sslrootcert={root}&{client}"),
            Ok("client certificate"), vec![]),
        ("certuser@localhost", format!("sslmode=verify-full&sslrootcert={root}"),
            Err("connection requires a valid client certificate"), vec![]),
        // libpq's variables where the URL says nothing; the URL wins.
        ("postgres@localhost", String::new(),
            Ok("sslmode=verify-full from PGSSLMODE (certificate chain and host name checked"),
            vec![("PGSSLMODE", "verify-full".into()), ("PGSSLROOTCERT", root.clone())]),
        ("postgres@127.0.0.1", String::new(),
            Err("no encryption"),
            vec![("PGSSLMODE", "disable".into())]),
        ("postgres@127.0.0.1", "sslmode=require".to_string(),
            Ok("sslmode=require (encrypted"),
            vec![("PGSSLMODE", "disable".into())]),
    ];
    let cluster = tls_cluster(&ca, cases.len()).await;
    let port = cluster.port;
    for (i, (who, params, want, env)) in cases.iter().enumerate() {
        let url = format!("postgres://{who}:{port}/case{i}?{params}");
        let dir = tmp.path().join(format!("data{i}"));
        match (serve(&dir, &url, env).await, want) {
            (Ok((_child, http, log)), Ok(said)) => {
                assert!(log.contains(said), "{url}: the log says {said:?}:\n{log}");
                let client = Client::new(&format!("http://127.0.0.1:{http}"), OPERATOR_KEY);
                let org = format!("org{i}");
                client.create_org(&org, 1).await.unwrap();
                let permit = client
                    .acquire(&org, Acquire::new("agent", CallType::Chat).id("c1"))
                    .await
                    .unwrap();
                assert_eq!(client.org(&org).await.unwrap().active, 1, "{url}");
                permit.release().await.unwrap();
            }
            (Err(log), Err(said)) => {
                assert!(log.contains(said), "{url}: the error says {said:?}:\n{log}")
            }
            (Ok((_, _, log)), Err(said)) => {
                panic!("{url} served; it should fail with {said:?}:\n{log}")
            }
            (Err(log), Ok(_)) => panic!("{url} did not serve:\n{log}"),
        }
    }
    // Every connection slotgate made was encrypted: the server allows no other.
    let plain = crate::support::pg::connect(&cluster.url()).await;
    assert!(
        plain.is_err(),
        "plain TCP connections are refused by the server"
    );
}
