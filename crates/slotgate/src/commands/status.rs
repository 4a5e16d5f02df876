//! `slotgate status`: an org's concurrency bar and its agents, in the
//! terminal; `--watch` redraws it, and keeps trying while the server is away.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::Duration;

use slotgate_client::{CallType, Client, Org};

use super::output::{emit, explain, line, Failure};

const COLORS: [u8; 6] = [34, 35, 32, 36, 33, 31];

/// How status is drawn: width in columns, colour, JSON.
#[derive(Debug, Clone, Copy)]
pub struct Look {
    /// Columns to fit in.
    pub width: usize,
    /// ANSI colours (only on a terminal).
    pub color: bool,
}

impl Look {
    /// Fits the terminal on stdout; plain 80 columns when stdout is not one.
    pub fn of_stdout() -> Look {
        let terminal = std::io::stdout().is_terminal();
        let width = terminal_size::terminal_size()
            .map_or(80, |(w, _)| usize::from(w.0))
            .clamp(20, 200);
        Look {
            width,
            color: terminal && std::env::var_os("NO_COLOR").is_none(),
        }
    }
}

/// Prints the org once, or with `watch` every 2 s until interrupted: on a
/// terminal the screen is redrawn; in a pipe each frame follows the last
/// (with `--json`, one JSON document per line). While the server is away it
/// says so and keeps trying, as `watch` does.
pub async fn run(
    client: &Client,
    org: &str,
    watch: bool,
    json: bool,
    url: &str,
) -> Result<(), Failure> {
    let terminal = std::io::stdout().is_terminal();
    loop {
        let look = Look::of_stdout();
        match client.org(org).await {
            Ok(o) if !watch => return emit(json, &o, || render(&o, look)),
            Ok(o) if json => line(&serde_json::to_string(&o).expect("an org serializes"))?,
            Ok(o) if terminal => line(&format!(
                "\x1b[2J\x1b[H{}\n\n(updating every 2 s; Ctrl-C to stop)",
                render(&o, look)
            ))?,
            Ok(o) => line(&format!("{}\n", render(&o, look)))?,
            Err(e) if watch && e.is_transient() => {
                let f = Failure::Client(e);
                eprintln!("{}; retrying in 2 s", explain(&f, url, None));
            }
            Err(e) => return Err(e.into()),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The org as text: its numbers, the concurrency bar, its legend and a table
/// of agents. Every pair of numbers reads "N of M".
pub fn render(o: &Org, look: Look) -> String {
    let mut t = format!(
        "{}  limit {} · reserved {} · shared {} · active {} · queued {}\n",
        o.id, o.limit, o.reserved, o.shared, o.active, o.queued
    );
    // One segment per agent with a reservation, then shared; a letter or '#' in use, '.' free.
    let bar_width = look.width.saturating_sub(2).clamp(10, 60);
    let reserved: Vec<_> = o.agents.iter().filter(|a| a.reserved_total > 0).collect();
    let width = |slots: u32| {
        if o.limit == 0 {
            0
        } else {
            (slots as usize * bar_width).div_ceil(o.limit as usize)
        }
    };
    let paint = |s: &str, i: usize| {
        if look.color {
            format!("\x1b[{}m{s}\x1b[0m", COLORS[i % COLORS.len()])
        } else {
            s.to_string()
        }
    };
    let mut bar = String::from("[");
    let mut legend = Vec::new();
    for (i, a) in reserved.iter().enumerate() {
        let w = width(a.reserved_total).max(1);
        let used = (a.reserved_in_use as usize * w)
            .div_ceil(a.reserved_total.max(1) as usize)
            .min(w);
        let mark = (b'A' + (i % 26) as u8) as char;
        bar.push_str(&paint(
            &format!("{}{}", mark.to_string().repeat(used), ".".repeat(w - used)),
            i,
        ));
        bar.push('|');
        legend.push(format!(
            "{mark} {}: {} of {} reserved in use",
            a.id, a.reserved_in_use, a.reserved_total
        ));
    }
    let w = width(o.shared);
    let used = if o.shared == 0 {
        0
    } else {
        (o.shared_in_use.min(o.shared) as usize * w)
            .div_ceil(o.shared as usize)
            .min(w)
    };
    bar.push_str(&format!("{}{}]", "#".repeat(used), ".".repeat(w - used)));
    legend.push(format!(
        "# shared: {} of {} in use",
        o.shared_in_use, o.shared
    ));
    let _ = writeln!(t, "{bar}");
    for l in legend {
        let _ = writeln!(t, "{l}");
    }
    // One row per agent and call type that has anything: narrow, and no number means two things.
    let name = (look.width.saturating_sub(30)).clamp(8, 24);
    let _ = write!(
        t,
        "\n{:<name$} {:<8} {:>8} {:>6} {:>6}",
        "AGENT", "TYPE", "RESERVED", "ACTIVE", "QUEUED"
    );
    for a in &o.agents {
        for ty in CallType::ALL {
            let (r, n, q) = (a.reserved.get(ty), a.active.get(ty), a.queued.get(ty));
            if r + n + q > 0 {
                let _ = write!(
                    t,
                    "\n{:<name$} {:<8} {r:>8} {n:>6} {q:>6}",
                    clip(&a.id, name),
                    ty.as_str()
                );
            }
        }
    }
    t
}

/// `s` in at most `n` characters, with `…` when cut.
fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(n - 1).collect();
        c.push('…');
        c
    }
}
