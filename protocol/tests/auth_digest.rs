//! Digest authentication against the worked examples of RFC 2617 and RFC 7616.

use sipfleet_protocol::auth::{
    compute_response, Algorithm, AuthError, Challenge, ChallengeKind, DigestClient, Qop,
    RequestInfo, Secret,
};

const GET_INDEX: RequestInfo<'static> = RequestInfo {
    method: "GET",
    uri: "/dir/index.html",
    body: b"",
};

#[test]
fn rfc2617_section_3_5_md5_auth() {
    let challenge = Challenge::parse(
        r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
    )
    .unwrap();
    assert_eq!(challenge.algorithm, Algorithm::Md5);
    assert_eq!(challenge.qop, vec![Qop::Auth, Qop::AuthInt]);
    let mut client = DigestClient::new("Mufasa", Secret::new("Circle Of Life"));
    let auth = client.authorize(ChallengeKind::Www, &challenge, &GET_INDEX, "0a4f113b");
    assert_eq!(auth.response, "6629fae49393a05397450978507c4ef1");
    assert_eq!(auth.header_name(), "Authorization");
    assert_eq!(
        auth.to_string(),
        r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cnonce="0a4f113b", opaque="5ccc069c403ebaf9f0171e9517f40e41", qop=auth, nc=00000001"#
    );
}

const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

fn rfc7616_challenge(algorithm: &str) -> Challenge {
    Challenge::parse(&format!(
        r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, nonce="{RFC7616_NONCE}", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#
    ))
    .unwrap()
}

#[test]
fn rfc7616_section_3_9_1_md5() {
    let mut client = DigestClient::new("Mufasa", Secret::new("Circle of Life"));
    let auth = client.authorize(
        ChallengeKind::Www,
        &rfc7616_challenge("MD5"),
        &GET_INDEX,
        RFC7616_CNONCE,
    );
    assert_eq!(auth.response, "8ca523f5e9506fed4657c9700eebdbec");
}

#[test]
fn rfc7616_section_3_9_1_sha256() {
    let challenge = rfc7616_challenge("SHA-256");
    assert_eq!(challenge.algorithm, Algorithm::Sha256);
    let mut client = DigestClient::new("Mufasa", Secret::new("Circle of Life"));
    let auth = client.authorize(ChallengeKind::Proxy, &challenge, &GET_INDEX, RFC7616_CNONCE);
    assert_eq!(
        auth.response,
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
    assert_eq!(auth.header_name(), "Proxy-Authorization");
    assert!(auth.to_string().contains("algorithm=SHA-256, "));
}

/// MD5-sess: HA1 = MD5(MD5(user:realm:pass):nonce:cnonce), computed by hand here
/// from the RFC 2617 values so the session variant has an independent check.
#[test]
fn md5_sess_hashes_nonce_and_cnonce_into_ha1() {
    use md5::{Digest, Md5};
    let h = |s: String| hex::encode(Md5::digest(s.as_bytes()));
    let nonce = "dcd98b7102dd2f0e8b11d0f600bfb0c093";
    let ha1 = h(format!(
        "{}:{nonce}:0a4f113b",
        h("Mufasa:testrealm@host.com:Circle Of Life".into())
    ));
    let ha2 = h("GET:/dir/index.html".into());
    let expected = h(format!("{ha1}:{nonce}:00000001:0a4f113b:auth:{ha2}"));
    let challenge = Challenge::parse(&format!(
        r#"Digest realm="testrealm@host.com", nonce="{nonce}", algorithm=MD5-sess, qop="auth""#
    ))
    .unwrap();
    assert_eq!(challenge.algorithm, Algorithm::Md5Sess);
    let got = compute_response(
        &challenge,
        "Mufasa",
        &Secret::new("Circle Of Life"),
        &GET_INDEX,
        Some(Qop::Auth),
        "0a4f113b",
        1,
    );
    assert_eq!(got, expected);
    // and it differs from plain MD5 with the same inputs
    assert_ne!(got, "6629fae49393a05397450978507c4ef1");
}

#[test]
fn sha256_sess_differs_from_sha256() {
    let plain = rfc7616_challenge("SHA-256");
    let sess = rfc7616_challenge("SHA-256-sess");
    assert_eq!(sess.algorithm, Algorithm::Sha256Sess);
    let pw = Secret::new("Circle of Life");
    let a = compute_response(
        &plain,
        "Mufasa",
        &pw,
        &GET_INDEX,
        Some(Qop::Auth),
        RFC7616_CNONCE,
        1,
    );
    let b = compute_response(
        &sess,
        "Mufasa",
        &pw,
        &GET_INDEX,
        Some(Qop::Auth),
        RFC7616_CNONCE,
        1,
    );
    assert_eq!(b.len(), 64);
    assert_ne!(a, b);
}

#[test]
fn nonce_count_increments_per_nonce_and_resets_on_new_nonce() {
    let mut client = DigestClient::new("Mufasa", Secret::new("Circle Of Life"));
    let first = Challenge::parse(r#"Digest realm="r", nonce="n1", qop="auth""#).unwrap();
    let nc = |a: &sipfleet_protocol::auth::Authorization| a.qop.as_ref().unwrap().2;
    let register = RequestInfo {
        method: "REGISTER",
        uri: "sip:example.com",
        body: b"",
    };
    assert_eq!(
        nc(&client.authorize(ChallengeKind::Www, &first, &register, "c1")),
        1
    );
    let second = client.authorize(ChallengeKind::Www, &first, &register, "c2");
    assert_eq!(nc(&second), 2);
    assert!(second.to_string().ends_with("qop=auth, nc=00000002"));
    // a proxy realm has its own count
    let proxy = Challenge::parse(r#"Digest realm="p", nonce="x", qop="auth""#).unwrap();
    assert_eq!(
        nc(&client.authorize(ChallengeKind::Proxy, &proxy, &register, "c3")),
        1
    );
    assert_eq!(
        nc(&client.authorize(ChallengeKind::Www, &first, &register, "c4")),
        3
    );
    let stale =
        Challenge::parse(r#"Digest realm="r", nonce="n2", qop="auth", stale=TRUE"#).unwrap();
    assert!(stale.stale);
    assert_eq!(
        nc(&client.authorize(ChallengeKind::Www, &stale, &register, "c5")),
        1
    );
}

/// Without qop (RFC 2069): response = H(HA1:nonce:HA2), no cnonce or nc sent.
#[test]
fn no_qop_uses_rfc2069_form() {
    use md5::{Digest, Md5};
    let h = |s: String| hex::encode(Md5::digest(s.as_bytes()));
    let challenge = Challenge::parse(r#"Digest realm="r", nonce="abc""#).unwrap();
    assert!(challenge.qop.is_empty());
    let mut client = DigestClient::new("u", Secret::new("p"));
    let req = RequestInfo {
        method: "INVITE",
        uri: "sip:bob@b.example",
        body: b"v=0",
    };
    let auth = client.authorize(ChallengeKind::Www, &challenge, &req, "ignored");
    let expected = h(format!(
        "{}:abc:{}",
        h("u:r:p".into()),
        h("INVITE:sip:bob@b.example".into())
    ));
    assert_eq!(auth.response, expected);
    let text = auth.to_string();
    assert!(!text.contains("cnonce") && !text.contains("nc="), "{text}");
}

/// auth-int hashes the body into HA2.
#[test]
fn auth_int_only_challenge_hashes_the_body() {
    let challenge = Challenge::parse(r#"Digest realm="r", nonce="abc", qop="auth-int""#).unwrap();
    assert_eq!(challenge.preferred_qop(), Some(Qop::AuthInt));
    let pw = Secret::new("p");
    let a = RequestInfo {
        method: "INVITE",
        uri: "sip:b",
        body: b"v=0",
    };
    let b = RequestInfo { body: b"v=1", ..a };
    let ra = compute_response(&challenge, "u", &pw, &a, Some(Qop::AuthInt), "c", 1);
    let rb = compute_response(&challenge, "u", &pw, &b, Some(Qop::AuthInt), "c", 1);
    assert_ne!(ra, rb);
    assert_eq!(
        compute_response(&challenge, "u", &pw, &a, Some(Qop::Auth), "c", 1),
        compute_response(&challenge, "u", &pw, &b, Some(Qop::Auth), "c", 1)
    );
}

#[test]
fn parse_handles_case_whitespace_escapes_and_unknown_params() {
    let c = Challenge::parse(
        "digest  REALM = \"a \\\"b\\\"\" ,nonce=tok/123 , foo=\"bar\", algorithm=sha-256, domain=\"sip:x\"",
    )
    .unwrap();
    assert_eq!(c.realm, "a \"b\"");
    assert_eq!(c.nonce, "tok/123");
    assert_eq!(c.algorithm, Algorithm::Sha256);
    assert_eq!(c.domain.as_deref(), Some("sip:x"));
    assert!(!c.stale);
}

#[test]
fn malformed_challenges_are_typed_errors() {
    assert_eq!(
        Challenge::parse(r#"Basic realm="x""#),
        Err(AuthError::NotDigest("Basic".into()))
    );
    assert_eq!(
        Challenge::parse(r#"Digest nonce="x""#),
        Err(AuthError::MissingParam("realm"))
    );
    assert_eq!(
        Challenge::parse(r#"Digest realm="x""#),
        Err(AuthError::MissingParam("nonce"))
    );
    assert_eq!(
        Challenge::parse(r#"Digest realm="x", nonce="y", algorithm=SHA-512-256"#),
        Err(AuthError::UnsupportedAlgorithm("SHA-512-256".into()))
    );
    assert_eq!(
        Challenge::parse(r#"Digest realm="x", nonce="y", qop="auth-conf""#),
        Err(AuthError::UnsupportedQop("auth-conf".into()))
    );
    assert!(matches!(
        Challenge::parse(r#"Digest realm="x, nonce="y"#),
        Err(AuthError::Malformed { .. })
    ));
    assert!(matches!(
        Challenge::parse(r#"Digest realm "x""#),
        Err(AuthError::Malformed { .. })
    ));
    assert!(matches!(
        Challenge::parse(r#"Digest realm="x" nonce="y""#),
        Err(AuthError::Malformed { at: 17, .. })
    ));
    assert!(matches!(
        Challenge::parse("Digest realm=, nonce=y"),
        Err(AuthError::Malformed { .. })
    ));
    assert!(matches!(
        Challenge::parse("Digest realm=\"x\\"),
        Err(AuthError::Malformed { .. })
    ));
}

#[test]
fn passwords_never_print() {
    let client = DigestClient::new("alice", Secret::new("hunter2"));
    let text = format!("{client:?} {:?}", Secret::new("hunter2"));
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("***"));
}

#[test]
fn challenge_kind_from_status() {
    assert_eq!(ChallengeKind::from_status(401), Some(ChallengeKind::Www));
    assert_eq!(ChallengeKind::from_status(407), Some(ChallengeKind::Proxy));
    assert_eq!(ChallengeKind::from_status(403), None);
    assert_eq!(
        ChallengeKind::Proxy.challenge_header(),
        "Proxy-Authenticate"
    );
}

/// Property tests that assert only that nothing panics.
mod arbitrary_input {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn challenge_parser_never_panics(text in "(\\PC|[\",=\\\\ ])*") {
            let _ = Challenge::parse(&text);
            let _ = Challenge::parse(&format!("Digest {text}"));
        }
    }
}

#[test]
fn authorization_escapes_quotes_in_values() {
    let challenge = Challenge::parse(r#"Digest realm="a\"b", nonce="n""#).unwrap();
    let mut client = DigestClient::new("u\"x", Secret::new("p"));
    let auth = client.authorize(
        ChallengeKind::Www,
        &challenge,
        &RequestInfo {
            method: "REGISTER",
            uri: "sip:a",
            body: b"",
        },
        "c",
    );
    let text = auth.to_string();
    assert!(
        text.starts_with(r#"Digest username="u\"x", realm="a\"b", nonce="n""#),
        "{text}"
    );
    // what we write parses back to the same realm
    let reparsed = Challenge::parse(&text.replace("username=", "x=")).unwrap();
    assert_eq!(reparsed.realm, "a\"b");
}
