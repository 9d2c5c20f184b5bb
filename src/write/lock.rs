//! One writer per output directory: the lock file `DIR/.churnseg.lock`.
//!
//! A command locks every directory it writes into before it reads or writes anything
//! there, and holds the locks until it ends. The lock is an advisory `flock` on the lock
//! file, which the kernel drops when the process ends however it ends (kill -9 too), so
//! a lock left by a process that is gone is simply taken over. The file also names its
//! holder (`pid N`, the command): a second command that finds the lock busy, or finds it
//! naming a process that is still running, fails at once, naming the lock file and that
//! pid. It does not wait. The lock file is removed when the command ends.
//!
//! Within one process a directory is locked once: a second lock on it (a `run` that
//! generates its inputs into its output directory) shares the first.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use super::WriteError;

/// The lock file's name in each locked directory.
pub const LOCK_FILE: &str = ".churnseg.lock";

/// A held lock on one directory; released (and its file removed) when the last handle
/// is dropped.
#[derive(Debug, Clone)]
pub struct DirLock(Arc<Held>);

#[derive(Debug)]
struct Held {
    /// The canonical directory.
    dir: PathBuf,
    /// The lock file.
    path: PathBuf,
    /// Kept open: closing it releases the `flock`.
    _file: File,
}

impl Drop for Held {
    fn drop(&mut self) {
        // Removed while still locked; a process that opened the old file meanwhile sees
        // that the path no longer names it and tries again (see `acquire`).
        let _ = fs::remove_file(&self.path);
    }
}

/// The locks this process holds, by canonical directory.
static HELD: Mutex<Vec<(PathBuf, Weak<Held>)>> = Mutex::new(Vec::new());

/// What an acquisition found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// The directory was free.
    Free,
    /// This process already held it.
    Shared,
    /// The lock file named a process that is gone; it was taken over.
    Stale { pid: u32 },
}

impl DirLock {
    /// The canonical directory.
    pub fn dir(&self) -> &Path {
        &self.0.dir
    }

    /// Locks the existing directory `dir` (canonical) for `command`; `shown` is how the
    /// user named it, for messages.
    pub fn acquire(
        dir: &Path,
        shown: &str,
        command: &str,
    ) -> Result<(DirLock, Acquired), WriteError> {
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        held.retain(|(_, w)| w.strong_count() > 0);
        if let Some(lock) = held
            .iter()
            .find(|(d, _)| d == dir)
            .and_then(|(_, w)| w.upgrade())
        {
            return Ok((DirLock(lock), Acquired::Shared));
        }
        let path = dir.join(LOCK_FILE);
        let me = std::process::id();
        let io = |source| WriteError::Directory {
            dir: shown.to_string(),
            source,
        };
        let locked = |pid: Option<u32>| WriteError::Locked {
            dir: shown.to_string(),
            lock: path.display().to_string(),
            holder: match pid {
                Some(pid) => format!("pid {pid}"),
                None => "pid not yet recorded".to_string(),
            },
        };
        // A few tries: the file can be removed by its holder between our open and lock.
        for _ in 0..16 {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => return Err(locked(holder_pid(&path))),
                // A file system without `flock`: the pid in the file decides alone.
                Err(fs::TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {}
                Err(fs::TryLockError::Error(e)) => return Err(io(e)),
            }
            if !same_file(&file, &path) {
                continue;
            }
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let previous = parse_pid(&text).filter(|&pid| pid != me);
            if let Some(pid) = previous
                && process_alive(pid) == Some(true)
            {
                return Err(locked(Some(pid)));
            }
            file.set_len(0).map_err(io)?;
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            file.write_all(format!("pid {me}\ncommand {command}\n").as_bytes())
                .map_err(io)?;
            let _ = file.sync_all();
            let lock = Arc::new(Held {
                dir: dir.to_path_buf(),
                path: path.clone(),
                _file: file,
            });
            held.push((dir.to_path_buf(), Arc::downgrade(&lock)));
            let found = match previous {
                Some(pid) => Acquired::Stale { pid },
                None => Acquired::Free,
            };
            return Ok((DirLock(lock), found));
        }
        Err(locked(holder_pid(&path)))
    }
}

/// The pid a lock file names (`pid N`, or a bare number).
fn holder_pid(path: &Path) -> Option<u32> {
    parse_pid(&fs::read_to_string(path).ok()?)
}

fn parse_pid(text: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        line.trim()
            .trim_start_matches("pid")
            .trim_start_matches([' ', '=', ':'])
            .trim()
            .parse()
            .ok()
    })
}

/// Whether the open `file` is still the one at `path` (it may have been removed and
/// recreated by another process since it was opened).
fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

/// Whether process `pid` is running: `None` where this cannot be told (no `/proc`). A
/// zombie (killed, not yet reaped by its parent) is not running: it holds no file.
pub fn process_alive(pid: u32) -> Option<bool> {
    if !Path::new("/proc/self").exists() {
        return None;
    }
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Some(Path::new(&format!("/proc/{pid}")).exists());
    };
    // `pid (comm) STATE ...`; comm may hold spaces and parentheses
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    Some(!matches!(state, Some("Z" | "X" | "x")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_are_read_in_either_form() {
        assert_eq!(parse_pid("pid 123\ncommand run\n"), Some(123));
        assert_eq!(parse_pid("4567\n"), Some(4567));
        assert_eq!(parse_pid("pid=89"), Some(89));
        assert_eq!(parse_pid(""), None);
        assert_eq!(parse_pid("command run"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        if process_alive(std::process::id()).is_none() {
            return; // no /proc here
        }
        assert_eq!(process_alive(std::process::id()), Some(true));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert_eq!(process_alive(pid), Some(false));
    }

    #[test]
    fn a_lock_is_shared_within_the_process_and_removed_with_its_last_handle() {
        let dir = tempfile::tempdir().unwrap();
        let canonical = dir.path().canonicalize().unwrap();
        let (a, found) = DirLock::acquire(&canonical, "d", "test").unwrap();
        assert_eq!(found, Acquired::Free);
        let text = fs::read_to_string(canonical.join(LOCK_FILE)).unwrap();
        assert_eq!(parse_pid(&text), Some(std::process::id()));
        let (b, found) = DirLock::acquire(&canonical, "d", "test").unwrap();
        assert_eq!(found, Acquired::Shared);
        drop(a);
        assert!(canonical.join(LOCK_FILE).exists());
        drop(b);
        assert!(!canonical.join(LOCK_FILE).exists());
    }

    #[test]
    fn a_lock_naming_a_dead_process_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let canonical = dir.path().canonicalize().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        fs::write(canonical.join(LOCK_FILE), format!("pid {pid}\n")).unwrap();
        let (_lock, found) = DirLock::acquire(&canonical, "d", "test").unwrap();
        if process_alive(pid).is_some() {
            assert_eq!(found, Acquired::Stale { pid });
        }
    }
}
