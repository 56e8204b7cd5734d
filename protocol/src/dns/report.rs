//! What the operator hears of DNS trouble (issue 12, item 5).
//!
//! A resolution makes several queries, and some failures are part of the
//! plan: a zone without NAPTR answers NODATA and the plan goes on to SRV, so
//! reporting every negative answer would cry wolf on every healthy start.
//! What is reported:
//! * a server that did not answer or cannot be reached (timeout,
//!   unreachable) and an error response (SERVFAIL, REFUSED, ...): always,
//!   because they are faults of the DNS service itself;
//! * a stale answer served by dynamic cache restore in place of such a
//!   failure (`dns.cache.dynamicRestore.enable=1`, the guide's "Dynamic DNS
//!   Cache Restore"): as a restore, not a failure, with the TTL it is
//!   used for;
//! * a resolution that produced no route at all, whatever the cause
//!   (negative answers included): by the caller, from
//!   [`super::ResolveError`].

use std::time::Duration;

use super::records::{Query, QueryFailure, Resolved};
use crate::route::RouteSource;

/// One thing worth telling about one query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsNote {
    /// The query failed and nothing stood in for it.
    Failed {
        /// The query.
        query: Query,
        /// Why it failed.
        error: QueryFailure,
    },
    /// The query failed and the last good answer was restored for `ttl`.
    Restored {
        /// The query.
        query: Query,
        /// Why it failed.
        error: QueryFailure,
        /// How long the restored answer is used (`dns.cache.dynamicRestore.ttl`).
        ttl: Duration,
    },
}

impl DnsNote {
    /// The query the note is about.
    pub fn query(&self) -> &Query {
        match self {
            DnsNote::Failed { query, .. } | DnsNote::Restored { query, .. } => query,
        }
    }
}

/// The note for a query's network outcome `failure` (`None`: it answered
/// with records) and what the cache made of it (`resolved`), at `now`.
pub fn note_for(
    query: &Query,
    failure: Option<&QueryFailure>,
    resolved: &Result<Resolved, QueryFailure>,
    now: std::time::Instant,
) -> Option<DnsNote> {
    let failure = failure?;
    match resolved {
        Ok(r) if r.source == RouteSource::Restored => Some(DnsNote::Restored {
            query: query.clone(),
            error: failure.clone(),
            ttl: r.expires.saturating_duration_since(now),
        }),
        _ if failure.is_negative() => None,
        _ => Some(DnsNote::Failed {
            query: query.clone(),
            error: failure.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::{Answer, RecordType};
    use std::time::Instant;

    fn resolved(source: RouteSource, now: Instant) -> Result<Resolved, QueryFailure> {
        Ok(Resolved {
            answer: Answer::A(Vec::new()),
            source,
            expires: now + Duration::from_secs(120),
        })
    }

    #[test]
    fn negative_answers_are_part_of_the_plan_server_faults_are_not() {
        let now = Instant::now();
        let q = Query::new("lab.sipfleet.test", RecordType::Naptr);
        let nodata = Err(QueryFailure::NoRecords);
        assert_eq!(
            note_for(&q, Some(&QueryFailure::NoRecords), &nodata, now),
            None
        );
        assert_eq!(
            note_for(&q, Some(&QueryFailure::NxDomain), &nodata, now),
            None
        );
        assert_eq!(
            note_for(&q, None, &resolved(RouteSource::Network, now), now),
            None
        );
        let timeout = Err(QueryFailure::Timeout);
        assert!(matches!(
            note_for(&q, Some(&QueryFailure::Timeout), &timeout, now),
            Some(DnsNote::Failed {
                error: QueryFailure::Timeout,
                ..
            })
        ));
        assert_eq!(
            note_for(
                &q,
                Some(&QueryFailure::Timeout),
                &resolved(RouteSource::Restored, now),
                now
            ),
            Some(DnsNote::Restored {
                query: q.clone(),
                error: QueryFailure::Timeout,
                ttl: Duration::from_secs(120)
            })
        );
        // A static entry standing in is the configuration working, but the
        // server fault is still news.
        assert!(matches!(
            note_for(
                &q,
                Some(&QueryFailure::Timeout),
                &resolved(RouteSource::StaticCache, now),
                now
            ),
            Some(DnsNote::Failed { .. })
        ));
    }
}
