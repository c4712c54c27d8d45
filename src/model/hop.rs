//! Hops: one forwarding step of a route from the nodes to the registry, and what was seen there.

use serde::{Deserialize, Serialize};

/// What a probe saw at one hop for one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HopVerdict {
    /// The port is forwarded onward.
    Forwards,
    /// A TCP reset or ICMP port-unreachable came back.
    Refused,
    /// ICMP host/admin-prohibited or unreachable came back.
    NoRoute,
    /// Nothing came back before the timeout: a silent drop.
    Timeout,
    /// Not probed, or the probe could not run.
    Unknown,
}

/// One hop of a route for one port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hop {
    /// Position on the route, 1 = the first hop after the node.
    pub index: u32,
    /// The host name from the inventory.
    pub host: String,
    /// The address the previous step dials.
    pub address: String,
    /// The forwarded port.
    pub port: u16,
    /// What the probe saw.
    pub verdict: HopVerdict,
}
