//! The lead, a row: `slotgate_leader` (migration 2) holds the term, the
//! leader's URL, the connection that last renewed it and when, by the
//! database's clock. Here: taking it (the election), renewing it, following
//! whoever holds it, and the database's clock every replica follows.
//!
//! The leader renews the row in every transaction it commits (`fence.rs`)
//! and at least once a second (`Leadership::renew`, which also reads the
//! database's clock: `crate::clock`). A follower reads the row every
//! `WATCH` and takes over, with `term + 1`, once the row is older than
//! [`LEASE`], or at once when the leader's process is gone (`gone`). The
//! leader stops answering from memory [`LEAD_VALID`] after its last renewal
//! was sent ([`Role::Leading`]'s `until`), before anyone may take over.

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::role::{Leader, Publisher, Role};
use crate::clock;
use crate::store::group_commit::Writer;
use crate::store::postgres::{err, open_writer, within, PING_TIMEOUT, RETRY};
use crate::store::write_loop::IDLE;
use crate::store::{Health, StoreError};

/// How long the leader's lead lasts without a renewal, by the database's
/// clock: another replica may take over after that.
pub const LEASE: Duration = Duration::from_secs(5);

/// How long after it sent its last renewal the leader still answers from
/// memory: well within [`LEASE`], so it stops before anyone may take over.
pub const LEAD_VALID: Duration = Duration::from_secs(3);

/// How often a follower reads the leader row, to take over as soon as the
/// leader is gone.
const WATCH: Duration = Duration::from_millis(100);

/// How long a follower waits for the leader's address to accept or refuse a
/// connection: a machine that answers nothing leaves the lead to [`LEASE`].
const GONE_PROBE: Duration = Duration::from_millis(300);

/// This replica, as the leader row names it.
#[derive(Debug, Clone)]
pub struct Replica {
    /// Unique to this process.
    pub id: String,
    /// Where the other replicas send requests while this one leads.
    pub url: String,
}

/// This replica's claim to lead, and how it renews it.
#[derive(Debug)]
pub(crate) struct Leadership {
    /// The database.
    url: String,
    me: Replica,
    /// The term this replica leads in, if it does.
    pub(crate) term: Option<i64>,
    /// Where its role is published.
    role: Publisher,
}

impl Leadership {
    /// This replica, on the database at `url`, not leading yet.
    pub(crate) fn new(url: &str, me: Replica) -> Self {
        Leadership {
            url: url.to_string(),
            me,
            term: None,
            role: Publisher::new(Role::Unknown),
        }
    }

    /// Its role, as it changes.
    pub(crate) fn role(&self) -> tokio::sync::watch::Receiver<Role> {
        self.role.subscribe()
    }

    /// At start: takes the lead if nobody holds it; else publishes whom it
    /// follows, and shuts `writer`'s gate (it commits nothing until it
    /// leads). The database works either way: its health stays `Up`.
    pub(crate) async fn start(&mut self, conn: &Client, writer: &Writer) -> Result<(), StoreError> {
        self.term = self.claim(conn, false).await?;
        if self.term.is_none() {
            let role = self.leader(conn).await?.role();
            let why = not_leading(&role);
            self.role.set(role);
            writer.stop(StoreError(why));
        }
        Ok(())
    }

    /// Takes the lead if its holder let it lapse ([`LEASE`]), or it is this
    /// replica, or the caller found the leader's process gone (`gone`, see
    /// [`gone`]) and its connection is still gone from `pg_stat_activity`:
    /// the new term. Serialised with the leader's transactions by the row
    /// lock; safe whatever the old leader still believes, since each of its
    /// commits checks the term (`fence.rs`).
    async fn claim(&self, conn: &Client, gone: bool) -> Result<Option<i64>, StoreError> {
        let sent = Instant::now();
        let row = conn
            .query_opt(
                "UPDATE slotgate_leader SET term = term + 1, holder = $1, url = $2, backend = pg_backend_pid(),
                     renewed_at = clock_timestamp()
                 WHERE id = 1 AND (holder = $1 OR renewed_at < clock_timestamp() - make_interval(secs => $3)
                     OR ($4 AND NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = slotgate_leader.backend)))
                 RETURNING term",
                &[&self.me.id, &self.me.url, &LEASE.as_secs_f64(), &gone],
            )
            .await
            .map_err(err)?;
        let term = row.map(|r| r.get::<_, i64>(0));
        if let Some(term) = term {
            self.renewed(term, sent);
        }
        Ok(term)
    }

    /// The leader row, as this replica sees it.
    async fn leader(&self, conn: &Client) -> Result<LeaderRow, StoreError> {
        let row = conn
            .query_one(
                "SELECT url, holder = $2, renewed_at >= clock_timestamp() - make_interval(secs => $1),
                     NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = slotgate_leader.backend), term
                 FROM slotgate_leader WHERE id = 1",
                &[&LEASE.as_secs_f64(), &self.me.id],
            )
            .await
            .map_err(err)?;
        Ok(LeaderRow {
            url: row.get(0),
            mine: row.get(1),
            current: row.get(2),
            disconnected: row.get(3),
            term: row.get(4),
        })
    }

    /// Renews the lead of `term`, and follows the database's clock; fails if
    /// another replica took over.
    pub(crate) async fn renew(&self, conn: &Client, term: i64) -> Result<(), StoreError> {
        let sent = Instant::now();
        let before = clock::system_ms();
        let row = conn
            .query_opt(
                "UPDATE slotgate_leader SET renewed_at = clock_timestamp(), backend = pg_backend_pid()
                 WHERE id = 1 AND term = $1
                 RETURNING (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
                &[&term],
            )
            .await
            .map_err(err)?
            .ok_or_else(|| StoreError("another replica took the lead".into()))?;
        clock::follow(row.get(0), before, clock::system_ms());
        self.renewed(term, sent);
        Ok(())
    }

    /// The lead of `term` was renewed by a statement sent at `sent`.
    pub(crate) fn renewed(&self, term: i64, sent: Instant) {
        self.role.set(Role::Leading {
            term,
            until: sent + LEAD_VALID,
        });
    }

    /// Gives up answering from memory: the lead may be another's.
    pub(crate) fn step_down(&mut self) {
        self.term = None;
        self.role.set(Role::Unknown);
    }

    /// Follows the leader until this replica can lead: connects (again)
    /// when needed, reads the leader row every [`WATCH`] and takes the lead
    /// when it is free, and publishes whom requests go to meanwhile.
    /// Returns the connection it leads on, once the service has reloaded
    /// from the database.
    pub(crate) async fn follow(&mut self, mut conn: Option<Client>, writer: &mut Writer) -> Client {
        loop {
            writer.drop_waiting();
            let role = match self.try_to_lead(&mut conn).await {
                Ok(None) => {
                    let term = self.term.expect("set by try_to_lead");
                    tracing::info!(
                        term,
                        "this replica leads; loading the state from the database"
                    );
                    let live = conn.as_ref().expect("set by try_to_lead");
                    // The database answered: if it had failed, it is back.
                    if writer.health() != Health::Up {
                        writer.announce(Health::Back);
                    }
                    if self.serve_after_reload(live, term, writer).await {
                        return conn.expect("set by try_to_lead");
                    }
                    self.step_down();
                    continue;
                }
                Ok(Some(role)) => Ok(role),
                Err(e) => {
                    conn = None;
                    Err(e)
                }
            };
            // Connected, it watches the row closely; else it retries the connection.
            let pause = if conn.is_some() { WATCH } else { RETRY };
            // A follower holds nothing to reload: its database is up as
            // soon as it answers.
            let health = match &role {
                Ok(_) => Health::Up,
                Err(e) => Health::Down(e.0.clone()),
            };
            let role = role.unwrap_or(Role::Unknown);
            if self.role.get() != role {
                match &role {
                    Role::Following(leader) => {
                        tracing::info!(leader = %leader.url, term = leader.term, "following the leading replica")
                    }
                    other => tracing::debug!(role = ?other, "not leading"),
                }
                self.role.set(role);
            }
            writer.announce(health);
            tokio::time::sleep(pause).await;
        }
    }

    /// Connects if needed and takes the lead if it is free (lapsed, this
    /// replica's, or its holder's process [`gone`]): `None` if this replica
    /// now leads, else the role it has (following the leader, if any).
    async fn try_to_lead(&mut self, conn: &mut Option<Client>) -> Result<Option<Role>, StoreError> {
        if conn.is_none() {
            *conn = Some(within(PING_TIMEOUT, open_writer(&self.url)).await?);
        }
        let live = conn.as_ref().expect("connected above");
        let row = within(PING_TIMEOUT, self.leader(live)).await?;
        let gone = row.current && row.disconnected && !row.url.is_empty() && gone(&row.url).await;
        if !row.current || row.mine || gone {
            if let Some(term) = within(PING_TIMEOUT, self.claim(live, gone)).await? {
                if gone {
                    tracing::info!(
                        leader = %row.url,
                        "the leading replica is gone (its connection to the database closed, and its address refuses connections): taking over"
                    );
                }
                self.term = Some(term);
                return Ok(None);
            }
            // Another replica took it first.
            return Ok(Some(within(PING_TIMEOUT, self.leader(live)).await?.role()));
        }
        Ok(Some(row.role()))
    }

    /// A new term: asks the service to reload (the group commit's
    /// `Gate::Reload`: the writer commits again once it has), renewing the
    /// lead meanwhile; whether it still leads once the service resumed.
    async fn serve_after_reload(&self, conn: &Client, term: i64, writer: &mut Writer) -> bool {
        writer.ask_reload();
        loop {
            if writer.resumed(IDLE).await {
                return true;
            }
            if let Err(e) = within(PING_TIMEOUT, self.renew(conn, term)).await {
                tracing::warn!(error = %e, "lost the lead while loading");
                // Whether the database failed, the next look at the
                // leader row says.
                writer.stop(e);
                return false;
            }
        }
    }
}

/// Why the writer commits nothing while this replica does not lead (its
/// writes would not be the leader's).
fn not_leading(role: &Role) -> String {
    match role.leader() {
        Some(leader) => format!("another replica leads ({}): requests go to it", leader.url),
        None => "no replica leads yet; one takes over within seconds".into(),
    }
}

/// The leader row as a follower reads it.
#[derive(Debug)]
struct LeaderRow {
    /// Where the leader serves; empty while `slotgate import` holds the
    /// lead, which serves nobody.
    url: String,
    /// Whether this replica holds it.
    mine: bool,
    /// Whether it was renewed within [`LEASE`].
    current: bool,
    /// Whether the connection that last renewed it is gone from
    /// `pg_stat_activity`.
    disconnected: bool,
    /// The leader's term, written with its URL when it took the lead.
    term: i64,
}

impl LeaderRow {
    /// The role to publish: [`Role::Following`] the leader's URL while its
    /// lead is current, else [`Role::Unknown`].
    fn role(&self) -> Role {
        if self.current && !self.url.is_empty() && !self.mine {
            Role::Following(Leader {
                url: self.url.clone(),
                term: self.term,
            })
        } else {
            Role::Unknown
        }
    }
}

/// Whether the leader's process is surely gone, given that its connection is
/// gone from the database: nothing listens at its advertised address any
/// more (its machine answers, and refuses the connection), so it answers
/// nobody from memory and another replica may take over at once. An address
/// that accepts (the process lives, and only its connection to the database
/// was lost: a transaction-pooling PgBouncer may also close the server
/// connection the leader last used), or a machine that answers nothing
/// within [`GONE_PROBE`], proves nothing: the lead then runs out ([`LEASE`]).
async fn gone(url: &str) -> bool {
    let Ok(uri) = url.parse::<axum::http::Uri>() else {
        return false;
    };
    let Some(host) = uri.host() else {
        return false;
    };
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    let probe = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port));
    matches!(
        tokio::time::timeout(GONE_PROBE, probe).await,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

/// Reads the database's clock, and makes it the server's
/// ([`clock::follow`]): every replica on the database reads one time.
pub(crate) async fn sync_clock(conn: &Client) -> Result<(), tokio_postgres::Error> {
    let sent = clock::system_ms();
    let row = conn
        .query_one(
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
            &[],
        )
        .await?;
    clock::follow(row.get(0), sent, clock::system_ms());
    Ok(())
}
