//! A command's outputs, committed together or not at all: [`OutputSet`].
//!
//! A command declares every file it may write when it starts ([`OutputSet::begin`]):
//! - a declared path that is a directory is refused, and every destination directory is
//!   created and locked ([`super::lock`]), before any work: an unwritable or busy output
//!   fails the command before it has replaced anything;
//! - an interrupted commit found in one of those directories is finished or undone (see
//!   below), and temporary files (`.NAME.tmp-PID`) that churnseg processes now gone left
//!   there are removed (only names of that form, only regular files, only in the
//!   directories this command writes, only when process PID is no longer running).
//!
//! Each output is then staged: written whole, synced, under its temporary name beside
//! its destination ([`OutputSet::stage_bytes`], [`OutputSet::stage_parquet`]). Nothing
//! visible changes until [`OutputSet::commit`], which runs once everything has succeeded:
//! 1. it writes a commit record `.churnseg-commit.json` (the staged files and their
//!    destinations) into every directory of the set, each copy atomically;
//! 2. it renames each staged file onto its destination, in the order they were staged;
//! 3. it removes the records.
//!
//! **The guarantee** (kill -9 at any moment, or any error): a command that fails or is
//! killed before the last copy of the record is in place has replaced nothing; the
//! previous files are all as they were, and what it staged is removed (on an error at
//! once, after a kill by the next command that writes there). Once the last copy is in
//! place the new set is decided: a command killed during the renames leaves some files
//! new and some old, and the records say so, until the next churnseg command that writes
//! into any of those directories (`run`, `score`, `features`, `train`, `report`,
//! `generate`) finishes the renames first thing, before it reads or writes anything
//! else. Recovery itself can be killed and rerun. A copy of the record missing from one
//! of its directories means the commit never completed (step 1 was interrupted) or had
//! completed (step 3 was interrupted): in both cases the next command removes what is
//! left of it, which replaces nothing. Between such a kill and that next command a reader
//! can see the mix; the presence of `.churnseg-commit.json` tells it so.

use std::ffi::OsString;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use super::file::{StagedFile, WriteError, bytes_file, parent_dir, parquet_file, write_bytes};
use super::lock::{Acquired, DirLock, process_alive};

/// The commit record's name in each directory of a set.
pub const JOURNAL_FILE: &str = ".churnseg-commit.json";

/// One commit, as recorded in each of its directories.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Journal {
    /// The same in every copy: a copy with another id belongs to another commit.
    id: String,
    pid: u32,
    command: String,
    /// Every directory holding a copy, canonical.
    dirs: Vec<PathBuf>,
    /// The renames, in order.
    files: Vec<Rename>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Rename {
    staged: PathBuf,
    target: PathBuf,
}

/// A declared output.
#[derive(Debug)]
struct Target {
    /// As the caller named it.
    shown: PathBuf,
    /// Its directory, canonical.
    dir: PathBuf,
    name: OsString,
}

/// The outputs of one command: declared and locked up front, staged, then committed
/// together (see the module doc). Dropped without a commit, the staged files are removed
/// and the previous outputs stay as they were.
#[derive(Debug)]
pub struct OutputSet {
    command: String,
    targets: Vec<Target>,
    /// Staged files with the index of their target. Declared before `locks`, so that the
    /// files are removed before the locks are released.
    staged: Vec<(usize, StagedFile)>,
    locks: Vec<DirLock>,
    notes: Vec<String>,
    /// Directories `begin` created, deepest first: removed again (when empty) if the set
    /// is dropped without a commit, so a failed first run leaves no trace.
    created: Vec<PathBuf>,
}

impl Drop for OutputSet {
    fn drop(&mut self) {
        if self.created.is_empty() {
            return;
        }
        // the staged files and the locks first, then the directories they were in
        self.staged.clear();
        self.locks.clear();
        for dir in &self.created {
            let _ = fs::remove_dir(dir);
        }
    }
}

impl OutputSet {
    /// Declares the files `command` may write, locks their directories (creating them),
    /// finishes or undoes an interrupted commit there and removes stale temporary files.
    pub fn begin(command: &str, targets: &[&Path]) -> Result<OutputSet, WriteError> {
        let mut declared: Vec<Target> = Vec::with_capacity(targets.len());
        let mut dirs: Vec<(PathBuf, String)> = Vec::new();
        let mut created: Vec<PathBuf> = Vec::new();
        for &path in targets {
            let shown = path.display().to_string();
            if path.is_dir() {
                return Err(WriteError::IsDirectory { path: shown });
            }
            let Some(name) = path.file_name() else {
                return Err(WriteError::NotAFile { path: shown });
            };
            let parent = parent_dir(path);
            let parent_shown = parent.display().to_string();
            let dir_error = |source| WriteError::Directory {
                dir: parent_shown.clone(),
                source,
            };
            if parent.exists() && !parent.is_dir() {
                return Err(dir_error(std::io::Error::other(
                    "it exists and is not a directory",
                )));
            }
            let mut missing = Some(parent.as_path()).filter(|p| !p.as_os_str().is_empty());
            while let Some(d) = missing.filter(|d| !d.exists()) {
                if !created.iter().any(|c: &PathBuf| c == d) {
                    created.push(d.to_path_buf());
                }
                missing = d.parent().filter(|p| !p.as_os_str().is_empty());
            }
            fs::create_dir_all(&parent).map_err(dir_error)?;
            let dir = fs::canonicalize(&parent).map_err(dir_error)?;
            if declared.iter().any(|t| t.dir == dir && t.name == name) {
                return Err(WriteError::Twice { path: shown });
            }
            if !dirs.iter().any(|(d, _)| *d == dir) {
                dirs.push((dir.clone(), parent_shown));
            }
            declared.push(Target {
                shown: path.to_path_buf(),
                dir,
                name: name.to_os_string(),
            });
        }
        // a fixed order, so that two commands locking the same directories meet at the first
        dirs.sort();
        let mut set = OutputSet {
            command: command.to_string(),
            targets: declared,
            staged: Vec::new(),
            locks: Vec::new(),
            notes: Vec::new(),
            // deepest first
            created: {
                created.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
                created
            },
        };
        for (dir, shown) in &dirs {
            set.lock(dir, shown)?;
        }
        for (dir, _) in &dirs {
            set.recover(dir)?;
        }
        for (dir, shown) in &dirs {
            set.remove_stale_temporaries(dir, shown);
        }
        Ok(set)
    }

    /// What opening the outputs found and did (stale locks taken over, an interrupted
    /// commit finished or undone, temporary files removed), one sentence each.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Stages `bytes` as the new content of the declared `target`.
    pub fn stage_bytes(&mut self, target: &Path, bytes: &[u8]) -> Result<(), WriteError> {
        let index = self.declared(target)?;
        let file = bytes_file(target, bytes)?;
        self.push(index, file)
    }

    /// Stages `batch` as the new Parquet file `target` (declared).
    pub fn stage_parquet(&mut self, target: &Path, batch: &RecordBatch) -> Result<(), WriteError> {
        let index = self.declared(target)?;
        let file = parquet_file(target, batch)?;
        self.push(index, file)
    }

    /// Adds a file staged by other means (a [`super::ParquetSink`] written batch by batch)
    /// for its declared target.
    pub fn add(&mut self, file: StagedFile) -> Result<(), WriteError> {
        let index = self.declared(file.target())?;
        self.push(index, file)
    }

    fn declared(&self, target: &Path) -> Result<usize, WriteError> {
        self.targets
            .iter()
            .position(|t| t.shown == target)
            .ok_or_else(|| WriteError::Undeclared {
                path: target.display().to_string(),
            })
    }

    fn push(&mut self, index: usize, file: StagedFile) -> Result<(), WriteError> {
        if self.staged.iter().any(|(i, _)| *i == index) {
            // the earlier staging had the same temporary name, now overwritten
            return Err(WriteError::Twice {
                path: file.target().display().to_string(),
            });
        }
        self.staged.push((index, file));
        Ok(())
    }

    /// Puts every staged file in place, together (see the module doc). Declared files
    /// that were not staged keep their previous content.
    pub fn commit(mut self) -> Result<(), WriteError> {
        // from here on the directories hold (or will hold) the outputs
        self.created.clear();
        let staged = std::mem::take(&mut self.staged);
        if staged.is_empty() {
            return Ok(());
        }
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut files = Vec::with_capacity(staged.len());
        for (index, file) in &staged {
            let target = &self.targets[*index];
            if !dirs.contains(&target.dir) {
                dirs.push(target.dir.clone());
            }
            let temp_name = file.temp().file_name().unwrap_or_default();
            files.push(Rename {
                staged: target.dir.join(temp_name),
                target: target.dir.join(&target.name),
            });
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let journal = Journal {
            id: format!("{}-{nanos}", std::process::id()),
            pid: std::process::id(),
            command: self.command.clone(),
            dirs,
            files,
        };
        // 1. the record in every directory; the commit is decided by the last copy
        let text = serde_json::to_vec_pretty(&journal).unwrap_or_default();
        for (k, dir) in journal.dirs.iter().enumerate() {
            if let Err(e) = write_bytes(&dir.join(JOURNAL_FILE), &text) {
                for done in &journal.dirs[..k] {
                    let _ = fs::remove_file(done.join(JOURNAL_FILE));
                }
                return Err(e); // `staged` drops here: the staged files are removed
            }
        }
        journal.dirs.iter().for_each(|d| sync_dir(d));
        // from here on the staged files belong to the record
        for (_, file) in staged {
            file.disarm();
        }
        // 2. the renames; on an error the record stays for the next command to finish
        let journal_path = journal.dirs[0].join(JOURNAL_FILE);
        apply(&journal).map_err(|message| WriteError::Journal {
            journal: journal_path.display().to_string(),
            message: format!(
                "{message}; the next churnseg command writing into `{}` completes it",
                journal.dirs[0].display()
            ),
        })?;
        // 3. done
        remove_records(&journal);
        Ok(())
    }

    fn lock(&mut self, dir: &Path, shown: &str) -> Result<(), WriteError> {
        if self.locks.iter().any(|l| l.dir() == dir) {
            return Ok(());
        }
        let (lock, found) = DirLock::acquire(dir, shown, &self.command)?;
        if let Acquired::Stale { pid } = found {
            self.notes.push(format!(
                "took over the lock of `{shown}` left by pid {pid}, which is no longer running"
            ));
        }
        self.locks.push(lock);
        Ok(())
    }

    /// Finishes (all copies of its record present) or undoes (a copy missing) a commit
    /// interrupted in `dir`.
    fn recover(&mut self, dir: &Path) -> Result<(), WriteError> {
        let path = dir.join(JOURNAL_FILE);
        if !path.exists() {
            return Ok(());
        }
        let shown = path.display().to_string();
        let journal = read_journal(&path).map_err(|message| WriteError::Journal {
            journal: shown.clone(),
            message: format!(
                "{message}; remove it to give up that commit (its staged files are then removed as stale)"
            ),
        })?;
        // the other directories of that commit are ours for the recovery too
        for other in &journal.dirs {
            if other != dir {
                if !other.is_dir() {
                    continue;
                }
                self.lock(other, &other.display().to_string())?;
            }
        }
        let complete = journal
            .dirs
            .iter()
            .all(|d| read_journal(&d.join(JOURNAL_FILE)).is_ok_and(|copy| copy.id == journal.id));
        let what = format!("`{}` (pid {})", journal.command, journal.pid);
        if complete {
            let renamed = apply(&journal).map_err(|message| WriteError::Journal {
                journal: shown.clone(),
                message,
            })?;
            self.notes.push(format!(
                "finished the commit of {what} that was interrupted: {renamed} of its {} files put in place",
                journal.files.len()
            ));
        } else {
            for file in &journal.files {
                let _ = fs::remove_file(&file.staged);
            }
            self.notes.push(format!(
                "removed what was left of the commit of {what}, which had not completed or had finished: no file replaced"
            ));
        }
        remove_records(&journal);
        Ok(())
    }

    fn remove_stale_temporaries(&mut self, dir: &Path, shown: &str) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let me = std::process::id();
        let mut removed: Vec<String> = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = temporary_pid(&name) else {
                continue;
            };
            if pid == me
                || process_alive(pid) != Some(false)
                || !entry.file_type().is_ok_and(|t| t.is_file())
            {
                continue;
            }
            if fs::remove_file(entry.path()).is_ok() {
                removed.push(name);
            }
        }
        if !removed.is_empty() {
            removed.sort();
            self.notes.push(format!(
                "removed {} temporary file(s) that churnseg processes no longer running left in `{shown}`: {}",
                removed.len(),
                removed.join(", ")
            ));
        }
    }
}

/// The pid in a temporary file's name `.NAME.tmp-PID`.
fn temporary_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let (stem, pid) = rest.rsplit_once(".tmp-")?;
    if stem.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

fn read_journal(path: &Path) -> Result<Journal, String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| format!("it cannot be read: {e}"))
}

/// Does the renames of a decided commit: a staged file already gone whose destination
/// exists was renamed before. Returns how many were renamed now.
fn apply(journal: &Journal) -> Result<usize, String> {
    let mut renamed = 0;
    for file in &journal.files {
        match fs::rename(&file.staged, &file.target) {
            Ok(()) => renamed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && file.target.exists() => {}
            Err(e) => {
                return Err(format!(
                    "renaming `{}` to `{}` failed: {e}",
                    file.staged.display(),
                    file.target.display()
                ));
            }
        }
    }
    journal.dirs.iter().for_each(|d| sync_dir(d));
    Ok(renamed)
}

/// Removes the copies of a commit's record (those of that commit only).
fn remove_records(journal: &Journal) {
    for dir in &journal.dirs {
        let path = dir.join(JOURNAL_FILE);
        if read_journal(&path).is_ok_and(|copy| copy.id == journal.id) {
            let _ = fs::remove_file(&path);
        }
        sync_dir(dir);
    }
}

/// Makes renames in `dir` durable (best effort: power loss, not kill -9, needs it).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Directories `a` and `b` holding `one.txt` and `two.txt`, committed together.
    fn committed(root: &Path) -> [PathBuf; 4] {
        let (a, b) = (root.join("a"), root.join("b"));
        let (a1, b1) = (a.join("one.txt"), b.join("two.txt"));
        let mut set = OutputSet::begin("test", &[&a1, &b1]).unwrap();
        set.stage_bytes(&a1, b"old one").unwrap();
        set.stage_bytes(&b1, b"old two").unwrap();
        set.commit().unwrap();
        [a, b, a1, b1]
    }

    #[test]
    fn temporary_names_are_recognised() {
        assert_eq!(temporary_pid(".scored.parquet.tmp-123"), Some(123));
        assert_eq!(temporary_pid(".churnseg-commit.json.tmp-9"), Some(9));
        assert_eq!(temporary_pid("scored.parquet.tmp-123"), None);
        assert_eq!(temporary_pid(".tmp-123"), None);
        assert_eq!(temporary_pid(".x.tmp-12a"), None);
        assert_eq!(temporary_pid(".x.tmp-"), None);
    }

    #[test]
    fn a_set_is_committed_whole_or_not_at_all() {
        let root = tempfile::tempdir().unwrap();
        let [a, b, a1, b1] = committed(root.path());
        assert_eq!(listing(&a), ["one.txt"]);

        // dropped after staging: nothing replaced, nothing left behind
        let mut set = OutputSet::begin("test", &[&a1, &b1]).unwrap();
        set.stage_bytes(&a1, b"new one").unwrap();
        assert!(a.join(super::super::lock::LOCK_FILE).exists());
        drop(set);
        assert_eq!(fs::read(&a1).unwrap(), b"old one");
        assert_eq!(listing(&a), ["one.txt"]);
        assert_eq!(listing(&b), ["two.txt"]);

        // an undeclared path is refused, and so is a declared directory
        let mut set = OutputSet::begin("test", &[&a1]).unwrap();
        assert!(matches!(
            set.stage_bytes(&b1, b"x"),
            Err(WriteError::Undeclared { .. })
        ));
        drop(set);
        let err = OutputSet::begin("test", &[&a]).unwrap_err();
        assert!(matches!(err, WriteError::IsDirectory { .. }), "{err}");
        assert_eq!(listing(&a), ["one.txt"]);
    }

    /// Stages a commit of new contents and records it as a killed process would have
    /// left it: the record in `with_record` of the directories, nothing renamed.
    fn interrupted(a1: &Path, b1: &Path, with_record: &[&Path]) -> Journal {
        let pid = 4_000_000; // above any pid_max: never running
        let mut files = Vec::new();
        for (target, text) in [(a1, "new one"), (b1, "new two")] {
            let dir = target.parent().unwrap().canonicalize().unwrap();
            let name = target.file_name().unwrap().to_string_lossy().into_owned();
            let staged = dir.join(format!(".{name}.tmp-{pid}"));
            fs::write(&staged, text).unwrap();
            files.push(Rename {
                staged,
                target: dir.join(name),
            });
        }
        let dirs: Vec<PathBuf> = [a1, b1]
            .iter()
            .map(|p| p.parent().unwrap().canonicalize().unwrap())
            .collect();
        let journal = Journal {
            id: "4000000-1".into(),
            pid,
            command: "test".into(),
            dirs,
            files,
        };
        for dir in with_record {
            let text = serde_json::to_vec(&journal).unwrap();
            fs::write(dir.join(JOURNAL_FILE), text).unwrap();
        }
        journal
    }

    #[test]
    fn a_commit_killed_after_its_record_is_finished_by_the_next_command() {
        let root = tempfile::tempdir().unwrap();
        let [a, b, a1, b1] = committed(root.path());
        let journal = interrupted(&a1, &b1, &[&a, &b]);
        // killed after the first rename
        fs::rename(&journal.files[0].staged, &journal.files[0].target).unwrap();
        // the next command writes only into `b`, and finishes the whole commit
        let b2 = b.join("other.txt");
        let set = OutputSet::begin("test", &[&b2]).unwrap();
        assert!(
            set.notes()[0].contains("finished the commit"),
            "{:?}",
            set.notes()
        );
        drop(set);
        assert_eq!(fs::read(&a1).unwrap(), b"new one");
        assert_eq!(fs::read(&b1).unwrap(), b"new two");
        assert_eq!(listing(&a), ["one.txt"]);
        assert_eq!(listing(&b), ["two.txt"]);
    }

    #[test]
    fn a_commit_killed_before_its_record_was_complete_replaces_nothing() {
        let root = tempfile::tempdir().unwrap();
        let [a, b, a1, b1] = committed(root.path());
        interrupted(&a1, &b1, &[&a]);
        let set = OutputSet::begin("test", &[&a1]).unwrap();
        assert!(
            set.notes()[0].contains("no file replaced"),
            "{:?}",
            set.notes()
        );
        drop(set);
        assert_eq!(fs::read(&a1).unwrap(), b"old one");
        assert_eq!(fs::read(&b1).unwrap(), b"old two");
        assert_eq!(listing(&a), ["one.txt"]);
        assert_eq!(listing(&b), ["two.txt"]);
    }

    #[test]
    fn temporaries_of_processes_gone_are_removed_and_others_kept() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("scored.parquet");
        let gone = root.path().join(".scored.parquet.tmp-4000001");
        let alive = root.path().join(format!(".scored.parquet.tmp-{}", 1));
        let foreign = root.path().join(".cache.tmp");
        for p in [&gone, &alive, &foreign] {
            fs::write(p, b"x").unwrap();
        }
        let set = OutputSet::begin("test", &[&target]).unwrap();
        drop(set);
        if process_alive(1).is_none() {
            return; // no /proc: nothing can be told gone
        }
        assert!(!gone.exists());
        assert_eq!(alive.exists(), process_alive(1) == Some(true));
        assert!(foreign.exists());
    }
}
