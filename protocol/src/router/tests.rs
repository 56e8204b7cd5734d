use super::*;

fn parse(s: &str) -> Message {
    Message::parse(s.replace('\n', "\r\n").into_bytes()).unwrap()
}

fn response(branch: &str, call_id: &str, from_tag: &str) -> Message {
    parse(&format!(
        "SIP/2.0 200 OK\n\
         Via: SIP/2.0/UDP 127.0.0.1:5060;rport=5060;branch={branch}\n\
         From: <sip:1000@example.test>;tag={from_tag}\n\
         To: <sip:1000@example.test>;tag=srv\n\
         Call-ID: {call_id}\n\
         CSeq: 1 REGISTER\n\
         Content-Length: 0\n\n"
    ))
}

fn request(method: &str, user: &str, call_id: &str, to_tag: Option<&str>) -> Message {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    parse(&format!(
        "{method} sip:{user}@127.0.0.1:40000 SIP/2.0\n\
         Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKsrv1\n\
         Max-Forwards: 70\n\
         From: <sip:2000@example.test>;tag=far\n\
         To: <sip:{user}@example.test>{to_tag}\n\
         Call-ID: {call_id}\n\
         CSeq: 7 {method}\n\
         Content-Length: 0\n\n"
    ))
}

fn router() -> Router<u32> {
    let mut r = Router::new();
    r.add_line("5551230001", 1);
    r.add_line("5551230002", 2);
    r.add_line("5551230003", 3);
    r.add_transaction("z9hG4bKl1", 1);
    r.add_transaction("z9hG4bKl2", 2);
    r.add_transaction("z9hG4bKl3", 3);
    r.add_dialog("call-2", "tag-2", 2);
    r
}

fn status(routed: Routed<u32>) -> u16 {
    match routed {
        Routed::Reject(resp) => resp.status().as_u16(),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn responses_go_to_the_owner_of_the_branch() {
    let r = router();
    for (branch, owner) in [("z9hG4bKl1", 1), ("z9hG4bKl2", 2), ("z9hG4bKl3", 3)] {
        assert_eq!(
            r.route(&response(branch, "any", "x")),
            Routed::Deliver(owner)
        );
    }
}

#[test]
fn late_response_falls_back_to_the_dialog() {
    let r = router();
    assert_eq!(
        r.route(&response("z9hG4bKgone", "call-2", "tag-2")),
        Routed::Deliver(2)
    );
    assert_eq!(
        r.route(&response("z9hG4bKgone", "call-9", "tag-2")),
        Routed::Drop(DropReason::StrayResponse)
    );
}

#[test]
fn in_dialog_requests_by_call_id_and_our_tag() {
    let r = router();
    assert_eq!(
        r.route(&request("BYE", "5551230001", "call-2", Some("tag-2"))),
        Routed::Deliver(2)
    );
    let unknown = r.route(&request("BYE", "5551230002", "call-2", Some("tag-x")));
    assert_eq!(status(unknown), 481);
}

#[test]
fn unknown_in_dialog_answer_copies_the_request_identity() {
    let r = router();
    let Routed::Reject(resp) = r.route(&request("INFO", "5551230001", "call-7", Some("tag-7")))
    else {
        panic!("expected a rejection");
    };
    assert_eq!(resp.status().as_u16(), 481);
    let h = resp.headers();
    assert_eq!(h.call_id().unwrap(), "call-7");
    assert_eq!(h.to().unwrap().tag(), Some("tag-7"));
    assert_eq!(h.top_via().unwrap().branch(), Some("z9hG4bKsrv1"));
    assert_eq!(h.cseq().unwrap().method, Method::Info);
}

#[test]
fn out_of_dialog_requests_by_request_uri_user() {
    let r = router();
    for method in ["INVITE", "NOTIFY", "OPTIONS", "MESSAGE"] {
        assert_eq!(
            r.route(&request(method, "5551230003", "c", None)),
            Routed::Deliver(3),
            "{method}"
        );
    }
}

#[test]
fn unknown_user_gets_404_with_a_stable_to_tag() {
    let r = router();
    let first = r.route(&request("INVITE", "5559999999", "c1", None));
    let again = r.route(&request("INVITE", "5559999999", "c1", None));
    let Routed::Reject(resp) = first.clone() else {
        panic!("expected a rejection");
    };
    assert_eq!(resp.status().as_u16(), 404);
    let tag = resp.headers().to().unwrap().tag().map(str::to_owned);
    assert!(tag.is_some());
    assert_eq!(first, again);
}

#[test]
fn unmatched_ack_is_never_answered() {
    let r = router();
    assert_eq!(
        r.route(&request("ACK", "5559999999", "c", None)),
        Routed::Drop(DropReason::UnmatchedAck)
    );
    assert_eq!(
        r.route(&request("ACK", "5551230001", "c", Some("nope"))),
        Routed::Drop(DropReason::UnmatchedAck)
    );
}

#[test]
fn removing_an_owner_forgets_all_its_entries() {
    let mut r = router();
    r.remove_owner(2);
    assert_eq!(r.sizes(), (2, 0, 2));
    assert_eq!(
        r.route(&response("z9hG4bKl2", "call-2", "tag-2")),
        Routed::Drop(DropReason::StrayResponse)
    );
    assert_eq!(
        status(r.route(&request("OPTIONS", "5551230002", "c", None))),
        404
    );
    r.remove_transaction("z9hG4bKl1");
    assert_eq!(
        r.route(&response("z9hG4bKl1", "x", "y")),
        Routed::Drop(DropReason::StrayResponse)
    );
    r.add_dialog("d", "t", 3);
    r.remove_dialog("d", "t");
    assert_eq!(r.sizes(), (1, 0, 2));
}

#[test]
fn request_without_call_id_is_a_400() {
    let r = router();
    let msg = parse(
        "OPTIONS sip:5551230001@127.0.0.1 SIP/2.0\n\
         Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKq\n\
         From: <sip:a@b>;tag=1\n\
         To: <sip:c@d>\n\
         CSeq: 1 OPTIONS\n\
         Content-Length: 0\n\n",
    );
    assert_eq!(status(r.route(&msg)), 400);
}

/// An entry another owner took over stays when the first owner leaves; an
/// owner that leaves twice, or never registered, changes nothing.
#[test]
fn removing_an_owner_spares_entries_another_owner_took_over() {
    let mut r: Router<u64> = Router::new();
    r.add_line("1001", 1);
    r.add_line("1001", 2);
    r.add_transaction("z9hG4bKa", 1);
    r.add_transaction("z9hG4bKa", 1);
    r.add_transaction("z9hG4bKb", 1);
    r.remove_transaction("z9hG4bKb");
    r.add_dialog("c", "t", 1);
    r.remove_owner(1);
    r.remove_owner(1);
    r.remove_owner(9);
    assert_eq!(r.sizes(), (0, 0, 1));
    assert_eq!(
        r.route(&request("OPTIONS", "1001", "c", None)),
        Routed::Deliver(2)
    );
}

/// Only owners with a transaction out are awaiting answers; a final answer
/// (remove_transaction) or leaving the flow ends that.
#[test]
fn owners_awaiting_answers_are_those_with_a_transaction_out() {
    let mut r: Router<u64> = Router::new();
    r.add_line("1001", 1);
    r.add_line("1002", 2);
    r.add_line("1003", 3);
    r.add_transaction("z9hG4bKa", 1);
    r.add_transaction("z9hG4bKb", 2);
    r.add_dialog("c", "t", 3);
    let mut waiting: Vec<u64> = r.owners_awaiting_answers().collect();
    waiting.sort();
    assert_eq!(waiting, vec![1, 2]);
    r.remove_transaction("z9hG4bKa");
    r.remove_owner(2);
    assert_eq!(r.owners_awaiting_answers().count(), 0);
}
