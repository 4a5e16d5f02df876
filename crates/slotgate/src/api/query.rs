//! Query strings: each operation's parameters as one typed struct, which is
//! also what the OpenAPI document declares (`IntoParams`), read by
//! [`ApiQuery`]; a parameter the struct does not declare is refused.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use slotgate_api::number::{self, MAX_WHOLE};
use slotgate_api::{limits, CallState};
use utoipa::openapi::path::ParameterIn;
use utoipa::IntoParams;

use super::error::ApiError;
use super::extract::in_api_words;
use crate::service::Page;

/// The query of an operation, as `T`. A parameter `T` does not declare, or
/// a value out of its range, is 400 `invalid_request` naming it.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + IntoParams> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default().as_bytes();
        let pairs = || form_urlencoded::parse(query);
        let known: Vec<String> = T::into_params(|| Some(ParameterIn::Query))
            .into_iter()
            .map(|p| p.name)
            .collect();
        if let Some((name, _)) = pairs().find(|(k, _)| !known.iter().any(|n| n == k)) {
            let takes = if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            };
            return Err(ApiError::invalid(
                &name,
                format!("unknown parameter; this endpoint takes {takes}"),
            ));
        }
        let de = serde_urlencoded::Deserializer::new(pairs());
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let name = e.path().to_string();
                let sent = pairs().find(|(k, _)| *k == name).map(|(_, v)| v);
                let message = in_api_words(e.inner());
                match sent {
                    // serde's own words ("invalid digit found in string") do not say what was sent.
                    Some(v) if !message.contains("got ") => {
                        ApiError::invalid(&name, format!("{message} (got {v:?})"))
                    }
                    _ => ApiError::invalid(&name, message),
                }
            })
    }
}

/// The page of a list: `limit` and `cursor`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1 to 10000 (default 1000).
    #[serde(
        default,
        deserialize_with = "number::whole_text_opt::<_, _, 1, { limits::MAX_PAGE_SIZE as u64 }>"
    )]
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<usize>,
    /// Where to start: the `next_cursor` of the previous page.
    #[serde(default, deserialize_with = "cursor")]
    #[param(value_type = Option<String>, pattern = r"^[0-9]{1,18}$")]
    cursor: Option<usize>,
}

impl PageQuery {
    /// The page asked for.
    pub fn page(&self) -> Page {
        Page {
            limit: self.limit.unwrap_or(limits::DEFAULT_PAGE_SIZE),
            offset: self.cursor.unwrap_or(0),
        }
    }
}

/// A cursor: the digits of a position, at most 18 of them.
fn cursor<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    let Some(text) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    let digits = (1..=18).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<usize>() {
        Ok(v) if digits => Ok(Some(v)),
        _ => Err(serde::de::Error::custom(format!(
            "must be the next_cursor of a page (1 to 18 digits), got {text:?}"
        ))),
    }
}

/// The states a call list filters by (ended calls are not listed).
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListedState {
    /// Holding a slot.
    Active,
    /// Waiting for one.
    Queued,
}

impl From<ListedState> for CallState {
    fn from(s: ListedState) -> Self {
        match s {
            ListedState::Active => CallState::Active,
            ListedState::Queued => CallState::Queued,
        }
    }
}

/// `GET /v1/orgs/{org}/calls`: which live calls, and the page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallListQuery {
    /// Only active or only queued calls (ended calls are not listed).
    #[serde(default)]
    #[param(inline)]
    pub state: Option<ListedState>,
    /// Only this agent's calls.
    #[serde(default)]
    #[param(pattern = r"^[A-Za-z0-9._:-]{1,128}$")]
    pub agent: Option<String>,
    /// Page size, 1 to 10000 (default 1000).
    #[serde(
        default,
        deserialize_with = "number::whole_text_opt::<_, _, 1, { limits::MAX_PAGE_SIZE as u64 }>"
    )]
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<usize>,
    /// Where to start: the `next_cursor` of the previous page.
    #[serde(default, deserialize_with = "cursor")]
    #[param(value_type = Option<String>, pattern = r"^[0-9]{1,18}$")]
    cursor: Option<usize>,
}

impl CallListQuery {
    /// The page asked for.
    pub fn page(&self) -> Page {
        PageQuery {
            limit: self.limit,
            cursor: self.cursor,
        }
        .page()
    }
}

/// `GET /v1/orgs/{org}/calls/{id}`: how long to wait while the call is queued.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Block up to this many seconds while queued (default 0).
    #[serde(default)]
    #[param(minimum = 0, maximum = 60)]
    pub wait_s: Option<f64>,
}

/// `GET /v1/orgs/{org}/events`: events after a seq, a page of them, and a long-poll.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Return events with a larger seq (default 0).
    #[serde(
        default,
        deserialize_with = "number::whole_text_opt::<_, _, 0, MAX_WHOLE>"
    )]
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    pub after: Option<u64>,
    /// At most this many, 1 to 10000 (default 1000).
    #[serde(
        default,
        deserialize_with = "number::whole_text_opt::<_, _, 1, { limits::MAX_PAGE_SIZE as u64 }>"
    )]
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<usize>,
    /// Long-poll up to this many seconds when none are newer (default 0).
    #[serde(default)]
    #[param(minimum = 0, maximum = 60)]
    pub wait_s: Option<f64>,
}

/// `GET /v1/plan-events`: plan events after a seq, a page of them.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlanEventsQuery {
    /// Return events with a larger seq (default 0).
    #[serde(
        default,
        deserialize_with = "number::whole_text_opt::<_, _, 0, MAX_WHOLE>"
    )]
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    pub after: Option<u64>,
    /// At most this many, 1 to 10000 (default 1000).
    #[serde(
        default,
        deserialize_with = "number::whole_text_opt::<_, _, 1, { limits::MAX_PAGE_SIZE as u64 }>"
    )]
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<usize>,
}

/// `GET /v1/orgs/{org}/events/stream`: where to start.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Replay events with a larger seq first (or send `Last-Event-ID`).
    #[serde(
        default,
        deserialize_with = "number::whole_text_opt::<_, _, 0, MAX_WHOLE>"
    )]
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    pub after: Option<u64>,
}

/// `GET /v1/orgs/{org}/traffic`: the window observed, and the time of its service levels.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrafficQuery {
    /// How far back: a whole number of ms, s, m, h or d, e.g. 7d, 12h, 90s
    /// (default 7d; one past 400d is 400d).
    #[serde(default)]
    #[param(pattern = r"^[1-9][0-9]{0,9}(ms|s|m|h|d)$")]
    pub window: Option<String>,
    /// Service levels count calls admitted within this many seconds (default 20).
    #[serde(default)]
    #[param(minimum = 0, maximum = 604800)]
    pub within_s: Option<f64>,
}
