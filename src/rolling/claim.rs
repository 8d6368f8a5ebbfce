//! Claiming a job, so that no two processes ever train the same one (docs/protocol.md).
//!
//! Before training job `<id>`, a process creates `RUN/locks/<id>.lock` with an exclusive create
//! (`O_CREAT | O_EXCL`, atomic on local file systems and on NFS v3+) holding its host, pid and a
//! nonce. Whoever creates the file owns the job; everyone else skips it. The owner refreshes the
//! file's modification time every [`HEARTBEAT`] while it trains and removes the file when the job
//! is written (or has failed).
//!
//! A lock is **stale** when its holder is known to be gone: on the same host, when its pid no
//! longer runs (or is a zombie); on another host, when the file has not been refreshed for
//! [`STALE_AFTER`]. A stale lock is taken over by renaming it to a unique name first, so that of
//! several processes seeing the same stale lock only one wins; the winner then checks that what
//! it moved is the lock it judged stale and puts it back otherwise.
//!
//! After creating the lock, the claimant checks again whether the job is finished: a holder that
//! finished and released between the caller's first check and the claim leaves a finished job,
//! which must not be trained again.

use super::jobs::is_finished;
use super::manifest::host;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

/// The folder of a run that holds the job locks.
pub const LOCKS: &str = "locks";
/// How often a holder refreshes its lock's modification time.
pub const HEARTBEAT: Duration = Duration::from_secs(30);
/// A lock of another host that has not been refreshed for this long is stale.
pub const STALE_AFTER: Duration = Duration::from_secs(600);
/// A lock whose contents cannot be read yet (being written) counts as held for this long.
const UNREADABLE_GRACE: Duration = Duration::from_secs(60);

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    /// Unique per claim (time of the claim in ns and the pid), to tell two claims apart.
    pub nonce: String,
}

impl Holder {
    fn me() -> Holder {
        let ns = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Holder {
            host: host(),
            pid: std::process::id(),
            nonce: format!("{ns}-{}", std::process::id()),
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} on {}", self.pid, self.host)
    }
}

/// A job another live process is training.
#[derive(Debug, Clone)]
pub struct HeldBy {
    /// `None` when the lock file is still being written.
    pub holder: Option<Holder>,
    pub lock: PathBuf,
    /// Time since the holder last refreshed the lock.
    pub age: Duration,
}

impl std::fmt::Display for HeldBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.holder {
            Some(h) => write!(f, "{h}")?,
            None => write!(f, "a process that is creating its lock")?,
        }
        write!(
            f,
            " (lock {}, refreshed {} s ago)",
            self.lock.display(),
            self.age.as_secs()
        )
    }
}

pub enum ClaimOutcome {
    /// This process owns the job until the [`Claim`] is dropped.
    Claimed(Claim),
    /// The job is finished (possibly by another process since the caller last looked).
    Finished,
    /// Another live process is training it.
    Held(HeldBy),
}

/// Ownership of one job: the lock file, refreshed by a heartbeat thread, removed on drop.
pub struct Claim {
    path: PathBuf,
    holder: Holder,
    stop: Option<mpsc::Sender<()>>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

impl Claim {
    fn start(path: PathBuf, holder: Holder) -> Claim {
        let (stop, stopped) = mpsc::channel::<()>();
        let beat = path.clone();
        let heartbeat = std::thread::Builder::new()
            .name("job-lock-heartbeat".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(HEARTBEAT) {
                    if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&beat) {
                        let _ = f.set_modified(SystemTime::now());
                    }
                }
            })
            .ok();
        Claim {
            path,
            holder,
            stop: Some(stop),
            heartbeat,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.heartbeat.take() {
            let _ = h.join();
        }
        // Remove the lock only while it is still this claim's.
        if let Ok(Some(h)) = read_holder(&self.path) {
            if h == self.holder {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

pub fn lock_path(run: &Path, id: &str) -> PathBuf {
    run.join(LOCKS).join(format!("{id}.lock"))
}

/// Tries to take job `id` of the run in `run`.
pub fn try_claim(run: &Path, id: &str) -> Result<ClaimOutcome> {
    let dir = run.join(LOCKS);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let path = lock_path(run, id);
    for _ in 0..8 {
        if is_finished(run, id) {
            return Ok(ClaimOutcome::Finished);
        }
        let me = Holder::me();
        if create_lock(&path, &me)? {
            let claim = Claim::start(path, me);
            if is_finished(run, id) {
                return Ok(ClaimOutcome::Finished);
            }
            return Ok(ClaimOutcome::Claimed(claim));
        }
        let age = match modified_age(&path) {
            Some(a) => a,
            None => continue, // released meanwhile: try again
        };
        let holder = match read_holder(&path) {
            Ok(h) => h,
            Err(()) => continue,
        };
        let held = HeldBy {
            holder: holder.clone(),
            lock: path.clone(),
            age,
        };
        if !is_stale(holder.as_ref(), age) {
            return Ok(ClaimOutcome::Held(held));
        }
        // Take the stale lock over: only one of several processes can rename it away.
        let grave = dir.join(format!(".{id}.lock.stale-{}", Holder::me().nonce));
        match std::fs::rename(&path, &grave) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&path, e)),
        }
        let moved = read_holder(&grave).ok().flatten();
        if moved != holder {
            // Someone replaced the stale lock with a live one between our read and the rename:
            // put it back (unless yet another lock appeared) and leave the job to its holder.
            let _ = std::fs::hard_link(&grave, &path);
            let _ = std::fs::remove_file(&grave);
            return Ok(ClaimOutcome::Held(HeldBy {
                holder: moved,
                ..held
            }));
        }
        let _ = std::fs::remove_file(&grave);
        eprintln!(
            "note: job {id}: took over the stale lock of {} (the process is gone)",
            holder.map_or("an unknown process".to_string(), |h| h.to_string())
        );
    }
    Err(Error::Data(format!(
        "job {id}: its lock {} keeps changing hands; another process is claiming it at the same time, run again",
        path.display()
    )))
}

/// Creates the lock file exclusively with `me` in it; false if it exists.
fn create_lock(path: &Path, me: &Holder) -> Result<bool> {
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(Error::io(path, e)),
    };
    let json = serde_json::to_vec(me).expect("a holder serializes");
    let written = f.write_all(&json).and_then(|()| f.sync_all());
    if let Err(e) = written {
        drop(f);
        let _ = std::fs::remove_file(path);
        return Err(Error::io(path, e));
    }
    Ok(true)
}

/// The holder named in a lock file: `Ok(None)` when it cannot be parsed (being written, or
/// damaged), `Err` when the file is gone.
fn read_holder(path: &Path) -> std::result::Result<Option<Holder>, ()> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(_) => Err(()),
    }
}

fn modified_age(path: &Path) -> Option<Duration> {
    let m = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(
        SystemTime::now()
            .duration_since(m)
            .unwrap_or(Duration::ZERO),
    )
}

fn is_stale(holder: Option<&Holder>, age: Duration) -> bool {
    let Some(h) = holder else {
        return age > UNREADABLE_GRACE;
    };
    if h.host == host() {
        if h.pid == std::process::id() {
            // Not a claim of this process (it would not ask): a process before it with the same
            // pid (a container restarted, a reboot).
            return true;
        }
        if let Some(alive) = crate::util::system::pid_alive(h.pid) {
            return !alive;
        }
    }
    age > STALE_AFTER
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_claim_at_a_time_and_stale_locks_are_taken_over() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path();
        std::fs::create_dir_all(run.join("jobs")).unwrap();
        let a = match try_claim(run, "v2-w000-s00").unwrap() {
            ClaimOutcome::Claimed(c) => c,
            _ => panic!("first claim must succeed"),
        };
        assert!(a.path().is_file());
        let mut lock: Holder = serde_json::from_slice(&std::fs::read(a.path()).unwrap()).unwrap();
        let path = a.path().to_path_buf();
        drop(a);
        assert!(!path.exists(), "the lock is removed when the claim ends");
        // The same job held by another live process of this host.
        let mut sleeper = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        lock.pid = sleeper.id();
        lock.nonce = "other".into();
        std::fs::write(&path, serde_json::to_vec(&lock).unwrap()).unwrap();
        match try_claim(run, "v2-w000-s00").unwrap() {
            ClaimOutcome::Held(h) => assert_eq!(h.holder.unwrap().pid, sleeper.id()),
            _ => panic!("a lock of a live process must be respected"),
        }
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
        match try_claim(run, "v2-w000-s00").unwrap() {
            ClaimOutcome::Claimed(c) => drop(c),
            _ => panic!("a lock whose process is gone is stale"),
        }
        // Another host's lock: stale only once it has not been refreshed for STALE_AFTER.
        lock.host = "elsewhere".into();
        std::fs::write(&path, serde_json::to_vec(&lock).unwrap()).unwrap();
        assert!(matches!(
            try_claim(run, "v2-w000-s00").unwrap(),
            ClaimOutcome::Held(_)
        ));
        let old = SystemTime::now() - STALE_AFTER - Duration::from_secs(5);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(matches!(
            try_claim(run, "v2-w000-s00").unwrap(),
            ClaimOutcome::Claimed(_)
        ));
        // A finished job is never claimed.
        std::fs::create_dir_all(run.join("jobs/v2-w000-s01")).unwrap();
        std::fs::write(run.join("jobs/v2-w000-s01/job.json"), b"{}").unwrap();
        assert!(matches!(
            try_claim(run, "v2-w000-s01").unwrap(),
            ClaimOutcome::Finished
        ));
        let leftovers: Vec<_> = std::fs::read_dir(run.join(LOCKS))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
