//! Partitions, not only kills (issue 21): three replicas of the real binary,
//! each in a network namespace of its own, on a PostgreSQL cluster in the
//! test's namespace, with clients acquiring and releasing through all three
//! while the network is cut and healed:
//!
//! - the leader cut from the database (its connection silently dead, not
//!   closed): another replica leads within the lease, the old one answers
//!   503 meanwhile (nothing from stale memory), and follows once healed;
//! - a follower cut from the leader (it still reaches the database and its
//!   clients): it answers 503 and does not take over; once healed it
//!   forwards again.
//!
//! Throughout: every refusal is 503 `store_unavailable`, no acknowledged
//! change is lost, and the event log never shows a call admitted twice or
//! more calls active than the limit. The test prints how long the service
//! took to come back after each heal.
//!
//! The network, made with iproute2 alone (`ip netns`, veth pairs, bridges;
//! addresses of 198.18.0.0/15, the range kept for such tests), is three
//! bridges in the test's namespace, each replica having one port on each:
//! the clients' (the test reaches the replicas there), the replicas' own
//! (their `--advertise-url`s) and the database's (the cluster listens there
//! too). A cut sets the replica's port of one bridge down: its packets are
//! dropped, and nobody is told. Where namespaces cannot be made (not root,
//! no `ip`), the test says so and runs the loopback-only variant instead:
//! the leader's database connection frozen (`SIGSTOP` of its PostgreSQL
//! backend), and a follower whose leader stops answering (`SIGSTOP` of the
//! leader).

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::pg::PgCluster;
use crate::support::{Answer, OPERATOR_KEY};
use reqwest::Method;
use serde_json::json;
use slotgate_api::{Call, CallState, ErrorCode, EventKind};

/// The leader's lease (`replication/lease.rs`): another replica may take over
/// when it was not renewed for this long.
const LEASE: Duration = Duration::from_secs(5);

/// The bound on waits for the service: the lease twice over, for a busy
/// machine. What it took is printed.
const BOUND: Duration = Duration::from_secs(30);

/// The org's limit: small, so the clients contend for slots and a slot
/// granted twice would show.
const LIMIT: usize = 2;

/// The three networks each replica has a port on.
#[derive(Debug, Clone, Copy)]
enum Link {
    /// Where the clients (the test) reach the replicas.
    Clients,
    /// Where the replicas reach each other (their `--advertise-url`s).
    Replicas,
    /// Where the replicas reach the database.
    Database,
}

impl Link {
    const ALL: [Link; 3] = [Link::Clients, Link::Replicas, Link::Database];

    /// Its letter in interface names, and its /26 in the run's /24.
    fn letter(self) -> char {
        match self {
            Link::Clients => 'c',
            Link::Replicas => 'r',
            Link::Database => 'd',
        }
    }

    fn base(self) -> u8 {
        match self {
            Link::Clients => 0,
            Link::Replicas => 64,
            Link::Database => 128,
        }
    }
}

/// The test's network namespaces, bridges and veth pairs; all removed on
/// drop, a panic included.
struct Net {
    /// The run's /24 of 198.18.0.0/15, e.g. `198.18.7`: from the process
    /// id, so that runs side by side do not meet.
    prefix: String,
    /// Unique to this run, in every name: `s` and the process id.
    tag: String,
    /// One per replica.
    namespaces: Vec<String>,
    /// The bridges made so far.
    bridges: Vec<String>,
}

impl Net {
    /// Namespaces for `n` replicas, each with a port on the three bridges;
    /// `Err` says why namespaces cannot be made here. Once the first is
    /// made, any failure is the test's, and panics (what was made is
    /// removed on drop).
    fn make(n: usize) -> Result<Net, String> {
        let pid = std::process::id();
        let mut net = Net {
            prefix: format!("198.{}.{}", 18 + (pid >> 8) % 2, pid % 256),
            tag: format!("s{pid}"),
            namespaces: Vec::new(),
            bridges: Vec::new(),
        };
        let first = format!("{}n0", net.tag);
        ip(&["netns", "add", &first])?;
        net.namespaces.push(first);
        let must = |args: &[&str]| ip(args).unwrap_or_else(|e| panic!("{e}"));
        for link in Link::ALL {
            let bridge = net.bridge(link);
            must(&["link", "add", "name", &bridge, "type", "bridge"]);
            net.bridges.push(bridge.clone());
            must(&["link", "set", "dev", &bridge, "up"]);
            // The test's own address on the clients' and the database's
            // networks; none on the replicas' own.
            if !matches!(link, Link::Replicas) {
                must(&["addr", "add", &net.addr(link, 1, 26), "dev", &bridge]);
            }
        }
        for i in 0..n {
            let ns = format!("{}n{i}", net.tag);
            if i > 0 {
                must(&["netns", "add", &ns]);
                net.namespaces.push(ns.clone());
            }
            must(&["-n", &ns, "link", "set", "dev", "lo", "up"]);
            for link in Link::ALL {
                let (outer, inner) = (net.port(i, link), format!("veth-{}", link.letter()));
                must(&[
                    "link", "add", "name", &outer, "type", "veth", "peer", "name", &inner, "netns",
                    &ns,
                ]);
                must(&[
                    "link",
                    "set",
                    "dev",
                    &outer,
                    "master",
                    &net.bridge(link),
                    "up",
                ]);
                let addr = net.addr(link, Net::host(i), 26);
                must(&["-n", &ns, "addr", "add", &addr, "dev", &inner]);
                must(&["-n", &ns, "link", "set", "dev", &inner, "up"]);
            }
        }
        Ok(net)
    }

    /// Replica `i`'s host number on every network.
    fn host(i: usize) -> u8 {
        10 + i as u8
    }

    /// `PREFIX.(BASE+host)/bits` of `link`'s network.
    fn addr(&self, link: Link, host: u8, bits: u8) -> String {
        format!("{}.{}/{bits}", self.prefix, link.base() + host)
    }

    /// Replica `i`'s address on `link`'s network.
    fn ip_of(&self, i: usize, link: Link) -> String {
        format!("{}.{}", self.prefix, link.base() + Net::host(i))
    }

    /// The test's own address on `link`'s network.
    fn own_ip(&self, link: Link) -> String {
        format!("{}.{}", self.prefix, link.base() + 1)
    }

    fn bridge(&self, link: Link) -> String {
        format!("{}{}b", self.tag, link.letter())
    }

    /// Replica `i`'s port on `link`'s bridge (in the test's namespace).
    fn port(&self, i: usize, link: Link) -> String {
        format!("{}{}{i}", self.tag, link.letter())
    }

    /// Cuts replica `i` from `link`'s network: its packets there are
    /// dropped, and nobody is told.
    fn cut(&self, i: usize, link: Link) {
        ip(&["link", "set", "dev", &self.port(i, link), "down"]).expect("a link set down");
    }

    /// Undoes [`Net::cut`].
    fn heal(&self, i: usize, link: Link) {
        ip(&["link", "set", "dev", &self.port(i, link), "up"]).expect("a link set up");
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // The veth pairs first: a namespace outlives its name while a socket
        // of it still retransmits over a cut link, and keeps its pairs.
        for i in 0..self.namespaces.len() {
            for link in Link::ALL {
                let _ = ip(&["link", "del", "dev", &self.port(i, link)]);
            }
        }
        for ns in &self.namespaces {
            let _ = ip(&["netns", "del", ns]);
        }
        for bridge in &self.bridges {
            let _ = ip(&["link", "del", "dev", bridge]);
        }
    }
}

/// `ip ARGS`; `Err` with what it said when it fails.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip does not run: {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// A replica: the real binary, in its namespace or not.
struct Replica {
    child: tokio::process::Child,
    /// Where the test reaches it.
    base: String,
    log: Arc<std::sync::Mutex<String>>,
}

impl Replica {
    /// Starts `slotgate serve --store STORE` listening on `listen`,
    /// advertised at `advertise`, under `ns` (a network namespace) if given;
    /// the test reaches it at `host` and the port it listens on.
    async fn start(
        ns: Option<&str>,
        dir: &std::path::Path,
        store: &str,
        (listen, advertise): (&str, &str),
        host: &str,
    ) -> Replica {
        let mut serve = crate::support::serve_command(listen, dir);
        serve.args(["--store", store, "--advertise-url", advertise]);
        let command = match ns {
            Some(ns) => crate::support::wrapped(&serve, "ip", &["netns", "exec", ns]),
            None => serve,
        };
        let (child, port, log) = crate::support::spawn_ready(command).await;
        Replica {
            child,
            base: format!("http://{host}:{port}"),
            log,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("the replica runs")
    }
}

/// The replicas and a client of theirs.
struct Replicas {
    r: Vec<Replica>,
    http: reqwest::Client,
}

impl Replicas {
    async fn send(&self, i: usize, method: Method, path: &str, body: Option<String>) -> Sent {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.r[i].base))
            .bearer_auth(OPERATOR_KEY);
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        match req.send().await {
            Ok(resp) => match Answer::read(resp).await {
                Ok(a) => Sent::Answered(a),
                Err(e) => Sent::NoAnswer(slotgate::tls::with_causes(&e)),
            },
            Err(e) => Sent::NoAnswer(slotgate::tls::with_causes(&e)),
        }
    }

    /// `/healthz` of replica `i`: its status (0 for no answer) and text.
    async fn healthz(&self, i: usize) -> (u16, String) {
        let url = format!("{}/healthz", self.r[i].base);
        match self.http.get(url).send().await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    }

    /// The replica whose `/healthz` says it leads, once all the others
    /// say they forward to it, within [`BOUND`].
    async fn leader(&self) -> usize {
        let asked = Instant::now();
        loop {
            let mut said = Vec::new();
            for i in 0..self.r.len() {
                said.push(self.healthz(i).await);
            }
            let leads = said.iter().position(|h| h.0 == 200 && h.1 == "ok\n");
            if let Some(l) = leads.filter(|_| said.iter().all(|h| h.0 == 200)) {
                return l;
            }
            assert!(asked.elapsed() < BOUND, "nobody leads: {said:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The replica other than `old` that says it leads, within [`BOUND`].
    async fn another_leads(&self, old: usize) -> usize {
        let from = Instant::now();
        loop {
            for i in (0..self.r.len()).filter(|i| *i != old) {
                if self.healthz(i).await == (200, "ok\n".to_string()) {
                    return i;
                }
            }
            assert!(
                from.elapsed() < BOUND,
                "nobody took over from replica {old}; the replicas' logs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every replica's log so far.
    fn logs(&self) -> String {
        let log = |(i, r): (usize, &Replica)| format!("-- replica {i}:\n{}", r.log.lock().unwrap());
        self.r.iter().enumerate().map(log).collect()
    }

    /// How long until replica `i` serves a read again (200), within [`BOUND`].
    async fn back(&self, i: usize) -> Duration {
        let from = Instant::now();
        loop {
            if let Sent::Answered(a) = self.send(i, Method::GET, "/v1/orgs/acme", None).await {
                if a.status == 200 {
                    return from.elapsed();
                }
                assert_refusal_ok(&a);
            }
            assert!(
                from.elapsed() < BOUND,
                "replica {i} did not serve again within {BOUND:?}; its log:\n{}",
                self.r[i].log.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// What a request got.
enum Sent {
    Answered(Answer),
    /// The connection failed or the answer took longer than the client's timeout.
    NoAnswer(String),
}

/// The only refusal a replica may give while the network is cut.
#[track_caller]
fn assert_refusal_ok(a: &Answer) {
    assert_eq!(a.status, 503, "a refusal other than 503: {a}");
    assert_eq!(a.refusal().1, ErrorCode::StoreUnavailable, "{a}");
}

/// What the clients saw.
#[derive(Default, Debug)]
struct Seen {
    /// Calls acknowledged as admitted (201, or 200 active on a retry).
    admitted: Vec<String>,
    /// Every call id sent.
    sent: Vec<String>,
    /// Calls whose release was acknowledged (200).
    released: Vec<String>,
    /// Refusals (all 503 `store_unavailable`).
    refused: usize,
    /// Requests with no answer: which replica, what, and why.
    no_answer: Vec<String>,
}

/// Sends a request to one replica after another, from `turn` on, until one
/// answers other than 503; every refusal must be 503 `store_unavailable`.
async fn until_answered(
    r: &Replicas,
    turn: &mut usize,
    seen: &mut Seen,
    method: Method,
    path: &str,
    body: Option<String>,
) -> Answer {
    let from = Instant::now();
    loop {
        let i = *turn % r.r.len();
        *turn += 1;
        match r.send(i, method.clone(), path, body.clone()).await {
            Sent::Answered(a) if a.status == 503 => {
                assert_refusal_ok(&a);
                seen.refused += 1;
            }
            Sent::Answered(a) => return a,
            Sent::NoAnswer(e) => seen
                .no_answer
                .push(format!("replica {i}: {method} {path}: {e}")),
        }
        assert!(
            from.elapsed() < Duration::from_secs(120),
            "{method} {path}: no replica answered for two minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A client: acquires a new call through one replica after another; an
/// admitted one it releases, a queued one it cancels (also a release), each
/// request retried on the next replica while refused. Until `stop`.
async fn client(r: Arc<Replicas>, name: char, stop: Arc<AtomicBool>) -> Seen {
    let mut seen = Seen::default();
    let mut turn = name as usize;
    for n in 1.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let id = format!("{name}{n}");
        seen.sent.push(id.clone());
        let body = json!({"id": id, "agent": "A", "type": "chat", "lease_ttl_s": 600});
        let path = "/v1/orgs/acme/calls";
        let a = until_answered(
            &r,
            &mut turn,
            &mut seen,
            Method::POST,
            path,
            Some(body.to_string()),
        )
        .await;
        assert!(a.status == 201 || a.status == 202 || a.status == 200, "{a}");
        if a.json::<Call>().state == CallState::Active {
            seen.admitted.push(id.clone());
        }
        let path = format!("/v1/orgs/acme/calls/{id}");
        let a = until_answered(&r, &mut turn, &mut seen, Method::DELETE, &path, None).await;
        assert_eq!(a.status, 200, "{a}");
        seen.released.push(id);
    }
    seen
}

/// Three clients running [`client`] through the replicas.
struct Clients {
    stop: Arc<AtomicBool>,
    running: Vec<tokio::task::JoinHandle<Seen>>,
}

impl Clients {
    /// Creates the org through the replica that leads (returned), and
    /// starts the clients; returns once they have run a second.
    async fn start(r: &Arc<Replicas>) -> (usize, Clients) {
        let first = r.leader().await;
        create_org(r, first).await;
        let stop = Arc::new(AtomicBool::new(false));
        let running = ['x', 'y', 'z']
            .into_iter()
            .map(|name| tokio::spawn(client(r.clone(), name, stop.clone())))
            .collect();
        tokio::time::sleep(Duration::from_secs(1)).await;
        (first, Clients { stop, running })
    }

    /// Lets them run a second more, stops them and returns what they saw.
    async fn finish(self) -> Vec<Seen> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.stop.store(true, Ordering::SeqCst);
        let mut seen = Vec::new();
        for c in self.running {
            seen.push(c.await.expect("a client ran"));
        }
        seen
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_lose_nothing_grant_nothing_twice_and_heal_within_the_lease() {
    match Net::make(3) {
        Ok(net) => in_namespaces(net).await,
        Err(why) => {
            eprintln!(
                "partitions: network namespaces cannot be made here ({why}); \
                 running the loopback-only variant instead (SIGSTOP for the cuts)"
            );
            on_loopback().await;
        }
    }
}

/// Three replicas in namespaces of their own: the leader cut from the
/// database, then a follower from the leader, each healed.
async fn in_namespaces(net: Net) {
    eprintln!(
        "partitions: replicas in network namespaces {:?}",
        net.namespaces
    );
    let db = PgCluster::start().await;
    db.listen_also(
        &net.own_ip(Link::Database),
        &net.addr(Link::Database, 0, 26),
    );
    let store = format!(
        "postgres://postgres@{}:{}/{}",
        net.own_ip(Link::Database),
        db.port,
        crate::support::pg::DATABASE
    );
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut r = Vec::new();
    for (i, ns) in net.namespaces.iter().enumerate() {
        let advertise = format!("http://{}:7878", net.ip_of(i, Link::Replicas));
        let host = net.ip_of(i, Link::Clients);
        let addresses = ("0.0.0.0:7878", advertise.as_str());
        r.push(Replica::start(Some(ns), dirs[i].path(), &store, addresses, &host).await);
    }
    let r = Arc::new(Replicas {
        r,
        http: client_http(),
    });
    let (first, clients) = Clients::start(&r).await;

    // 1. The leader cut from the database: another leads within the lease,
    // and the old one answers nothing but 503 meanwhile.
    let cut = Instant::now();
    net.cut(first, Link::Database);
    let next = r.another_leads(first).await;
    eprintln!(
        "partitions: leader {first} cut from the database; replica {next} led {:?} later",
        cut.elapsed()
    );
    // A call acknowledged by the new leader is not one the old one knows:
    // it must not answer about it from memory.
    let body = json!({"id": "after-cut", "agent": "B", "type": "chat", "lease_ttl_s": 600});
    let a = until_answered(
        &r,
        &mut next.clone(),
        &mut Seen::default(),
        Method::POST,
        "/v1/orgs/acme/calls",
        Some(body.to_string()),
    )
    .await;
    assert!(a.status == 201 || a.status == 202, "{a}");
    for _ in 0..5 {
        match r
            .send(first, Method::GET, "/v1/orgs/acme/calls/after-cut", None)
            .await
        {
            Sent::Answered(a) => assert_refusal_ok(&a),
            Sent::NoAnswer(e) => panic!("the old leader answers its clients: {e}"),
        }
    }
    let (status, text) = r.healthz(first).await;
    assert_eq!(status, 503, "the old leader is not ready: {text}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    release(&r, next, "after-cut").await;
    net.heal(first, Link::Database);
    let back = r.back(first).await;
    eprintln!(
        "partitions: healed after {:?}; the old leader served again (forwarding) {back:?} later",
        cut.elapsed() - back
    );
    assert_eq!(r.leader().await, next, "the lead stays where it went");

    // 2. A follower cut from the leader: it answers 503 and does not take
    // over; healed, it forwards again.
    let follower = (0..3).find(|i| *i != next).expect("three replicas");
    let cut = Instant::now();
    net.cut(follower, Link::Replicas);
    let mut refused = 0;
    while cut.elapsed() < LEASE + Duration::from_secs(2) {
        match r.send(follower, Method::GET, "/v1/orgs/acme", None).await {
            Sent::Answered(a) if a.status == 503 => {
                assert_refusal_ok(&a);
                assert!(
                    a.to_string().contains(&net.ip_of(next, Link::Replicas)),
                    "names the leader: {a}"
                );
                refused += 1;
            }
            Sent::Answered(a) => assert_eq!(a.status, 200, "{a}"),
            Sent::NoAnswer(e) => panic!("the follower answers its clients: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(refused > 0, "the cut follower refused");
    let (status, text) = r.healthz(follower).await;
    assert_eq!(status, 503, "the cut follower is not ready: {text}");
    assert_eq!(
        r.healthz(next).await,
        (200, "ok\n".into()),
        "the leader still leads"
    );
    net.heal(follower, Link::Replicas);
    let back = r.back(follower).await;
    eprintln!("partitions: follower {follower} cut from the leader; healed, it served again {back:?} later");
    assert_eq!(r.leader().await, next);

    let seen = clients.finish().await;
    check(&r, next, &seen).await;
}

/// The loopback-only variant, where namespaces cannot be made: the leader
/// frozen (`SIGSTOP`) beyond its lease, as a leader cut from everything
/// would be, then thawed. A follower cut from a leader that still leads
/// needs the namespaces, and is not run.
async fn on_loopback() {
    let db = PgCluster::start().await;
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut r = Vec::new();
    for dir in &dirs {
        // Its own port, known in advance, for its --advertise-url.
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let listen = free.local_addr().unwrap().to_string();
        drop(free);
        let advertise = format!("http://{listen}");
        let addresses = (listen.as_str(), advertise.as_str());
        r.push(Replica::start(None, dir.path(), &db.url(), addresses, "127.0.0.1").await);
    }
    let r = Arc::new(Replicas {
        r,
        http: client_http(),
    });
    let (first, clients) = Clients::start(&r).await;

    let pid = r.r[first].pid().to_string();
    let signal = |sig: &str| {
        let ok = Command::new("kill").args([sig, &pid]).status();
        assert!(ok.expect("kill runs").success(), "kill {sig} {pid}");
    };
    signal("-STOP");
    let next = r.another_leads(first).await;
    signal("-CONT");
    let back = r.back(first).await;
    eprintln!(
        "partitions (loopback): leader {first} frozen, replica {next} took over; \
         thawed, the old leader served again {back:?} later"
    );
    let seen = clients.finish().await;
    check(&r, next, &seen).await;
}

/// A reqwest client for the replicas: a bound on every request, so a cut
/// connection counts as no answer rather than hanging the test.
fn client_http() -> reqwest::Client {
    crate::support::http_builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("an HTTP client")
}

async fn create_org(r: &Replicas, leader: usize) {
    let body = json!({"id": "acme", "limit": LIMIT}).to_string();
    match r.send(leader, Method::POST, "/v1/orgs", Some(body)).await {
        Sent::Answered(a) => assert_eq!(a.status, 201, "{a}"),
        Sent::NoAnswer(e) => panic!("creating the org: {e}"),
    }
}

/// Releases call `id` through replica `i` and the others.
async fn release(r: &Replicas, i: usize, id: &str) {
    let path = format!("/v1/orgs/acme/calls/{id}");
    let a = until_answered(
        r,
        &mut i.clone(),
        &mut Seen::default(),
        Method::DELETE,
        &path,
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{a}");
}

/// Every event of the org, oldest first, read through replica `i`.
async fn events(r: &Replicas, i: usize) -> Vec<slotgate_api::Event> {
    let (mut all, mut after) = (Vec::new(), 0);
    loop {
        let path = format!("/v1/orgs/acme/events?after={after}&limit=1000");
        let page = match r.send(i, Method::GET, &path, None).await {
            Sent::Answered(a) => a.ok(200).json::<slotgate_api::EventPage>(),
            Sent::NoAnswer(e) => panic!("reading the events: {e}"),
        };
        if page.events.is_empty() {
            return all;
        }
        after = page.next;
        all.extend(page.events);
    }
}

/// What the clients saw against the event log the leader kept: every
/// acknowledged admission and release is there, no call was admitted
/// twice, never more than [`LIMIT`] at once, and none was made up.
async fn check(r: &Replicas, leader: usize, seen: &[Seen]) {
    let log = events(r, leader).await;
    let mut admitted = std::collections::BTreeSet::new();
    let mut ended = std::collections::BTreeSet::new();
    let mut active = 0usize;
    for e in &log {
        match &e.kind {
            EventKind::CallAdmitted { call, .. } => {
                assert!(
                    admitted.insert(call.clone()),
                    "{call} admitted twice: {e:?}"
                );
                active += 1;
                assert!(
                    active <= LIMIT,
                    "more than {LIMIT} active at event {}",
                    e.seq
                );
            }
            EventKind::CallEnded { call, .. } => {
                assert!(ended.insert(call.clone()), "{call} ended twice");
                if admitted.contains(call) {
                    active -= 1;
                }
            }
            _ => {}
        }
    }
    let sent: std::collections::BTreeSet<&String> = seen.iter().flat_map(|s| &s.sent).collect();
    for call in admitted.iter().chain(&ended) {
        assert!(
            sent.contains(call) || call == "after-cut",
            "{call} was never sent"
        );
    }
    for s in seen {
        for id in &s.admitted {
            assert!(admitted.contains(id), "acknowledged admission of {id} lost");
        }
        for id in &s.released {
            assert!(ended.contains(id), "acknowledged release of {id} lost");
        }
    }
    let refused: usize = seen.iter().map(|s| s.refused).sum();
    let no_answer: Vec<&String> = seen.iter().flat_map(|s| &s.no_answer).collect();
    eprintln!(
        "partitions: {} calls sent, {} admitted, {} ended; {refused} refusals, all 503 store_unavailable, \
         and {} requests with no answer within 10 s, retried: {no_answer:?}",
        sent.len(),
        admitted.len(),
        ended.len(),
        no_answer.len()
    );
    assert!(admitted.len() > 10, "the clients got calls through");
}
