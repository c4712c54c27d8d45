//! Benchmark: classify a large synthetic containerd journal (real line shapes from the lab
//! recordings, mostly benign, 1% failures) and compare with `grep -E -c -f` given the same
//! patterns, in the same run. Not a timed test: it prints MB/s and the ratio.
//!
//! Run: `cargo test --release --test bench_journal -- --ignored --nocapture`
//! (`PULLDOCTOR_BENCH_MB=1024` by default; set it lower for a quick look).

use pulldoctor::check::catalog::Catalog;
use pulldoctor::check::classify::Classifier;
use std::io::Write as _;
use std::process::Command;
use std::time::Instant;

/// Benign containerd lines as a node writes them all day (shapes from tests/corpus/lab/).
const BENIGN: [&str; 10] = [
    r#"level=info msg="ImageCreate event &ImageCreate{Name:10.88.1.1:5050/root/gition/backend:latest,Labels:map[string]string{io.cri-containerd.image: managed,},XXX_unrecognized:[],}""#,
    r#"level=info msg="PullImage \"10.88.1.1:5050/root/gition/frontend:latest\"""#,
    r#"level=info msg="PullImage \"10.88.1.1:5050/root/gition/frontend:latest\" returns image reference \"sha256:069e9569c05975321696a10c10b09e2c44808b3983ab83ea0b74c32776a47669\"""#,
    r#"level=info msg="stop pulling image 10.88.1.1:5050/root/gition/frontend:latest: active requests=0, bytes read=4187""#,
    r#"level=info msg="CreateContainer within sandbox \"8d1f2c9b7e6a5d4c3b2a19f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4\" for container &ContainerMetadata{Name:api,Attempt:0,}""#,
    r#"level=info msg="StartContainer for \"5b4a39281706f5e4d3c2b1a09f8e7d6c5b48d1f2c9b7e6a5d4c3b2a19f8e7d6c\" returns successfully""#,
    r#"level=info msg="RunPodSandbox for &PodSandboxMetadata{Name:api-6d8f7c9b5d-x2v7q,Uid:2f9c1e0a-7b3d-4c8e-9f1a-6d5e4c3b2a19,Namespace:gition,Attempt:0,} returns sandbox id \"8d1f2c9b7e6a5d4c3b2a19f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4\"""#,
    r#"level=info msg="shim disconnected" id=5b4a39281706f5e4d3c2b1a09f8e7d6c5b48d1f2c9b7e6a5d4c3b2a19f8e7d6c namespace=k8s.io"#,
    r#"level=info msg="cleaning up after shim disconnected" id=5b4a39281706f5e4d3c2b1a09f8e7d6c5b48d1f2c9b7e6a5d4c3b2a19f8e7d6c namespace=k8s.io"#,
    r#"level=info msg="TaskExit event in podsandbox handler container_id:\"8d1f2c9b7e6a\" id:\"8d1f2c9b7e6a\" pid:41234 exited_at:{seconds:1741083121 nanos:118262791}""#,
];

/// Failure lines (verbatim shapes of the lab recordings).
const FAILURES: [&str; 5] = [
    r#"level=info msg="trying next host" error="failed to do request: Head \"https://10.88.1.1:5050/v2/root/gition/backend/manifests/latest\": http: server gave HTTP response to HTTPS client" host="10.88.1.1:5050""#,
    r#"level=error msg="PullImage \"10.88.1.1:5050/root/gition/backend:latest\" failed" error="failed to pull and unpack image \"10.88.1.1:5050/root/gition/backend:latest\": failed to resolve reference \"10.88.1.1:5050/root/gition/backend:latest\": failed to authorize: failed to fetch oauth token: Post \"http://10.88.3.2/jwt/auth\": dial tcp 10.88.3.2:80: connect: no route to host""#,
    r#"level=error msg="PullImage \"10.88.1.1:5050/root/gition/api:latest\" failed" error="rpc error: code = NotFound desc = failed to pull and unpack image \"10.88.1.1:5050/root/gition/api:latest\": failed to resolve reference \"10.88.1.1:5050/root/gition/api:latest\": 10.88.1.1:5050/root/gition/api:latest: not found""#,
    r#"level=error msg="PullImage \"10.88.1.1:5050/root/gition/backend:latest\" failed" error="failed to pull and unpack image \"10.88.1.1:5050/root/gition/backend:latest\": failed to resolve reference \"10.88.1.1:5050/root/gition/backend:latest\": failed to authorize: failed to fetch oauth token: unexpected status: 401 Unauthorized""#,
    r#"level=info msg="trying next host" error="failed to do request: Head \"http://10.88.1.1:5050/v2/root/gition/backend/manifests/latest\": dial tcp 10.88.1.1:5050: connect: connection refused" host="10.88.1.1:5050""#,
];

fn seconds<F: FnOnce()>(f: F) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

/// Throughput of `explain` against `grep -E -c -f` on the same file and patterns.
#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn journal_throughput_vs_grep() {
    let mb: u64 = std::env::var("PULLDOCTOR_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let dir = tempfile::tempdir().unwrap();
    // PULLDOCTOR_BENCH_FILE keeps the generated journal for a closer look (profilers, other tools)
    let path = std::env::var("PULLDOCTOR_BENCH_FILE")
        .map_or_else(|_| dir.path().join("journal.log"), std::path::PathBuf::from);
    let mut file =
        std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).unwrap());
    let (mut written, mut n, mut failures) = (0u64, 0u64, 0u64);
    while written < mb << 20 {
        let host = ["k8s-n1", "k8s-n2", "k8s-n3", "k8s-m"][(n % 4) as usize];
        let body = if n % 100 == 99 {
            failures += 1;
            FAILURES[(n / 100 % 5) as usize]
        } else {
            BENIGN[(n % 10) as usize]
        };
        let (secs, nanos) = (10 * 3600 + n / 2000, n % 1_000_000_000);
        let line = format!(
            "Mar 04 {:02}:{:02}:{:02} {host} containerd[812]: time=\"2025-03-04T{:02}:{:02}:{:02}.{nanos:09}Z\" {body}\n",
            secs / 3600 % 24,
            secs / 60 % 60,
            secs % 60,
            secs / 3600 % 24,
            secs / 60 % 60,
            secs % 60
        );
        file.write_all(line.as_bytes()).unwrap();
        written += line.len() as u64;
        n += 1;
    }
    file.flush().unwrap();
    drop(file);
    let classifier = Classifier::new(Catalog::embedded().unwrap()).unwrap();
    let patterns = dir.path().join("patterns");
    let list = classifier.failure_patterns();
    std::fs::write(&patterns, list.join("\n") + "\n").unwrap();
    // warm the page cache so both read from memory
    let _ = std::fs::read(&path).map(|d| d.len());

    let mut grep_count = String::new();
    let grep_s = seconds(|| {
        let out = Command::new("grep")
            .args(["-E", "-c", "-f"])
            .arg(&patterns)
            .arg(&path)
            .env("LC_ALL", "C")
            .output()
            .expect("grep");
        grep_count = String::from_utf8_lossy(&out.stdout).trim().to_string();
    });
    let mut report = serde_json::Value::Null;
    let ours_s = seconds(|| {
        let out = Command::new(env!("CARGO_BIN_EXE_pulldoctor"))
            .args(["explain", "--json"])
            .arg(&path)
            .output()
            .expect("pulldoctor");
        report = serde_json::from_slice(&out.stdout).expect("report");
    });
    let mb_f = written as f64 / f64::from(1u32 << 20);
    let found = report["inputs"][0]["failures"].as_u64().unwrap_or(0);
    println!(
        "journal: {mb_f:.0} MiB, {n} lines, {failures} failure lines; {} patterns",
        list.len()
    );
    println!(
        "grep -E -c -f (LC_ALL=C): {:>8.1} MB/s  ({grep_s:.2} s, {grep_count} matching lines)",
        mb_f / grep_s
    );
    println!(
        "pulldoctor explain:       {:>8.1} MB/s  ({ours_s:.2} s, {found} failures classified, {} findings)",
        mb_f / ours_s,
        report["findings"].as_array().map_or(0, Vec::len)
    );
    println!("ratio pulldoctor/grep:    {:>8.2}x", grep_s / ours_s);
    assert_eq!(found, failures, "every failure line is classified");
}
