//! What the client subcommands print, and how they fail: text for people,
//! JSON for scripts (`--json`), the API's error object on failure, and a
//! quiet exit when the reader of stdout goes away (`| head`).

use std::fmt::Write as _;
use std::io::{self, Write as _};

use serde::Serialize;
use slotgate_api::{ApiError, ErrorCode};

/// Where a client subcommand's key came from, to say so when it is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// `--key`.
    Flag,
    /// `SLOTGATE_KEY`.
    Env,
    /// `./slotgate-data/operator.key`.
    File,
}

impl KeySource {
    fn describe(self) -> &'static str {
        match self {
            KeySource::Flag => "the key given with --key",
            KeySource::Env => "the key in SLOTGATE_KEY",
            KeySource::File => "the operator key in ./slotgate-data/operator.key",
        }
    }
}

/// Why a client subcommand failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The server refused, or could not be reached.
    #[error("{0}")]
    Client(#[from] slotgate_client::Error),
    /// `acquire` named a call that has ended: it holds no slot, and its id
    /// cannot start another call.
    #[error("{}", ended_text(.0))]
    CallEnded(Box<slotgate_client::Call>),
    /// Nothing to say on stdout any more: its reader is gone.
    #[error("stdout closed")]
    StdoutClosed,
    /// Anything else, in words.
    #[error("{0}")]
    Other(String),
}

/// Why an acquire of an ended call got no slot.
fn ended_text(call: &slotgate_client::Call) -> String {
    format!(
        "call {} has already ended ({}{}), so it holds no slot; an ended call's id cannot start another call: acquire with a new --id",
        call.id,
        call.end_reason.map_or("?", |r| r.as_str()),
        call.ended_at
            .as_deref()
            .map_or(String::new(), |t| format!(" at {t}"))
    )
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Failure::StdoutClosed
        } else {
            Failure::Other(format!("writing to stdout: {e}"))
        }
    }
}

/// Writes one result: `value` as JSON with `--json`, else `human`'s text.
/// A reader that went away (`| head`) is [`Failure::StdoutClosed`], not a panic.
pub fn emit<T: Serialize>(
    json: bool,
    value: &T,
    human: impl FnOnce() -> String,
) -> Result<(), Failure> {
    let text = if json {
        serde_json::to_string_pretty(value).expect("API values serialize")
    } else {
        human()
    };
    line(&text)
}

/// Writes `text` and a newline to stdout, now.
pub fn line(text: &str) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()?;
    Ok(())
}

/// "1 call", "2 calls".
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A queued call's expected wait (`estimated_wait_s`) for people: `~40 s`,
/// `~12 min`, `~2.5 h`; `not known yet` while the org has too little history.
pub fn wait_text(seconds: Option<f64>) -> String {
    match seconds {
        None => "not known yet".into(),
        Some(s) if s < 1.0 => "<1 s".into(),
        Some(s) if s < 90.0 => format!("~{} s", s.round()),
        Some(s) if s < 90.0 * 60.0 => format!("~{} min", (s / 60.0).round()),
        Some(s) => format!("~{:.1} h", s / 3600.0),
    }
}

/// The failure as the API's error object (for `--json`): refusals as the
/// server sent them, other failures with a code of their own.
pub fn error_json(f: &Failure, url: &str) -> String {
    let error = match f {
        Failure::Client(e) => match e.api() {
            Some(api) => api.clone(),
            None => ApiError::new(ErrorCode::Unknown, explain(f, url, None)),
        },
        Failure::CallEnded(call) => ApiError {
            call: Some(call.clone()),
            ..ApiError::new(ErrorCode::CallEnded, f.to_string())
        },
        _ => ApiError::new(ErrorCode::Unknown, f.to_string()),
    };
    serde_json::to_string(&slotgate_api::ErrorBody { error }).expect("errors serialize")
}

/// The failure in words: the server's message and code with its extras, or
/// why the server could not be reached; a refused key says which key it was.
pub fn explain(f: &Failure, url: &str, key: Option<KeySource>) -> String {
    let Failure::Client(e) = f else {
        return f.to_string();
    };
    match e {
        slotgate_client::Error::Api { error: a, .. } => {
            if a.code == ErrorCode::Unauthorized {
                let which = key.map_or("the key", KeySource::describe);
                return format!(
                    "{which} is not accepted by {url} (unauthorized): check the key, or pass another with --key or SLOTGATE_KEY"
                );
            }
            let mut s = format!("{} ({})", a.message, a.code);
            if let Some(n) = a.available {
                let _ = write!(s, "; available: {n}");
            }
            if let Some(n) = a.reserved {
                let _ = write!(s, "; reserved: {n}");
            }
            if let Some(n) = a.cap {
                let _ = write!(s, "; queue cap: {n}");
            }
            if let Some(reason) = a.blocked {
                let _ = write!(s, "; blocked: {reason}");
            }
            s
        }
        slotgate_client::Error::Transport(t) => {
            let mut s = format!("cannot reach slotgate at {url}: {t}");
            let mut cause = std::error::Error::source(t);
            while let Some(c) = cause {
                let _ = write!(s, ": {c}");
                cause = c.source();
            }
            s
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_waits_read_in_a_fitting_unit() {
        let cases = [
            (None, "not known yet"),
            (Some(0.4), "<1 s"),
            (Some(40.4), "~40 s"),
            (Some(89.0), "~89 s"),
            (Some(700.0), "~12 min"),
            (Some(9000.0), "~2.5 h"),
        ];
        for (s, want) in cases {
            assert_eq!(wait_text(s), want, "{s:?}");
        }
    }
}
