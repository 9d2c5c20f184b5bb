//! Snapshot tests (insta) of the summary every command ends with, on small generated
//! data. Paths, durations and memory vary from run to run and are masked; so are the
//! numbers of the model-dependent commands (train, score, run, report), whose figures
//! move with every model change — there the snapshot holds the shape of the summary.

use std::path::Path;

mod common;
use common::ok as run;

/// Masks durations (`0.03s`) and the peak-memory figure.
fn mask_times(text: &str) -> String {
    let duration = |word: &str| {
        let bare = word.trim_end_matches([',', ')', ';']);
        let is = bare.len() > 1
            && bare.ends_with('s')
            && bare[..bare.len() - 1]
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.');
        if is {
            format!("[t]{}", &word[bare.len()..])
        } else {
            word.to_string()
        }
    };
    text.lines()
        .map(|line| {
            if line.trim_start().starts_with("peak memory") {
                "  peak memory  [memory]".to_string()
            } else {
                line.split(' ').map(duration).collect::<Vec<_>>().join(" ")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn mask(text: &str, dir: &Path) -> String {
    let text = mask_times(&text.replace(dir.to_str().unwrap(), "[dir]"));
    // Model versions (`model-20260301-1a2b3c4d`) carry a digest of the model.
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("model-") {
        out.push_str(&rest[..at]);
        out.push_str("model-[version]");
        rest = rest[at..].trim_start_matches(|c: char| !c.is_whitespace() && c != ')');
    }
    out.push_str(rest);
    out
}

/// Also masks every number: the shape of a model-dependent summary.
fn mask_numbers(text: &str) -> String {
    let mut out = String::new();
    let mut in_number = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push('#');
            }
            in_number = true;
        } else if in_number && c == '.' {
            // part of the number
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

#[test]
fn command_summaries() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let d = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let data = d("data");
    let subs = format!("{data}/subscribers.parquet");
    let events = format!("{data}/interactions.parquet");
    let inputs = ["--subscribers", &subs, "--interactions", &events];

    let text = run(&[
        "generate",
        "--subscribers",
        "400",
        "--days",
        "200",
        "--seed",
        "3",
        "--out",
        &data,
    ]);
    insta::assert_snapshot!("generate", mask(&text, dir));

    let text = run(&[&["validate"][..], &inputs].concat());
    insta::assert_snapshot!("validate", mask(&text, dir));

    let features = d("features.parquet");
    let text = run(&[
        &["features"][..],
        &inputs,
        &["--as-of", "2026-06-01", "--out", &features],
    ]
    .concat());
    insta::assert_snapshot!("features", mask(&text, dir));

    let model = d("model");
    let text = run(&[
        &["train"][..],
        &inputs,
        &[
            "--as-of",
            "2026-03-01",
            "--horizon",
            "60",
            "--trees",
            "20",
            "--out",
            &model,
        ],
    ]
    .concat());
    insta::assert_snapshot!("train", mask_numbers(&mask(&text, dir)));

    let scored = d("scored.parquet");
    let text = run(&[
        &["score"][..],
        &inputs,
        &[
            "--as-of",
            "2026-06-01",
            "--model",
            &model,
            "--budget",
            "500",
            "--out",
            &scored,
        ],
    ]
    .concat());
    insta::assert_snapshot!("score", mask_numbers(&mask(&text, dir)));

    let report = d("report.html");
    let text = run(&[
        "report", "--scored", &scored, "--model", &model, "--out", &report,
    ]);
    insta::assert_snapshot!("report", mask_numbers(&mask(&text, dir)));

    let config = dir.join("job.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"nightly\"\n[inputs]\nsubscribers = \"{subs}\"\ninteractions = \"{events}\"\n\
             [train]\nas_of = \"2026-03-01\"\nhorizon_days = 60\nboosting = {{ n_trees = 20 }}\nmodel = \"{model}\"\nretrain = \"never\"\n\
             [score]\nas_of = \"2026-06-01\"\n[output]\ndir = \"{}\"\n",
            d("out")
        ),
    )
    .unwrap();
    let text = run(&["run", config.to_str().unwrap()]);
    insta::assert_snapshot!("run", mask_numbers(&mask(&text, dir)));
}
