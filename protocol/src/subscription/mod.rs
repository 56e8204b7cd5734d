//! SUBSCRIBE/NOTIFY client dialogs (RFC 6665) of a line: BLF (`dialog`),
//! MWI (`message-summary`) and SCA (`call-info`, `line-seize`), with the
//! guide's failover rule.
//!
//! The guide ("Subscriptions and Failover"): subscriptions are invalidated
//! once a REGISTER to a new server is accepted (or when failover begins with
//! `failRegistrationOn=1`), and new subscriptions are triggered on the newly
//! registered server immediately after. So a [`Subscription`] lives on the
//! route that holds the registration: [`Subscription::registered_on`]
//! (re)creates it there, [`Subscription::invalidate`] drops it silently (the
//! old SBC may be gone; nothing is sent to it).
//!
//! Sans-IO like [`crate::call`]: `now` in, [`SubscriptionOutput`]s and
//! [`Subscription::poll_timeout`] out; identifiers from an injected seed;
//! SUBSCRIBE timing from [`crate::transaction::ClientTransaction`] (Timer
//! E/F). Hand-written for the same reason as the call module.
//!
//! # States
//!
//! ```text
//!            registered_on(route)          2xx / NOTIFY active|pending
//!  +------+ ------------------> +-------------+ ----------------> +--------+
//!  | Idle |                     | Subscribing |                   | Active |
//!  +------+ <------------------ +-------------+ <---------------- +--------+
//!     ^      invalidate(reason)   | 401/407: again with    refresh at    |
//!     |                           | credentials            expiry - 32 s |
//!     |                           | failure / Timer F                     |
//!     |                           v                                       |
//!     |                     +-------------+   NOTIFY terminated           |
//!     +---------------------|   Waiting   |   (deactivated, timeout,      |
//!        invalidate         +-------------+    probation, giveup) <-------+
//!                              retry timer        rejected, noresource:
//!                                                 Terminated (no retry)
//! ```
//!
//! # Rules
//!
//! * SUBSCRIBE carries `Event`, `Expires` (requested), `Accept`; the 2xx's
//!   `Expires` is the granted duration. Refresh (in the dialog, CSeq + 1)
//!   at `granted - 32 s`, or at half of `granted` below 64 s (the same rule
//!   as REGISTER refreshes).
//! * A NOTIFY is answered 200 when its tags match (it may come before the
//!   2xx and then sets the dialog's remote tag, target and route set); 481
//!   otherwise, 489 for another event package. `Subscription-State`
//!   `active;expires=N` shortens the subscription; `terminated` ends it and,
//!   per RFC 6665 4.1.3, re-subscribes at once (`deactivated`, `timeout`, no
//!   reason), after `retry-after` (`probation`, `giveup`), or never
//!   (`rejected`, `noresource`, `invariant`).
//! * 401/407: the SUBSCRIBE again with credentials (new branch, CSeq + 1),
//!   once unless `stale`. 423: again with the Min-Expires. 481 to a refresh:
//!   a new subscription at once. Other failures and Timer F: retry after
//!   `retry_after_failure` (or the Retry-After).

mod machine;

pub use machine::{Subscription, SubscriptionState};

use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use crate::call::Transmit;
use crate::json_fields::{duration_ms, duration_secs, lossy_utf8, opt_duration_ms};
use crate::registration::InvalidationReason;
use crate::route::Route;
use crate::transaction::RetryPolicy;

/// The event packages a line subscribes to; serialized as the `Event`
/// header token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventPackage {
    /// BLF (RFC 4235).
    Dialog,
    /// MWI (RFC 3842).
    MessageSummary,
    /// SCA appearance state (Broadworks/Poly shared lines).
    CallInfo,
    /// SCA line seize.
    LineSeize,
}

impl EventPackage {
    /// The `Event` header token.
    pub fn as_str(self) -> &'static str {
        match self {
            EventPackage::Dialog => "dialog",
            EventPackage::MessageSummary => "message-summary",
            EventPackage::CallInfo => "call-info",
            EventPackage::LineSeize => "line-seize",
        }
    }

    /// The `Accept` header of the SUBSCRIBE.
    pub fn accept(self) -> &'static str {
        match self {
            EventPackage::Dialog => "application/dialog-info+xml",
            EventPackage::MessageSummary => "application/simple-message-summary",
            EventPackage::CallInfo | EventPackage::LineSeize => {
                "application/x-broadworks-call-info"
            }
        }
    }
}

/// Per-line subscription settings.
#[derive(Clone, Debug)]
pub struct SubscriptionSettings {
    /// Retransmission and failover policy of the SUBSCRIBE transactions.
    pub policy: RetryPolicy,
    /// Requested `Expires`, seconds.
    pub expires: u32,
    /// Wait before a new attempt after a failure without Retry-After.
    pub retry_after_failure: Duration,
    /// `User-Agent` header value.
    pub user_agent: String,
}

impl Default for SubscriptionSettings {
    fn default() -> Self {
        SubscriptionSettings {
            policy: RetryPolicy::default(),
            expires: 3600,
            retry_after_failure: Duration::from_secs(30),
            user_agent: "sipfleet".into(),
        }
    }
}

/// A state change of a subscription; `name()` is the `event` field of the
/// JSON event stream, the tag of its derived `Serialize`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event")]
pub enum SubscriptionEventKind {
    /// A new subscription was accepted (2xx) on the event's route.
    #[serde(rename = "subscribed")]
    Subscribed {
        /// The `Expires` granted, seconds in JSON.
        #[serde(serialize_with = "duration_secs")]
        expires: Duration,
    },
    /// A refresh was accepted.
    #[serde(rename = "subscription_refreshed")]
    Refreshed {
        /// The `Expires` granted, seconds in JSON.
        #[serde(serialize_with = "duration_secs")]
        expires: Duration,
    },
    /// Dropped because the registration moved (or failover began).
    #[serde(rename = "subscription_invalidated")]
    Invalidated {
        /// Failover began, another registrar took the line, or it unregistered.
        reason: InvalidationReason,
    },
    /// The notifier ended it (NOTIFY `terminated`) or it lapsed.
    #[serde(rename = "subscription_terminated")]
    Terminated {
        /// The `reason` parameter, `expired`, or `unsubscribed`.
        reason: String,
        /// When it will be tried again, if at all.
        #[serde(rename = "retry_in_ms", serialize_with = "opt_duration_ms")]
        retry_in: Option<Duration>,
    },
    /// A SUBSCRIBE failed (final response or no answer).
    #[serde(rename = "subscription_failed")]
    Failed {
        /// The final status; `None` when nothing answered.
        status: Option<u16>,
        /// When the next attempt is made (`retry_in_ms` in JSON).
        #[serde(rename = "retry_in_ms", serialize_with = "duration_ms")]
        retry_in: Duration,
    },
    /// A NOTIFY with state (BLF, MWI, SCA): the body is the package's
    /// document.
    #[serde(rename = "subscription_notify")]
    Notified {
        /// The `Subscription-State` value (`active`, `pending`, ...).
        state: String,
        /// The NOTIFY's `Content-Type`; `None` when it has none.
        content_type: Option<String>,
        /// The package's document (BLF dialog-info, MWI summary, ...).
        #[serde(serialize_with = "lossy_utf8")]
        body: Bytes,
    },
}

impl SubscriptionEventKind {
    /// The JSON `event` name.
    pub fn name(&self) -> &'static str {
        match self {
            SubscriptionEventKind::Subscribed { .. } => "subscribed",
            SubscriptionEventKind::Refreshed { .. } => "subscription_refreshed",
            SubscriptionEventKind::Invalidated { .. } => "subscription_invalidated",
            SubscriptionEventKind::Terminated { .. } => "subscription_terminated",
            SubscriptionEventKind::Failed { .. } => "subscription_failed",
            SubscriptionEventKind::Notified { .. } => "subscription_notify",
        }
    }
}

/// An event with the subscription's package, Call-ID and route; in JSON
/// the kind's fields beside them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SubscriptionEvent {
    /// What changed.
    #[serde(flatten)]
    pub kind: SubscriptionEventKind,
    /// The event package (`dialog`, `message-summary`, ...).
    pub package: EventPackage,
    /// Call-ID of the subscription's dialog.
    pub call_id: String,
    /// The route the subscription lives on; `None` when it has no flow.
    pub route: Option<Route>,
}

/// One output, drained in order with [`Subscription::poll_output`].
#[derive(Clone, Debug, PartialEq)]
pub enum SubscriptionOutput {
    /// A request or response to send.
    Send(Transmit),
    /// A state change to report.
    Event(SubscriptionEvent),
}
