//! The signature catalog as data: every example and counterexample in `checks/*.toml` is a test,
//! every class has examples, and every pattern is read the same by `grep -E`.

use pulldoctor::check::catalog::{Catalog, run_examples};
use pulldoctor::check::classify::Classifier;
use pulldoctor::model::Class;

/// Every `[[example]]` classifies to its class; every `[[counterexample]]` does not.
#[test]
fn every_catalog_example_holds() {
    let classifier = Classifier::new(Catalog::embedded().unwrap()).unwrap();
    let failures = run_examples(&classifier);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every failure class has a signature with at least one example.
#[test]
fn every_class_has_examples() {
    let catalog = Catalog::embedded().unwrap();
    for class in Class::ALL {
        let sig = catalog
            .get(class)
            .unwrap_or_else(|| panic!("no checks/{class}.toml"));
        assert!(!sig.examples.is_empty(), "{class} has no [[example]]");
    }
}

/// GNU grep accepts every failure pattern as an ERE (the benchmark's baseline relies on it).
#[test]
fn patterns_are_posix_ere() {
    let classifier = Classifier::new(Catalog::embedded().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("patterns");
    std::fs::write(&file, classifier.failure_patterns().join("\n") + "\n").unwrap();
    let Ok(out) = std::process::Command::new("grep")
        .args(["-E", "-c", "-f"])
        .arg(&file)
        .arg("/dev/null")
        .output()
    else {
        eprintln!("skipped: grep is not installed");
        return;
    };
    // 1 = no match (the input is empty); 2 = a pattern grep cannot read
    assert_eq!(
        out.status.code(),
        Some(1),
        "grep -E rejected a pattern: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
