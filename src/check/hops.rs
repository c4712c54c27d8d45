//! `path.hops`: for every route and port, which hop forwards and which is the first to break,
//! from TCP probes at each vantage and each hop's NAT rules and `ip_forward`.
