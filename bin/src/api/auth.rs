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

/// `access_token=` of a query string: a browser's WebSocket cannot send
/// an `Authorization` header, so `/v1/events` also takes the token there
/// (RFC 6750 2.3).
fn query_token(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let value = pair.strip_prefix("access_token=")?;
        percent_decode(value)
    })
}

/// `%XX` and `+` of a query value; `None` for a malformed escape.
fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
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
            // The health check, and the status page itself (static; its
            // script sends the token it is given for every request).
            Some(_) if matches!(req.path(), "/healthz" | "/") => true,
            Some(token) => {
                authorized(
                    req.headers()
                        .get(header::AUTHORIZATION)
                        .map(|v| v.as_bytes()),
                    token,
                ) || (req.path() == "/v1/events"
                    && query_token(req.query_string())
                        .is_some_and(|given| given.as_bytes().ct_eq(token.as_bytes()).into()))
            }
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
    fn the_query_token_is_read_with_its_escapes() {
        use super::query_token;
        assert_eq!(
            query_token("replay=5&access_token=a%2Bb+c").as_deref(),
            Some("a+b c")
        );
        assert_eq!(query_token("access_token=abc").as_deref(), Some("abc"));
        assert_eq!(query_token("replay=5"), None);
        assert_eq!(query_token("access_token=%zz"), None);
        assert_eq!(query_token("access_token=%4"), None);
    }

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
