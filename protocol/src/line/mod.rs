//! One line (`reg.x`) as the application drives it: the rules that sit
//! between the line's machines (registration, calls, subscriptions, line
//! seize) and the wire. Issue 14 moves the whole line here as one sans-IO
//! machine; this module starts with what every driver needs first: how an
//! incoming request that no dialog claimed is answered.

pub mod incoming;
pub mod routes;
