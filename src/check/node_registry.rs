//! `registry.scheme`, node side: from what a node's containerd version, `config.toml` and
//! `certs.d` say, what containerd will do for the registry, and why a pull will try HTTPS.
