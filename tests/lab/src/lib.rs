//! sipfleet's lab: real SBCs (Kamailio) and DNS (dnsmasq) on loopback,
//! started and torn down by code, for integration tests, end-to-end tests
//! and the README's live demo.
//!
//! ```no_run
//! use sipfleet_lab::{Lab, LabConfig, Mode, Transport};
//!
//! let lab = Lab::start(LabConfig::default())?;          // 3 SBCs + DNS
//! let sbc1 = lab.sbc(1);
//! println!("{} at {}", sbc1.host_name(), sbc1.addr(Transport::Udp));
//! lab.set_mode(1, Mode::Error503 { retry_after: Some(30) })?;
//! for r in lab.received(1)? {
//!     println!("{:?} {} from {:?}", r.t, r.method, r.from_user);
//! }
//! # Ok::<(), sipfleet_lab::LabError>(())
//! // Dropping `lab` kills every process and removes its directory.
//! ```
//!
//! Every lab takes an instance number and its own address block (see
//! [`instance`]), so labs in parallel test threads and the demo lab never
//! collide. Users 1000-1999, 20000-29999 and 100000-199999 register with password
//! [`password_for`]`(user)`; `sip:9xxx@DOMAIN` is answered by the SBC itself.
//! The tools come from `scripts/lab-install`; a missing tool is an error
//! ([`LabError::MissingBinary`]), never a skipped test.

mod certs;
mod dns;
mod error;
pub mod instance;
mod lab;
mod mode;
pub mod observe;
mod process;
mod sbc;
pub mod tools;
mod zone;

pub use dns::{Dns, DnsMode, DnsQuery};
pub use error::{LabError, Result};
pub use lab::{
    is_lab_user, mixed_transport_zone, password_for, sipp_scenario, standard_zone, Lab, LabConfig,
    SbcMemory, ZonePreset, DEFAULT_DOMAIN,
};
pub use mode::{Mode, Transport};
pub use observe::ObservedRequest;
pub use sbc::Sbc;
pub use zone::{naptr_service, srv_name, Record, Zone};
