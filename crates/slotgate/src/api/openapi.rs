//! The OpenAPI document of `/v1/openapi.json`, generated from the routes
//! (`super::routes`, each with its handler's annotation) and the contract
//! crate's schemas, then completed here in one place with what every
//! operation shares: its path parameters (with the id
//! pattern), the errors every `/v1` operation may answer (each with the error
//! body), the bearer key, and the links a client (or schemathesis' stateful
//! phase) follows from a created resource to what can be done with it.
//! Each annotation declares only what is its own (201s, 409, 410, 429, ...).
//! It also says what JSON Schema can say and the annotations cannot: that a
//! plan or simulation takes `traffic` or `window`, not both.

use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::SchemaType;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, ObjectBuilder, Ref, RefOr, Required, Schema, Type};
use utoipa::{Modify, OpenApi};

/// The pattern of every id (org, agent, call, key, key name); see `limits::check_id`.
pub const ID_PATTERN: &str = r"^[A-Za-z0-9._:-]{1,128}$";

/// Paths anyone may call, without a key.
const PUBLIC: &[&str] = &["/healthz", "/metrics", "/v1/openapi.json"];

/// The errors every `/v1` operation may answer, besides its own.
const COMMON_ERRORS: &[(u16, &str)] = &[
    (
        400,
        "invalid_request: a parameter or the body is malformed or out of range; the message names it",
    ),
    (401, "unauthorized: no key, or a key nobody issued"),
    (
        429,
        "rate_limited: the key is over its rate, or the client's address failed to authenticate too often; nothing was done; retry after `Retry-After` seconds",
    ),
    (
        503,
        "store_unavailable: the store cannot take or confirm the change now; retry; too_many_waits (a long-poll or event stream): the server holds as many as it may (`error.cap`); retry after `Retry-After` seconds",
    ),
];

/// The error of every operation on an org (a path with `{org}`).
const ORG_NOT_FOUND: (u16, &str) = (
    404,
    "org_not_found: no such org, or one this key may not see",
);

/// The error of every operation that takes a body.
const PAYLOAD_TOO_LARGE: (u16, &str) = (413, "payload_too_large: the body is over 64 KiB");

/// What the document says besides its operations (those come with the
/// routes, `super::routes`).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "slotgate",
        description = "Concurrency control for AI agents on live calls."
    ),
    components(schemas(slotgate_api::ErrorBody))
)]
#[derive(Debug)]
pub struct ApiDoc;

/// The document as served: the routes' operations, completed ([`Complete`]),
/// with its links spelled as OpenAPI spells them (utoipa 5.5 writes a link's
/// fields in snake case, `operation_id`, `request_body`, which no OpenAPI
/// tool reads), the planning bodies' "`traffic` or `window`, not both", and
/// a new org's "a `limit` or a `plan`".
pub fn document() -> serde_json::Value {
    let mut api = super::routes().into_openapi();
    Complete.modify(&mut api);
    let mut doc = serde_json::to_value(api).expect("an OpenAPI document renders to JSON");
    for body in ["PlanBody", "SimulateBody"] {
        // Both given, and neither null, is what the server refuses.
        doc["components"]["schemas"][body]["not"] = serde_json::json!({
            "required": ["traffic", "window"],
            "properties": {"traffic": {"type": "array"}, "window": {"type": "string"}},
        });
    }
    // A new org needs its own limit or a plan (or both), not null.
    doc["components"]["schemas"]["CreateOrg"]["anyOf"] = serde_json::json!([
        {"required": ["limit"], "properties": {"limit": {"type": "integer"}}},
        {"required": ["plan"], "properties": {"plan": {"type": "string"}}},
    ]);
    let responses = doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("responses")?.as_object_mut())
        .flat_map(|responses| responses.values_mut());
    for response in responses {
        let links = response.get_mut("links").and_then(|l| l.as_object_mut());
        for link in links.into_iter().flat_map(|l| l.values_mut()) {
            let Some(link) = link.as_object_mut() else {
                continue;
            };
            for (snake, camel) in [
                ("operation_id", "operationId"),
                ("operation_ref", "operationRef"),
                ("request_body", "requestBody"),
            ] {
                if let Some(v) = link.remove(snake) {
                    link.insert(camel.to_string(), v);
                }
            }
        }
    }
    doc
}

/// Completes the generated document: see the module's doc.
#[derive(Debug)]
struct Complete;

impl Modify for Complete {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        api.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
        for (path, item) in api.paths.paths.iter_mut() {
            for op in operations(item) {
                if PUBLIC.contains(&path.as_str()) {
                    op.security = Some(Vec::new());
                    continue;
                }
                declare_path_params(path, op);
                optional_body_is_absent_not_null(op);
                let mut errors = COMMON_ERRORS.to_vec();
                if path.contains("{org}") {
                    errors.push(ORG_NOT_FOUND);
                }
                if op.request_body.is_some() {
                    errors.push(PAYLOAD_TOO_LARGE);
                }
                for (status, description) in errors {
                    add_error(op, status, description);
                }
                // Errors an annotation declared with a description only get the body too.
                for (status, response) in op.responses.responses.iter_mut() {
                    let error = status.parse::<u16>().is_ok_and(|s| s >= 400);
                    if let (true, RefOr::T(response)) = (error, response) {
                        with_error_body(response);
                    }
                }
            }
        }
        add_links(api);
    }
}

/// Every operation of a path.
fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
        &mut item.head,
        &mut item.options,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
}

/// An optional body (`Option<T>` in an annotation) may be left out, not sent
/// as `null`: utoipa writes its schema as "null or T", the server takes T or
/// nothing. The body stays optional (`required` unset).
fn optional_body_is_absent_not_null(op: &mut Operation) {
    let Some(body) = op.request_body.as_mut() else {
        return;
    };
    for content in body.content.values_mut() {
        if let Some(RefOr::T(Schema::OneOf(one))) = &content.schema {
            let mut not_null = one.items.iter().filter(|s| !is_null(s));
            if let (Some(schema), None) = (not_null.next(), not_null.next()) {
                content.schema = Some(schema.clone());
            }
        }
    }
}

fn is_null(schema: &RefOr<Schema>) -> bool {
    matches!(schema, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null))
}

/// Declares each `{name}` of `path` on `op`, unless its annotation did: a
/// required string of the id pattern.
fn declare_path_params(path: &str, op: &mut Operation) {
    let params = op.parameters.get_or_insert_with(Vec::new);
    for name in path
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
    {
        let declared = params
            .iter()
            .any(|p| p.name == name && p.parameter_in == ParameterIn::Path);
        if !declared {
            params.push(path_param(path, name));
        }
    }
}

fn path_param(path: &str, name: &str) -> Parameter {
    let description = match name {
        "org" => "The org's id.",
        "agent" => "The agent's id.",
        "id" if path.contains("/keys/") => "The key's id (from its creation or the key list).",
        "id" => "The call's id.",
        "plan" => "The plan's id.",
        _ => "An id.",
    };
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(ID_PATTERN)),
        ))
        .build()
}

/// Adds an error answer, or names this error in one the annotation declared.
fn add_error(op: &mut Operation, status: u16, description: &str) {
    let responses = &mut op.responses.responses;
    match responses.get_mut(&status.to_string()) {
        Some(RefOr::T(existing)) => {
            let code = description.split(':').next().unwrap_or_default();
            if !existing.description.contains(code) {
                existing.description = format!("{}; {description}", existing.description);
            }
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            let response = ResponseBuilder::new().description(description).build();
            responses.insert(status.to_string(), RefOr::T(response));
        }
    }
}

/// Gives an error answer the API's error body, unless it has a body already.
fn with_error_body(response: &mut Response) {
    if response.content.is_empty() {
        let schema: RefOr<Schema> = Ref::from_schema_name("ErrorBody").into();
        response
            .content
            .insert("application/json".to_string(), Content::new(Some(schema)));
    }
}

/// What can be done with what an operation made.
struct Links {
    /// The operation that makes something.
    from: &'static str,
    /// The operations a client may call on it next.
    to: &'static [&'static str],
    /// Their path parameters, as runtime expressions.
    params: &'static [(&'static str, &'static str)],
}

/// Every link of the document.
const LINKS: &[Links] = &[
    Links {
        from: "create_org",
        to: &[
            "get_org",
            "set_limit",
            "get_history",
            "get_usage",
            "list_calls",
            "acquire_call",
            "list_keys",
            "create_key",
            "list_events",
        ],
        params: &[("org", "$response.body#/id")],
    },
    Links {
        from: "acquire_call",
        to: &["get_call", "heartbeat_call", "release_call"],
        params: &[("org", "$request.path.org"), ("id", "$response.body#/id")],
    },
    Links {
        from: "set_reservations",
        to: &["get_agent", "remove_reservations"],
        params: &[
            ("org", "$request.path.org"),
            ("agent", "$response.body#/id"),
        ],
    },
    Links {
        from: "create_plan",
        to: &["get_plan", "update_plan", "delete_plan"],
        params: &[("plan", "$response.body#/id")],
    },
    Links {
        from: "create_key",
        to: &["revoke_key"],
        params: &[("org", "$request.path.org"), ("id", "$response.body#/id")],
    },
];

/// Adds [`LINKS`] to every 2xx answer of their source operations.
fn add_links(api: &mut utoipa::openapi::OpenApi) {
    for item in api.paths.paths.values_mut() {
        for op in operations(item) {
            let Some(links) = LINKS
                .iter()
                .find(|l| op.operation_id.as_deref() == Some(l.from))
            else {
                continue;
            };
            for (status, response) in op.responses.responses.iter_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                if !status.starts_with('2') {
                    continue;
                }
                for target in links.to {
                    let mut link = LinkBuilder::new().operation_id(*target);
                    for (name, value) in links.params {
                        link = link.parameter(*name, *value);
                    }
                    response
                        .links
                        .insert((*target).to_string(), link.build().into());
                }
            }
        }
    }
}
