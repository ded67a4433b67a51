//! Warden's typed errors, and the one place they become Vault-style HTTP
//! responses (`{"errors":[...]}` with the status Vault uses).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or asks for something invalid (400).
    #[error("{0}")]
    BadRequest(String),
    /// No token, a wrong token, or the ACL denies it (403).
    #[error("permission denied")]
    PermissionDenied,
    /// A read of something that does not exist: 404 with an empty list, as
    /// Vault answers.
    #[error("not found")]
    NotFound,
    /// A read of something that does not exist, where Vault says why (404
    /// with the message, e.g. a missing password policy).
    #[error("{0}")]
    Missing(String),
    /// No handler for this path (404).
    #[error("unsupported path")]
    UnsupportedPath,
    /// No mount answers below this path (404).
    #[error("no handler for route {0:?}. route entry not found.")]
    NoRoute(String),
    /// The path exists but not with this method (405).
    #[error("unsupported operation")]
    UnsupportedOperation,
    /// The server failed; the text is safe to show (no secrets) (500).
    #[error("{0}")]
    Internal(String),
    /// The node is sealed or not initialised: 503, as Vault answers.
    #[error("Vault is sealed")]
    Sealed,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// The HTTP layer refused the request before the API read it (408, 413,
    /// 414, 431): the status and the reason.
    #[error("{1}")]
    Http(StatusCode, String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn bad(msg: impl Into<String>) -> Self {
        Error::BadRequest(msg.into())
    }

    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::PermissionDenied => StatusCode::FORBIDDEN,
            Error::NotFound | Error::Missing(_) | Error::UnsupportedPath | Error::NoRoute(_) => StatusCode::NOT_FOUND,
            Error::UnsupportedOperation => StatusCode::METHOD_NOT_ALLOWED,
            Error::Internal(_) | Error::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::Sealed => StatusCode::SERVICE_UNAVAILABLE,
            Error::Http(status, _) => *status,
        }
    }

    /// The `errors` list of the response body.
    pub fn messages(&self) -> Vec<String> {
        match self {
            Error::NotFound => vec![],
            // Vault wraps these two in Go's multierror text; clients that
            // match on it see the same bytes.
            Error::UnsupportedPath | Error::UnsupportedOperation => {
                vec![format!("1 error occurred:\n\t* {self}\n\n")]
            }
            other => vec![other.to_string()],
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "errors": self.messages() });
        (self.status(), axum::Json(body)).into_response()
    }
}
