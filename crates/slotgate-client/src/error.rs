//! What can go wrong talking to slotgate.

pub use slotgate_api::{ApiError, ErrorCode};

use crate::Call;

/// A failed client call, said in words a person reads.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server refused: its code, message and extras (`available`, `call`, ...).
    #[error("the server refused (HTTP {status}): {error}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The refusal as the API reports it.
        error: ApiError,
    },
    /// The request did not complete: connection refused, reset, timed out.
    #[error("could not reach the server: {0}")]
    Transport(#[from] reqwest::Error),
    /// The CA file given to [`Client::with_ca_file`](crate::Client::with_ca_file)
    /// could not be read or holds no usable certificate.
    #[error("cannot use the CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The answer was not what the API promises.
    #[error("the server's answer is not what the API promises: {0}")]
    Decode(String),
    /// The call ended while waiting in the queue (e.g. `timed_out` after `max_wait_s`).
    #[error("the call ended while queued ({})", .0.end_reason.map_or("?", |r| r.as_str()))]
    EndedWhileQueued(Box<Call>),
    /// `acquire` waited longer than its `timeout`; the call was cancelled.
    #[error("no slot within the timeout; the queued call was cancelled")]
    Timeout,
}

impl Error {
    /// The API error, if the server refused.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The API's error code, if the server refused.
    pub fn code(&self) -> Option<ErrorCode> {
        self.api().map(|e| e.code)
    }

    /// Worth retrying the same request: the network failed or the server had
    /// a passing fault. Refusals (4xx) are permanent.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport(_) => true,
            Error::Api { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// The error for a refusal answered with `status` and `body`. A body that
    /// is not the API's error shape (a proxy's page) keeps its status and text.
    pub(crate) fn refusal(status: u16, body: &[u8]) -> Error {
        let error = match serde_json::from_slice::<slotgate_api::ErrorBody>(body) {
            Ok(b) => b.error,
            Err(_) => ApiError::new(
                ErrorCode::Unknown,
                String::from_utf8_lossy(body)
                    .chars()
                    .take(200)
                    .collect::<String>(),
            ),
        };
        Error::Api { status, error }
    }
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
