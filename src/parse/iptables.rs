//! `iptables-save` output (and the `ip_forward` sysctl) of a forwarding hop, parsed into the
//! chains that decide whether a port is forwarded.
