//! containerd's `config.toml` (1.x `version = 2` and 2.x `version = 3` layouts) and
//! `certs.d/<host:port>/hosts.toml`, parsed into what decides how a registry is reached.
