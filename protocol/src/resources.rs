//! The fleet-wide ceiling on media sockets (`sipfleet.sockets.max`).
//!
//! Every RTP socket a call binds holds a [`SocketPermit`] from the fleet's
//! one [`SocketBudget`]; the permit gives its place back when dropped (the
//! call's media ends). When the budget is spent, the call that wanted the
//! socket is refused (503 for an incoming call, an error for an outgoing
//! one) with a `resource_exhausted` event, and the file descriptors left
//! under the process's `RLIMIT_NOFILE` stay for what every line needs:
//! SIP flows, DNS queries, TLS.
//!
//! The budget is shared state (an atomic counter), not I/O: this crate
//! decides, the actors only ask.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// File descriptors kept out of the media budget when it is derived from
/// `RLIMIT_NOFILE`: at least this many, or a quarter of the limit.
pub const SOCKET_RESERVE_MIN: u64 = 64;

/// The ceiling used when `sipfleet.sockets.max` is 0 (the default): the
/// process's open-file limit `nofile` less a reserve for SIP flows, DNS
/// and the rest of the process (`max(64, nofile / 4)`). 1024 gives 768;
/// 300 gives 225; 65536 gives 49152.
pub fn default_socket_max(nofile: u64) -> usize {
    let reserve = SOCKET_RESERVE_MIN.max(nofile / 4);
    usize::try_from(nofile.saturating_sub(reserve)).unwrap_or(usize::MAX)
}

/// The ceiling in force: `configured` (`sipfleet.sockets.max`) when not 0,
/// else [`default_socket_max`] of the open-file limit.
pub fn socket_max(configured: u32, nofile: u64) -> usize {
    match configured {
        0 => default_socket_max(nofile),
        n => usize::try_from(n).unwrap_or(usize::MAX),
    }
}

/// The fleet's media sockets: how many are open and how many may be.
/// Clones share the count.
#[derive(Clone, Debug)]
pub struct SocketBudget {
    open: Arc<AtomicUsize>,
    max: usize,
}

/// The budget was spent: no socket may be opened until a call's media
/// ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the fleet's media sockets are exhausted ({open} of sipfleet.sockets.max={max} open)")]
pub struct SocketsExhausted {
    /// The fleet's limit (`sipfleet.sockets.max`).
    pub max: usize,
    /// Sockets open when the request was refused.
    pub open: usize,
}

/// One socket's place in the budget, given back on drop.
#[derive(Debug)]
pub struct SocketPermit {
    open: Arc<AtomicUsize>,
}

impl Drop for SocketPermit {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl SocketBudget {
    /// A budget of `max` sockets, none open.
    pub fn new(max: usize) -> Self {
        SocketBudget {
            open: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// The limit (`sipfleet.sockets.max`).
    pub fn max(&self) -> usize {
        self.max
    }

    /// Sockets held now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// A place for one more socket, or the error when `max` are open.
    pub fn try_acquire(&self) -> Result<SocketPermit, SocketsExhausted> {
        let max = self.max;
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map(|_| SocketPermit {
                open: self.open.clone(),
            })
            .map_err(|open| SocketsExhausted { max, open })
    }
}

impl Default for SocketBudget {
    /// No practical ceiling (tests, embedding without a fleet).
    fn default() -> Self {
        SocketBudget::new(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_stop_at_the_ceiling_and_come_back_on_drop() {
        let budget = SocketBudget::new(2);
        let shared = budget.clone();
        let a = budget.try_acquire().unwrap();
        let _b = shared.try_acquire().unwrap();
        assert_eq!(budget.open(), 2);
        assert_eq!(
            budget.try_acquire().unwrap_err(),
            SocketsExhausted { max: 2, open: 2 }
        );
        drop(a);
        assert_eq!(shared.open(), 1);
        assert!(budget.try_acquire().is_ok());
        assert_eq!(
            budget.open(),
            1,
            "a permit dropped at once gives its place back"
        );
    }

    #[test]
    fn the_default_ceiling_keeps_a_reserve_under_the_open_file_limit() {
        assert_eq!(default_socket_max(1024), 768);
        assert_eq!(default_socket_max(300), 225);
        assert_eq!(default_socket_max(100), 36);
        assert_eq!(default_socket_max(40), 0);
        assert_eq!(default_socket_max(65536), 49152);
        assert_eq!(socket_max(0, 1024), 768);
        assert_eq!(socket_max(10, 1024), 10);
    }
}
