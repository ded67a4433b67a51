//! Errors as Vault answers them over HTTP: the status of each kind of
//! error and the `{"errors":[...]}` body.

use crate::error::Error;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// The status Vault answers an error with.
pub fn status(e: &Error) -> StatusCode {
    match e {
        Error::BadRequest(_) => StatusCode::BAD_REQUEST,
        Error::PermissionDenied | Error::AclDenied => StatusCode::FORBIDDEN,
        Error::NotFound | Error::Missing(_) | Error::UnsupportedPath | Error::NoRoute(_) => StatusCode::NOT_FOUND,
        Error::UnsupportedOperation => StatusCode::METHOD_NOT_ALLOWED,
        Error::Internal(_) | Error::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        Error::Sealed => StatusCode::SERVICE_UNAVAILABLE,
        Error::Http(code, _) => StatusCode::from_u16(*code).unwrap_or(StatusCode::BAD_REQUEST),
        Error::Quota(..) => StatusCode::TOO_MANY_REQUESTS,
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "errors": self.messages() });
        let mut response = (status(&self), axum::Json(body)).into_response();
        if let Error::Quota(_, retry_after) = self
            && retry_after > 0
        {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(retry_after),
            );
        }
        response
    }
}
