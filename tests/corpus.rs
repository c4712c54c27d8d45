//! Accuracy on real text: every sample under `tests/corpus/` (error output people pasted in public
//! issue threads, lab recordings, the source strings of DOMAIN.md) must classify to its labelled
//! class. Prints a per-class table; fails below 95% overall or on any false alarm on benign text.

use pulldoctor::check::catalog::Catalog;
use pulldoctor::check::classify::Classifier;
use pulldoctor::model::Class;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
struct CorpusFile {
    sample: Vec<Sample>,
}

#[derive(Debug, Deserialize)]
struct Sample {
    source: String,
    class: Class,
    text: String,
}

fn corpus_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            corpus_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
}

/// The classifier's class for every corpus sample matches its label (≥ 95%, no false alarms).
#[test]
fn corpus_accuracy() {
    let classifier = Classifier::new(Catalog::embedded().unwrap()).unwrap();
    let mut files = Vec::new();
    corpus_files(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus")),
        &mut files,
    );
    files.sort();
    let mut per_class: BTreeMap<Class, (u32, u32)> = BTreeMap::new();
    let mut wrong = Vec::new();
    let mut false_alarms = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let parsed: CorpusFile =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for s in parsed.sample {
            let got = classifier.classify_text(&s.text);
            let entry = per_class.entry(s.class).or_default();
            entry.1 += 1;
            if got == s.class {
                entry.0 += 1;
            } else {
                if s.class == Class::None {
                    false_alarms += 1;
                }
                wrong.push(format!(
                    "expected {} got {} [{}]\n    {}",
                    s.class,
                    got,
                    s.source,
                    s.text.trim().replace('\n', "\n    ")
                ));
            }
        }
    }
    // Recordings from the lab (tests/lab/record-corpus.sh): real containerd 1.6 journal lines and
    // the CRI errors kubelet would print, listed with their class in index.tsv.
    let lab = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/lab"));
    let index = std::fs::read_to_string(lab.join("index.tsv")).unwrap_or_default();
    let mut samples: Vec<(PathBuf, Class)> = Vec::new();
    for row in index.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        let (Some(file), Some(class)) = (cols.first(), cols.last()) else {
            continue;
        };
        let class: Class = class.parse().unwrap_or_else(|e| panic!("index.tsv: {e}"));
        samples.push((lab.join(file), class));
        let cri = lab.join(file.replace(".log", ".cri-error.txt"));
        if cri.exists() {
            samples.push((cri, class));
        }
    }
    samples.push((lab.join("startup.log"), Class::None));
    for (path, class) in samples {
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let got = classifier.classify_text(&text);
        let entry = per_class.entry(class).or_default();
        entry.1 += 1;
        if got == class {
            entry.0 += 1;
        } else {
            if class == Class::None {
                false_alarms += 1;
            }
            wrong.push(format!("expected {class} got {got} [{}]", path.display()));
        }
    }
    let (ok, total) = per_class
        .values()
        .fold((0, 0), |a, v| (a.0 + v.0, a.1 + v.1));
    println!("class                     correct / total");
    for (class, (c, t)) in &per_class {
        println!("{:<25} {c:>7} / {t}", class.id());
    }
    let accuracy = f64::from(ok) / f64::from(total.max(1));
    println!(
        "overall                   {ok:>7} / {total}  ({:.1}%)",
        accuracy * 100.0
    );
    for w in &wrong {
        println!("{w}");
    }
    assert!(total >= 100, "the corpus has only {total} samples");
    assert_eq!(false_alarms, 0, "false alarms on benign text");
    assert!(
        accuracy >= 0.95,
        "accuracy {:.1}% is below 95%",
        accuracy * 100.0
    );
}
