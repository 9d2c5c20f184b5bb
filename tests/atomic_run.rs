//! `run` is one atomic unit, and every command locks what it writes: tests that run the
//! real binary over a good previous night and check that a failed, killed or concurrent
//! run leaves every previous file byte-identical and no temporary file behind.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

mod common;
use common::{churnseg, ok, s};

/// Generated inputs of `subscribers` subscribers, in a directory named `name`.
fn generated(name: &str, subscribers: usize) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("churnseg-atomic-{}", std::process::id()))
        .join(name);
    ok(&[
        "generate",
        "--subscribers",
        &subscribers.to_string(),
        "--days",
        "300",
        "--seed",
        "9",
        "--out",
        s(&dir),
    ]);
    dir
}

/// Small inputs shared by the tests.
fn data() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| generated("data", 1500))
}

/// Inputs whose scored table is larger than a one-tree model, so that a file-size limit
/// between the two stops a run after it has staged the model.
fn wide_data() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| generated("wide", 6000))
}

/// A job in `root`: model in `root/models/t`, outputs in `out` (default `root/out`).
struct Job {
    root: PathBuf,
    config: PathBuf,
    model: PathBuf,
    out: PathBuf,
}

fn job(root: &Path, retrain: &str, out: Option<&Path>) -> Job {
    job_on(data(), 15, root, retrain, out)
}

fn job_on(d: &Path, trees: usize, root: &Path, retrain: &str, out: Option<&Path>) -> Job {
    let model = root.join("models").join("t");
    let out = out.map_or_else(|| root.join("out"), Path::to_path_buf);
    let config = root.join(format!("job-{retrain}.toml"));
    fs::write(
        &config,
        format!(
            "name = \"t\"\n[inputs]\nsubscribers = \"{}\"\ninteractions = \"{}\"\n\
             [train]\nretrain = \"{retrain}\"\nas_of = \"2026-03-01\"\nhorizon_days = 60\n\
             boosting = {{ n_trees = {trees} }}\nmodel = \"{}\"\n[score]\nas_of = \"2026-06-01\"\n[output]\ndir = \"{}\"\nlayout = \"flat\"\n",
            s(&d.join("subscribers.parquet")),
            s(&d.join("interactions.parquet")),
            s(&model),
            s(&out),
        ),
    )
    .unwrap();
    Job {
        root: root.to_path_buf(),
        config,
        model,
        out,
    }
}

/// Every file under `dir` (names relative to it) with its bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.map(Result::unwrap) {
            let path = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(base, &path, out);
            } else {
                let name = path.strip_prefix(base).unwrap().display().to_string();
                out.push((name, fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn names<T>(snap: &[(String, T)]) -> Vec<&str> {
    snap.iter().map(|(n, _)| n.as_str()).collect()
}

/// The previous night: a trained model and a scored output.
fn good_night(root: &Path) -> Job {
    let job = job(root, "always", None);
    ok(&["run", s(&job.config)]);
    job
}

fn run(config: &Path) -> Output {
    churnseg(&["run", s(config)])
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The job's files: model directory and outputs, nothing else.
fn expected_files<T>(snap: &[(String, T)]) {
    assert_eq!(
        names(snap),
        [
            "models/t/manifest.json",
            "models/t/metrics.json",
            "models/t/model.json",
            "out/contacts.csv",
            "out/manifest.json",
            "out/report.html",
            "out/scored.parquet",
        ],
        "no temporary or lock file may be left behind"
    );
}

/// The job's files (model directory and outputs) with the SHA-256 of their bytes.
fn outputs(job: &Job) -> Vec<(String, String)> {
    outputs_with_bytes(job)
        .into_iter()
        .map(|(name, bytes)| (name, churnseg::train::artifact::sha256_hex(&bytes)))
        .collect()
}

fn outputs_with_bytes(job: &Job) -> Vec<(String, Vec<u8>)> {
    let mut snap = Vec::new();
    for (dir, prefix) in [(&job.model, "models/t"), (&job.out, "out")] {
        snap.extend(
            snapshot(dir)
                .into_iter()
                .map(|(n, b)| (format!("{prefix}/{n}"), b)),
        );
    }
    snap.sort();
    snap
}

/// `run` under a file-size limit (KiB, bash's unit for `ulimit -f`); `ignore` makes
/// writes past it fail with an error instead of killing the process (SIGXFSZ).
fn run_with_file_limit(config: &Path, kib: u64, ignore: bool) -> Output {
    let trap = if ignore { "trap '' XFSZ; " } else { "" };
    Command::new("bash")
        .arg("-c")
        .arg(format!("{trap}ulimit -f {kib}; exec \"$0\" -q run \"$1\""))
        .arg(env!("CARGO_BIN_EXE_churnseg"))
        .arg(config)
        .output()
        .unwrap()
}

/// The previous night on [`wide_data`], and a file-size limit (KiB) that lets the next
/// run stage its model but not its scored table.
fn wide_night(root: &Path) -> (Job, u64) {
    let job = job_on(wide_data(), 1, root, "always", None);
    ok(&["run", s(&job.config)]);
    let model = fs::metadata(job.model.join("model.json")).unwrap().len();
    let scored = fs::metadata(job.out.join("scored.parquet")).unwrap().len();
    assert!(
        scored > model + 16 * 1024,
        "the test needs a scored table ({scored} bytes) larger than the model ({model} bytes)"
    );
    (job, (model + scored) / 2 / 1024)
}

#[test]
fn a_run_that_fails_after_staging_its_model_keeps_every_previous_file() {
    let root = tempfile::tempdir().unwrap();
    let (job, limit) = wide_night(root.path());
    let before = outputs(&job);
    expected_files(&before);
    let res = run_with_file_limit(&job.config, limit, true);
    let err = stderr(&res);
    assert_eq!(res.status.code(), Some(2), "{err}");
    assert!(
        err.contains("scored.parquet")
            && err.contains("File too large")
            && !err.contains("panicked"),
        "{err}"
    );
    assert_eq!(outputs(&job), before, "a failed run must replace nothing");
}

#[test]
fn a_run_killed_after_staging_its_model_keeps_every_previous_file_and_the_next_run_cleans_up() {
    let root = tempfile::tempdir().unwrap();
    let (job, limit) = wide_night(root.path());
    let before = outputs(&job);
    // killed (SIGXFSZ) while staging the scored table, after the model
    let res = run_with_file_limit(&job.config, limit, false);
    assert!(!res.status.success(), "{}", stderr(&res));
    let after = outputs(&job);
    let left: Vec<&str> = names(&after)
        .into_iter()
        .filter(|n| n.contains(".tmp-") || n.ends_with("/.churnseg.lock"))
        .collect();
    let kept: Vec<&(String, String)> = after
        .iter()
        .filter(|(n, _)| !left.contains(&n.as_str()))
        .collect();
    assert_eq!(
        kept,
        before.iter().collect::<Vec<_>>(),
        "a killed run must replace nothing"
    );
    for staged in [
        "/.model.json.tmp-",
        "/.metrics.json.tmp-",
        "/.manifest.json.tmp-",
        "/.scored.parquet.tmp-",
    ] {
        assert!(
            left.iter().any(|n| n.contains(staged)),
            "the kill left {staged}: {left:?}"
        );
    }
    let log = ok(&["run", s(&job.config)]);
    assert!(log.contains("removed 3 temporary file(s)"), "{log}");
    assert!(log.contains("removed 1 temporary file(s)"), "{log}");
    let now = outputs(&job);
    expected_files(&now);
    assert_ne!(now, before, "the next run commits its own set");
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(job.out.join("manifest.json")).unwrap()).unwrap();
    let model = fs::read(job.model.join("model.json")).unwrap();
    assert_eq!(
        manifest["model_sha256"],
        churnseg::train::artifact::sha256_hex(&model)
    );
    assert!(
        manifest["recovered"][0]
            .as_str()
            .unwrap()
            .contains("took over the lock"),
        "{manifest:#}"
    );
}

#[test]
fn a_report_path_that_is_a_directory_fails_before_anything_is_replaced() {
    let root = tempfile::tempdir().unwrap();
    let job = good_night(root.path());
    fs::remove_file(job.out.join("report.html")).unwrap();
    fs::create_dir(job.out.join("report.html")).unwrap();
    let before = outputs(&job);
    let res = run(&job.config);
    let err = stderr(&res);
    assert_eq!(res.status.code(), Some(2), "{err}");
    assert!(
        err.contains("report.html") && err.contains("is a directory"),
        "{err}"
    );
    assert!(
        !err.contains("model t-"),
        "nothing may be trained first: {err}"
    );
    assert_eq!(outputs(&job), before);
}

#[test]
fn an_unwritable_output_directory_fails_before_the_model_is_replaced() {
    let root = tempfile::tempdir().unwrap();
    let good = good_night(root.path());
    let before = outputs(&good);
    let blocker = root.path().join("blocker");
    fs::write(&blocker, b"a file where a directory should be").unwrap();
    let job = job(root.path(), "always", Some(&blocker.join("out")));
    let res = run(&job.config);
    let err = stderr(&res);
    assert_eq!(res.status.code(), Some(2), "{err}");
    assert!(
        err.contains("blocker") && err.contains("cannot be written"),
        "{err}"
    );
    assert!(
        !err.contains("model t-"),
        "nothing may be trained first: {err}"
    );
    assert_eq!(outputs(&good), before);

    // without the rights to write (meaningless for root, who may write anyway)
    let mut perms = fs::metadata(&good.out).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
    fs::set_permissions(&good.out, perms.clone()).unwrap();
    let probe = good.out.join("probe");
    let privileged = fs::write(&probe, b"").is_ok();
    let _ = fs::remove_file(&probe);
    if !privileged {
        let res = run(&good.config);
        assert_eq!(res.status.code(), Some(2), "{}", stderr(&res));
        assert!(
            stderr(&res).contains("cannot be written"),
            "{}",
            stderr(&res)
        );
    }
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    fs::set_permissions(&good.out, perms).unwrap();
    assert_eq!(outputs(&good), before);
}

#[test]
fn a_corrupt_model_with_retrain_never_keeps_every_previous_file() {
    let root = tempfile::tempdir().unwrap();
    let good = good_night(root.path());
    let job = job(root.path(), "never", None);
    // the first split points back at its own node: this hung forever before
    let path = job.model.join("model.json");
    let mut model: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let nodes = model["churn"]["gbdt"]["trees"][0]["nodes"]
        .as_array_mut()
        .unwrap();
    let i = nodes.iter().position(|n| !n["split"].is_null()).unwrap();
    nodes[i]["split"]["right"] = serde_json::json!(i);
    fs::write(&path, serde_json::to_vec(&model).unwrap()).unwrap();
    let before = outputs(&good);
    let res = run(&job.config);
    let err = stderr(&res);
    assert_eq!(res.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("churn.gbdt.trees[0].nodes[{i}].split.right"))
            && err.contains("points back at its own node"),
        "{err}"
    );
    assert_eq!(outputs(&good), before);
}

#[test]
fn bad_input_in_the_scoring_snapshot_keeps_every_previous_file() {
    // a model trained with `region`, scored on inputs without it: scoring fails
    let root = tempfile::tempdir().unwrap();
    let good = good_night(root.path());
    let before = outputs(&good);
    let subs = common::read(&data().join("subscribers.parquet"));
    let keep: Vec<usize> = (0..subs.num_columns())
        .filter(|&i| subs.schema().field(i).name() != "region")
        .collect();
    let fewer = root.path().join("fewer.parquet");
    churnseg::write::write_parquet(&fewer, &subs.project(&keep).unwrap()).unwrap();
    let text = fs::read_to_string(&good.config)
        .unwrap()
        .replace(s(&data().join("subscribers.parquet")), s(&fewer))
        .replace("\"always\"", "\"never\"");
    let config = root.path().join("fewer.toml");
    fs::write(&config, text).unwrap();
    let res = run(&config);
    let err = stderr(&res);
    assert_eq!(res.status.code(), Some(2), "{err}");
    assert!(err.contains("region"), "{err}");
    assert_eq!(outputs(&good), before);
}

/// Holds `dir`'s lock as another churnseg would: the file locked, naming this process.
fn hold_lock(dir: &Path) -> fs::File {
    let path = dir.join(".churnseg.lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .unwrap();
    file.try_lock().unwrap();
    writeln!(file, "pid {}", std::process::id()).unwrap();
    file
}

#[test]
fn a_second_run_on_locked_outputs_fails_clearly_and_a_stale_lock_is_taken_over() {
    let root = tempfile::tempdir().unwrap();
    let job = good_night(root.path());
    let before = outputs(&job);

    // held by a live process
    let lock = hold_lock(&job.out);
    let res = run(&job.config);
    let err = stderr(&res);
    assert_eq!(res.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&job.out.join(".churnseg.lock").display().to_string())
            && err.contains(&format!("pid {}", std::process::id())),
        "the message names the lock and its holder: {err}"
    );
    drop(lock);
    fs::remove_file(job.out.join(".churnseg.lock")).unwrap();
    assert_eq!(outputs(&job), before, "the refused run touched nothing");

    // a lock file naming a running process (without flock) is respected too
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    fs::write(
        job.out.join(".churnseg.lock"),
        format!("pid {}\n", sleeper.id()),
    )
    .unwrap();
    let res = run(&job.config);
    assert_eq!(res.status.code(), Some(2), "{}", stderr(&res));
    assert!(stderr(&res).contains(&format!("pid {}", sleeper.id())));
    // once that process is gone its lock is stale and taken over
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    let log = ok(&["run", s(&job.config)]);
    assert!(
        log.contains(&format!(
            "took over the lock of `{}` left by pid {}",
            job.out.display(),
            sleeper.id()
        )),
        "{log}"
    );
    expected_files(&outputs(&job));
}

#[test]
fn two_runs_at_once_never_interleave() {
    let root = tempfile::tempdir().unwrap();
    let job = job(root.path(), "always", None);
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_churnseg"))
            .args(["-q", "run", s(&job.config)])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let codes = [a.status.code(), b.status.code()];
    assert!(codes.contains(&Some(0)), "{} {}", stderr(&a), stderr(&b));
    if let Some(refused) = [&a, &b].into_iter().find(|o| o.status.code() == Some(2)) {
        assert!(
            stderr(refused).contains(".churnseg.lock"),
            "{}",
            stderr(refused)
        );
    } else {
        assert_eq!(codes, [Some(0), Some(0)], "one after the other");
    }
    let snap = outputs(&job);
    expected_files(&snap);
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(job.out.join("manifest.json")).unwrap()).unwrap();
    let model = fs::read(job.model.join("model.json")).unwrap();
    assert_eq!(
        manifest["model_sha256"],
        churnseg::train::artifact::sha256_hex(&model)
    );
    let _ = &job.root;
}

/// An `--out` that is a directory is a part-file output (issue 17: `part-00000.parquet`
/// and `_SUCCESS` last), never a half-written file in its place.
#[test]
fn an_out_that_is_a_directory_gets_part_files() {
    let models = tempfile::tempdir().unwrap();
    let model = good_night(models.path()).model;
    let root = tempfile::tempdir().unwrap();
    let d = data();
    let subscribers = d.join("subscribers.parquet");
    for command in ["features", "score"] {
        let target = root.path().join(command);
        fs::create_dir(&target).unwrap();
        let mut args = vec![
            command,
            "--subscribers",
            s(&subscribers),
            "--as-of",
            "2026-06-01",
            "--out",
            s(&target),
        ];
        if command == "score" {
            args.extend(["--model", s(&model)]);
        }
        let res = churnseg(&args);
        let err = stderr(&res);
        assert_eq!(res.status.code(), Some(0), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            target.join("part-00000.parquet").is_file(),
            "{command}: {err}"
        );
        assert!(target.join("_SUCCESS").is_file(), "{command}: {err}");
    }
}

#[test]
fn score_writes_its_table_and_manifest_as_one_set() {
    let root = tempfile::tempdir().unwrap();
    let job = good_night(root.path());
    let d = data();
    let out = root.path().join("score").join("scored.parquet");
    let score = || common::score(d, "2026-06-01", &job.model, &out);
    assert!(score().status.success());
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(out.with_file_name("scored.manifest.json")).unwrap())
            .unwrap();
    let model = fs::read(job.model.join("model.json")).unwrap();
    assert_eq!(
        manifest["model_sha256"],
        churnseg::train::artifact::sha256_hex(&model)
    );
    let before = snapshot(out.parent().unwrap());
    assert_eq!(names(&before), ["scored.manifest.json", "scored.parquet"]);
    // the lock of the output directory refuses a second writer
    let lock = hold_lock(out.parent().unwrap());
    let res = score();
    assert_eq!(res.status.code(), Some(2));
    assert!(stderr(&res).contains(".churnseg.lock"), "{}", stderr(&res));
    drop(lock);
    fs::remove_file(out.parent().unwrap().join(".churnseg.lock")).unwrap();
    assert_eq!(snapshot(out.parent().unwrap()), before);
}

/// Whether `strace` can trace a child here (it is the tool that kills a run at an exact
/// syscall below).
fn strace_works() -> bool {
    Command::new("strace")
        .args(["-qq", "-o", "/dev/null", "true"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Writes a snapshot back over `root` (removing everything else there first).
fn restore(root: &Path, dirs: &[&Path], snap: &[(String, Vec<u8>)]) {
    for dir in dirs {
        let _ = fs::remove_dir_all(dir);
    }
    for (name, bytes) in snap {
        let path = root.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }
}

#[test]
fn a_run_killed_at_each_step_of_its_commit_leaves_the_old_set_or_the_new_one() {
    if !strace_works() {
        eprintln!("skipped: strace cannot trace a process here");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let job = good_night(root.path());
    let old = outputs(&job);
    let old_bytes = outputs_with_bytes(&job);
    // the same job with another seed: another model, other scores
    let text = fs::read_to_string(&job.config).unwrap();
    let config = root.path().join("other-seed.toml");
    fs::write(&config, format!("seed = 7\n{text}")).unwrap();
    // a commit of this run renames 2 commit records, then its 6 files
    for n in 1..=8 {
        restore(&job.root, &[&job.model, &job.out], &old_bytes);
        let killed = Command::new("strace")
            .args([
                "-f",
                "-qq",
                "-o",
                "/dev/null",
                "-e",
                "trace=rename,renameat,renameat2",
            ])
            .arg("-e")
            .arg(format!(
                "inject=rename,renameat,renameat2:signal=KILL:when={n}"
            ))
            .arg(env!("CARGO_BIN_EXE_churnseg"))
            .args(["-q", "run", s(&config)])
            .output()
            .unwrap();
        assert!(
            !killed.status.success(),
            "rename {n}: the run was not killed"
        );
        // the next command writing into the output directory
        let extra = job.out.join("extra.html");
        ok(&[
            "report",
            "--scored",
            s(&job.out.join("scored.parquet")),
            "--model",
            s(&job.model),
            "--out",
            s(&extra),
        ]);
        fs::remove_file(&extra).unwrap();
        let out_left: Vec<String> = snapshot(&job.out)
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| name.starts_with('.'))
            .collect();
        assert_eq!(out_left, Vec::<String>::new(), "rename {n}: left in out/");
        let now: Vec<(String, String)> = outputs(&job)
            .into_iter()
            .filter(|(name, _)| !name.starts_with("models/t/."))
            .collect();
        if n <= 2 {
            assert_eq!(
                now, old,
                "rename {n}: the record was not complete, nothing may change"
            );
        } else {
            let manifest: serde_json::Value =
                serde_json::from_slice(&fs::read(job.out.join("manifest.json")).unwrap()).unwrap();
            let model_manifest: serde_json::Value =
                serde_json::from_slice(&fs::read(job.model.join("manifest.json")).unwrap())
                    .unwrap();
            let model = fs::read(job.model.join("model.json")).unwrap();
            let sha = churnseg::train::artifact::sha256_hex(&model);
            assert_eq!(
                manifest["config"]["seed"], 7,
                "rename {n}: the new set is in place"
            );
            assert_eq!(manifest["model_sha256"], sha, "rename {n}");
            assert_eq!(model_manifest["model_sha256"], sha, "rename {n}");
            for (name, bytes) in &now {
                let before = old.iter().find(|(o, _)| o == name).map(|(_, b)| b);
                assert_ne!(
                    Some(bytes),
                    before,
                    "rename {n}: {name} is still the old one"
                );
            }
        }
    }
    // whatever was left in the model directory goes with the next run there
    let log = ok(&["run", s(&config)]);
    assert!(!log.contains("panicked"), "{log}");
    expected_files(&outputs(&job));
}
