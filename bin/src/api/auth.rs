//! The bearer token: with `--token-file`, every request but `/healthz`
//! carries `Authorization: Bearer TOKEN`, or gets 401 before any handler
//! runs. Compared in constant time (`subtle`), so the answer's timing does
//! not tell how much of a guess was right.

use std::future::{ready, Ready};
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::EitherBody;
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::{header, StatusCode};
use actix_web::{Error, ResponseError};
use futures_util::future::LocalBoxFuture;
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// The middleware factory; `None` lets every request through.
pub struct BearerToken {
    token: Arc<Option<String>>,
}

impl BearerToken {
    pub fn new(token: Arc<Option<String>>) -> Self {
        BearerToken { token }
    }
}

/// Whether `header` (the whole `Authorization` value) carries `token`.
pub fn authorized(header: Option<&[u8]>, token: &str) -> bool {
    let Some(value) = header else {
        return false;
    };
    let Some(given) = value.strip_prefix(b"Bearer ") else {
        return false;
    };
    given.ct_eq(token.as_bytes()).into()
}

impl<S, B> Transform<S, ServiceRequest> for BearerToken
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = BearerTokenService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(BearerTokenService {
            service: Rc::new(service),
            token: self.token.clone(),
        }))
    }
}

pub struct BearerTokenService<S> {
    service: Rc<S>,
    token: Arc<Option<String>>,
}

impl<S, B> Service<ServiceRequest> for BearerTokenService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let allowed = match self.token.as_ref() {
            None => true,
            Some(_) if req.path() == "/healthz" => true,
            Some(token) => authorized(
                req.headers()
                    .get(header::AUTHORIZATION)
                    .map(|v| v.as_bytes()),
                token,
            ),
        };
        if !allowed {
            let mut response = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token (Authorization: Bearer TOKEN)",
            )
            .error_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            let (req, _) = req.into_parts();
            return Box::pin(ready(Ok(
                ServiceResponse::new(req, response).map_into_right_body()
            )));
        }
        let service = self.service.clone();
        Box::pin(async move { Ok(service.call(req).await?.map_into_left_body()) })
    }
}

#[cfg(test)]
mod tests {
    use super::authorized;

    #[test]
    fn only_the_exact_bearer_token_passes() {
        let token = "0123456789abcdef";
        assert!(authorized(Some(b"Bearer 0123456789abcdef"), token));
        assert!(!authorized(Some(b"Bearer 0123456789abcdeF"), token));
        assert!(!authorized(Some(b"Bearer 0123456789abcde"), token));
        assert!(!authorized(Some(b"Bearer 0123456789abcdef0"), token));
        assert!(!authorized(Some(b"bearer 0123456789abcdef"), token));
        assert!(!authorized(Some(b"Basic 0123456789abcdef"), token));
        assert!(!authorized(Some(b""), token));
        assert!(!authorized(None, token));
    }
}
