//! Warden's typed errors, free of HTTP: what engines, the core and the
//! node return. The API turns them into Vault's responses (api/errors.rs
//! holds the status mapping).

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or asks for something invalid (400).
    #[error("{0}")]
    BadRequest(String),
    /// No token or a wrong token (403, Vault's bare text).
    #[error("permission denied")]
    PermissionDenied,
    /// A valid token whose ACL denies the request (403). Vault and OpenBao
    /// word this one as the multierror their ACL check returns.
    #[error("1 error occurred:\n\t* permission denied\n\n")]
    AclDenied,
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
    /// 414, 431): the status code and the reason.
    #[error("{1}")]
    Http(u16, String),
    /// A resource quota refused the request (429): the message, and the
    /// seconds after which to try again (Retry-After; 0: not sent).
    #[error("{0}")]
    Quota(String, u64),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn bad(msg: impl Into<String>) -> Self {
        Error::BadRequest(msg.into())
    }

    /// A 400 worded as Vault's multierror (`1 error occurred:\n\t* msg\n\n`),
    /// where Vault and OpenBao answer so (the token store's accessor
    /// errors, sys/capabilities' unknown token).
    pub fn bad_multi(msg: &str) -> Self {
        Error::BadRequest(format!("1 error occurred:\n\t* {msg}\n\n"))
    }

    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
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
