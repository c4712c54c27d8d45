//! Hostile registry servers on loopback (silent, endless header, huge body, malformed challenge,
//! opaque token): what a run must survive in bounded time and memory.

use std::net::TcpListener;
use std::time::Duration;

/// How a hostile registry misbehaves.
#[derive(Clone, Copy, Debug)]
pub enum Hostile {
    /// Accepts and never answers.
    Silent,
    /// Starts a response head and never ends it.
    EndlessHeader,
    /// 401 with a Bearer realm on itself, whose token answer is a 1 GB body.
    HugeBody,
    /// 401 with a `WWW-Authenticate` that cannot be parsed.
    MalformedChallenge,
    /// A realm that hands out a token that is not a JWT; the registry refuses it.
    OpaqueToken,
}

/// Serve `mode` on a loopback port until the process ends (threads are detached).
pub fn hostile(mode: Hostile) -> u16 {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let n = conn.read(&mut buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let plain =
                    head.starts_with("GET") || head.starts_with("HEAD") || head.starts_with("POST");
                let challenge = format!(
                    "Bearer realm=\"http://127.0.0.1:{port}/jwt/auth\",service=\"container_registry\""
                );
                let _ = match mode {
                    Hostile::Silent => {
                        std::thread::sleep(Duration::from_secs(60));
                        Ok(())
                    }
                    Hostile::EndlessHeader => {
                        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\n");
                        let line = format!("X-Filler: {}\r\n", "a".repeat(1000));
                        let mut r = Ok(());
                        for _ in 0..100_000 {
                            r = conn.write_all(line.as_bytes());
                            if r.is_err() {
                                break;
                            }
                        }
                        r
                    }
                    Hostile::HugeBody if head.contains("/jwt/auth") => {
                        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{\"token\":\"");
                        let chunk = vec![b'a'; 1 << 16];
                        let mut r = Ok(());
                        for _ in 0..(1_000_000_000 / (1 << 16)) {
                            r = conn.write_all(&chunk);
                            if r.is_err() {
                                break;
                            }
                        }
                        r
                    }
                    Hostile::MalformedChallenge if plain => conn.write_all(
                        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://127.0.0.1/jwt/auth,service=\r\nContent-Length: 0\r\n\r\n",
                    ),
                    Hostile::OpaqueToken if head.contains("/jwt/auth") && plain => {
                        let body = r#"{"token":"opaque-not-a-jwt"}"#;
                        conn.write_all(format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes())
                    }
                    _ if plain => {
                        let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#;
                        conn.write_all(format!("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {challenge}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes())
                    }
                    // a TLS ClientHello: answer like a plain-HTTP server does
                    _ => conn.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
                };
            });
        }
    });
    port
}
