//! `nwfilter explain`'s engine: walks one port's chain IR for one packet
//! with the semantics the kernel applies to what the chosen backend
//! renders, and says what happens, which rule decided it (with the filter
//! rule it came from) and which chains the packet went through.
//!
//! Data flow: a packet description ([`spec::parse`]) or a raw Ethernet
//! frame ([`frame::parse`]) → [`Packet`]; the port's
//! [`nwfilter_compile::ir::TracedProgram`] → [`explain`] →
//! [`Explanation`] (serializable; [`report::text`] for people). Pure: no
//! I/O, nothing printed.

pub mod frame;
pub mod matches;
pub mod packet;
pub mod report;
pub mod source;
pub mod spec;
pub mod walk;

pub use packet::{CtState, Direction, Packet};
pub use walk::{explain, Backend, Explanation, PacketVerdict, RuleRef, SourcePos, Step};
