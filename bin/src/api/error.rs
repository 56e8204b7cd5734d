//! Every error the API answers, as JSON with a 4xx/5xx status: the field at
//! fault when there is one, so a client can show it next to its input.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

/// An error answer.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    status: StatusCode,
    message: String,
    field: Option<&'static str>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            field: None,
        }
    }

    /// 400 naming the field at fault.
    pub fn bad_field(field: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            field: Some(field),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(Body {
            error: &self.message,
            field: self.field,
        })
    }
}

/// Unknown path or method.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    ApiError::not_found(format!(
        "no endpoint {} {}",
        req.method(),
        crate::output::clip(req.path())
    ))
    .error_response()
}

/// A JSON body that does not parse, is too large or has another type.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(super::MAX_BODY)
        .error_handler(|err, _| {
            let status = match &err {
                JsonPayloadError::Overflow { .. }
                | JsonPayloadError::OverflowKnownLength { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                JsonPayloadError::ContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                _ => StatusCode::BAD_REQUEST,
            };
            ApiError::new(status, format!("request body: {err}")).into()
        })
}

/// A query string that does not parse.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _| {
        ApiError::new(StatusCode::BAD_REQUEST, format!("query string: {err}")).into()
    })
}

/// A path segment of the wrong type (a line number that is not a number).
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err: PathError, _| {
        ApiError::new(StatusCode::NOT_FOUND, format!("path: {err}")).into()
    })
}
