//! Every error code the API answers with, in one table: the code clients
//! match on, its HTTP status, and what it means. Handlers name a [`Code`];
//! the status follows from it, the OpenAPI document lists the codes, and
//! `docs/API-ERRORS.md` is generated from the same table (a test keeps it
//! current). Codes are part of the public contract: never rename one.

use axum::http::StatusCode;

macro_rules! error_codes {
    ($($variant:ident = $code:literal, $status:ident, $meaning:literal;)*) => {
        /// A stable API error code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Code {
            $(#[doc = $meaning] $variant,)*
        }

        impl Code {
            /// Every code, in the table's order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code as clients see it, e.g. `not_found`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $code,)*
                }
            }

            /// The HTTP status every answer with this code has.
            pub fn status(self) -> StatusCode {
                match self {
                    $(Code::$variant => StatusCode::$status,)*
                }
            }

            /// One line on what the code means and what to do about it.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(Code::$variant => $meaning,)*
                }
            }
        }
    };
}

error_codes! {
    InvalidRequest = "invalid_request", BAD_REQUEST, "The request is not valid: a field is missing, malformed or out of range; the message says which.";
    MalformedJson = "malformed_json", BAD_REQUEST, "The body is not valid JSON.";
    InvalidPath = "invalid_path", BAD_REQUEST, "A file path in the URL is not a plain relative path.";
    InvalidPolicy = "invalid_policy", BAD_REQUEST, "A Cedar policy does not parse or does not validate against the schema.";
    QueryRefused = "query_refused", BAD_REQUEST, "The SQL query is not one read-only statement over the source's allowed tables.";
    Unauthorized = "unauthorized", UNAUTHORIZED, "No API key, or one that is not known.";
    KeyRevoked = "key_revoked", UNAUTHORIZED, "The API key has been revoked.";
    KeyExpired = "key_expired", UNAUTHORIZED, "The API key has expired.";
    InvalidSignature = "invalid_signature", UNAUTHORIZED, "A hook delivery's signature is missing or wrong, its timestamp is outside the tolerance window, or the hook does not exist.";
    Forbidden = "forbidden", FORBIDDEN, "The operation needs the admin key.";
    InsufficientScope = "insufficient_scope", FORBIDDEN, "The key's scopes do not cover the operation.";
    UserNotAllowed = "user_not_allowed", FORBIDDEN, "The key may not act for the user the request names.";
    DeniedByPolicy = "denied_by_policy", FORBIDDEN, "The tenant's Cedar policies deny the action.";
    SelfApprovalForbidden = "self_approval_forbidden", FORBIDDEN, "An approval must be decided by another principal than the one whose run asked.";
    McpCommandNeedsAdmin = "mcp_command_needs_admin", FORBIDDEN, "Registering a command needs the admin key; enable an entry of the operator's catalogue instead.";
    EgressDenied = "egress_denied", FORBIDDEN, "The egress policy refuses the address; the operator opens it with `[egress] allow`.";
    PathNotAllowed = "path_not_allowed", FORBIDDEN, "The file is outside the directories the operator lists for SQLite sources.";
    NotFound = "not_found", NOT_FOUND, "No such object, or one the key may not see.";
    MethodNotAllowed = "method_not_allowed", METHOD_NOT_ALLOWED, "The path exists but not with this method.";
    Conflict = "conflict", CONFLICT, "The object exists already or changed since it was read; read it again and retry.";
    SessionBusy = "session_busy", CONFLICT, "The session has a run in progress and the request asked not to queue.";
    AgentDeleted = "agent_deleted", CONFLICT, "The session's agent has been deleted.";
    RunFinished = "run_finished", CONFLICT, "The run has already finished.";
    RunNotFailed = "run_not_failed", CONFLICT, "Only a failed run can be retried.";
    ApprovalNotPending = "approval_not_pending", CONFLICT, "The approval has already been decided or has expired.";
    PayloadTooLarge = "payload_too_large", PAYLOAD_TOO_LARGE, "The request body is larger than the server accepts.";
    InputTooLarge = "input_too_large", PAYLOAD_TOO_LARGE, "The input is larger than the agent's context budget.";
    DocumentTooLarge = "document_too_large", PAYLOAD_TOO_LARGE, "The document is larger than the server's per-document limit.";
    FileTooLarge = "file_too_large", PAYLOAD_TOO_LARGE, "The file is larger than the workspace's per-file limit.";
    UnsupportedMediaType = "unsupported_media_type", UNSUPPORTED_MEDIA_TYPE, "The body must be JSON (`Content-Type: application/json`).";
    RateLimited = "rate_limited", TOO_MANY_REQUESTS, "Too many deliveries to this hook; retry after the seconds `Retry-After` gives.";
    DatabaseError = "database_error", UNPROCESSABLE_ENTITY, "The source's database refused the query; the message is its error.";
    EmptyDocument = "empty_document", UNPROCESSABLE_ENTITY, "The document is empty.";
    BinaryContent = "binary_content", UNPROCESSABLE_ENTITY, "The document is binary data, not text of a supported kind.";
    GarbledText = "garbled_text", UNPROCESSABLE_ENTITY, "The document's text is not readable (wrong encoding or corrupt).";
    UnsupportedType = "unsupported_type", UNPROCESSABLE_ENTITY, "The document's type is not one Roster reads.";
    NoText = "no_text", UNPROCESSABLE_ENTITY, "The document has no text to index (for example a scanned PDF).";
    MalformedDocument = "malformed_document", UNPROCESSABLE_ENTITY, "The document is not a readable file of its kind.";
    InvalidAgentCard = "invalid_agent_card", UNPROCESSABLE_ENTITY, "The remote's agent card is not a usable A2A card: it has no name or offers no JSON-RPC interface.";
    InternalError = "internal_error", INTERNAL_SERVER_ERROR, "Something failed inside the server; the server log has the details.";
    SecretUnreadable = "secret_unreadable", INTERNAL_SERVER_ERROR, "Stored credentials cannot be opened (the secret key changed).";
    WorkspaceNotRemoved = "workspace_not_removed", INTERNAL_SERVER_ERROR, "The session was deleted but its workspace directory could not be removed.";
    McpUnavailable = "mcp_unavailable", BAD_GATEWAY, "The MCP server did not start or answer.";
    HostUnresolved = "host_unresolved", BAD_GATEWAY, "The integration's host name does not resolve.";
    DatabaseUnavailable = "database_unavailable", BAD_GATEWAY, "The source's database cannot be reached.";
    RemoteUnavailable = "remote_unavailable", BAD_GATEWAY, "The remote agent's card could not be fetched: no answer, an HTTP error, or not JSON.";
    Unavailable = "unavailable", SERVICE_UNAVAILABLE, "The server's store is not answering; try again.";
    ShuttingDown = "shutting_down", SERVICE_UNAVAILABLE, "The server is shutting down.";
    MemoryUnavailable = "memory_unavailable", SERVICE_UNAVAILABLE, "Long-term memory and knowledge search are not enabled on this server.";
    IntegrationsUnavailable = "integrations_unavailable", SERVICE_UNAVAILABLE, "Integrations are not enabled on this server.";
    SandboxUnavailable = "sandbox_unavailable", SERVICE_UNAVAILABLE, "Running code or stdio servers needs bubblewrap, which does not work on this server.";
    QueryTimeout = "query_timeout", GATEWAY_TIMEOUT, "The source's database did not answer within the source's timeout.";
}

impl Code {
    /// The code a library error reports (`SqlError::code`, …), if the API
    /// has it. Library codes reach clients unchanged; a test checks every
    /// one of them is in the table.
    pub fn parse(code: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.as_str() == code)
    }

    /// The table as Markdown, for `docs/API-ERRORS.md`.
    pub fn markdown_table() -> String {
        let mut out = String::from("| code | HTTP status | meaning |\n| --- | ---: | --- |\n");
        for code in Code::ALL {
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                code.as_str(),
                code.status().as_u16(),
                code.meaning()
            ));
        }
        out
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The public contract: a code is never renamed or removed, and its
    /// status never changes. Adding one means adding it here on purpose.
    #[test]
    fn codes_are_stable() {
        let table: Vec<(&str, u16)> = Code::ALL
            .iter()
            .map(|c| (c.as_str(), c.status().as_u16()))
            .collect();
        let expected: Vec<(&str, u16)> = vec![
            ("invalid_request", 400),
            ("malformed_json", 400),
            ("invalid_path", 400),
            ("invalid_policy", 400),
            ("query_refused", 400),
            ("unauthorized", 401),
            ("key_revoked", 401),
            ("key_expired", 401),
            ("invalid_signature", 401),
            ("forbidden", 403),
            ("insufficient_scope", 403),
            ("user_not_allowed", 403),
            ("denied_by_policy", 403),
            ("self_approval_forbidden", 403),
            ("mcp_command_needs_admin", 403),
            ("egress_denied", 403),
            ("path_not_allowed", 403),
            ("not_found", 404),
            ("method_not_allowed", 405),
            ("conflict", 409),
            ("session_busy", 409),
            ("agent_deleted", 409),
            ("run_finished", 409),
            ("run_not_failed", 409),
            ("approval_not_pending", 409),
            ("payload_too_large", 413),
            ("input_too_large", 413),
            ("document_too_large", 413),
            ("file_too_large", 413),
            ("unsupported_media_type", 415),
            ("rate_limited", 429),
            ("database_error", 422),
            ("empty_document", 422),
            ("binary_content", 422),
            ("garbled_text", 422),
            ("unsupported_type", 422),
            ("no_text", 422),
            ("malformed_document", 422),
            ("invalid_agent_card", 422),
            ("internal_error", 500),
            ("secret_unreadable", 500),
            ("workspace_not_removed", 500),
            ("mcp_unavailable", 502),
            ("host_unresolved", 502),
            ("database_unavailable", 502),
            ("remote_unavailable", 502),
            ("unavailable", 503),
            ("shutting_down", 503),
            ("memory_unavailable", 503),
            ("integrations_unavailable", 503),
            ("sandbox_unavailable", 503),
            ("query_timeout", 504),
        ];
        assert_eq!(table, expected);
    }

    /// `docs/API-ERRORS.md` is the table; `ROSTER_UPDATE_SNAPSHOTS=1`
    /// rewrites it after a deliberate change.
    #[test]
    fn the_docs_table_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/API-ERRORS.md");
        let expected = format!(
            "# API error codes\n\nEvery error answer is `{{\"error\": {{\"code\", \"message\"}}}}` with one of these\ncodes; the status always matches the code. Generated from\n`crates/api/src/codes.rs` (`ROSTER_UPDATE_SNAPSHOTS=1 cargo test -p roster-api\ncodes` rewrites it); a code is never renamed or removed.\n\n{}",
            Code::markdown_table()
        );
        if std::env::var_os("ROSTER_UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(path, &expected).expect("write the table");
        }
        let written = std::fs::read_to_string(path).unwrap_or_default();
        assert_eq!(
            written, expected,
            "docs/API-ERRORS.md is stale: run ROSTER_UPDATE_SNAPSHOTS=1 cargo test -p roster-api codes"
        );
    }

    #[test]
    fn the_openapi_document_lists_every_code() {
        let doc = serde_json::to_value(crate::router::openapi()).expect("document");
        let listed = &doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"];
        let all: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(listed, &serde_json::json!(all));
    }

    #[test]
    fn codes_are_unique_and_parse_back() {
        for code in Code::ALL {
            assert_eq!(Code::parse(code.as_str()), Some(*code));
        }
        assert_eq!(Code::parse("no_such_code"), None);
    }

    fn documents() -> Vec<roster_ingest::IngestError> {
        use roster_ingest::IngestError as E;
        let path = String::new;
        vec![
            E::DocumentTooLarge {
                path: path(),
                size: 0,
                limit: 0,
            },
            E::EmptyDocument { path: path() },
            E::BinaryContent {
                path: path(),
                detected: path(),
            },
            E::GarbledText {
                path: path(),
                reason: path(),
            },
            E::UnsupportedType {
                path: path(),
                type_name: path(),
            },
            E::NoText { path: path() },
            E::MalformedDocument {
                path: path(),
                kind: roster_ingest::DocumentKind::Pdf,
                reason: path(),
            },
        ]
    }

    /// What the libraries report reaches clients as one of the table's
    /// codes.
    #[test]
    fn every_library_code_is_in_the_table() {
        let sql = [
            roster_sql::SqlError::Invalid(String::new()),
            roster_sql::SqlError::NotFound(String::new()),
            roster_sql::SqlError::Refused(String::new()),
            roster_sql::SqlError::Database(String::new()),
            roster_sql::SqlError::Unavailable(String::new()),
            roster_sql::SqlError::Timeout(String::new()),
            roster_sql::SqlError::PathRefused(String::new()),
            roster_sql::SqlError::Secret(String::new()),
        ];
        let egress = [
            roster_egress::EgressError::Denied(String::new()),
            roster_egress::EgressError::Unresolved(String::new()),
        ];
        let http = [
            roster_openapi::HttpError::Invalid(String::new()),
            roster_openapi::HttpError::NotFound(String::new()),
            roster_openapi::HttpError::Secret(String::new()),
        ];
        let remotes = [
            roster_a2a::A2aError::Invalid(String::new()),
            roster_a2a::A2aError::NotFound(String::new()),
            roster_a2a::A2aError::Unavailable(String::new()),
            roster_a2a::A2aError::InvalidCard(String::new()),
            roster_a2a::A2aError::Secret(String::new()),
        ];
        let documents = documents();
        let codes = sql
            .iter()
            .map(roster_sql::SqlError::code)
            .chain(egress.iter().map(roster_egress::EgressError::code))
            .chain(http.iter().map(roster_openapi::HttpError::code))
            .chain(remotes.iter().map(roster_a2a::A2aError::code))
            .chain(documents.iter().map(roster_ingest::IngestError::code));
        for code in codes {
            assert!(Code::parse(code).is_some(), "`{code}` is not in the table");
        }
    }
}
