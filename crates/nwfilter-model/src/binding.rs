//! `<filterbinding>`: one top filter with parameters attached to one port.

use macaddr::MacAddr6;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::filter::FilterRef;
use crate::names::IfName;

/// A `<filterbinding>` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub owner: Owner,
    /// The host-side device of the VM's port (a tap such as `vnet0`).
    pub portdev: IfName,
    /// For macvtap-style ports: the device IP learning listens on.
    pub linkdev: Option<IfName>,
    pub mac: MacAddr6,
    pub filterref: FilterRef,
}

/// The VM owning a binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub name: String,
    pub uuid: Uuid,
}
