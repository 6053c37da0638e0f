//! Container state under `--root`: one directory per container (`ROOT/ID/`) holding
//! `state.json` (what the runtime commands need to find the sandbox again), the sandbox's
//! control socket, and nothing else. Commands on one container take turns: each holds an
//! exclusive `flock` on the directory while it works.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::OciError;

/// The OCI lifecycle status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// What `state.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// The sandbox process's host pid (what `--pid-file` got).
    pub pid: i32,
    /// Its start time (field 22 of /proc/PID/stat), so that a recycled pid is not taken
    /// for the sandbox.
    pub start_time: u64,
    pub bundle: PathBuf,
    /// RFC 3339.
    pub created: String,
    pub started: bool,
    pub paused: bool,
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// Checks a container id: what runc accepts (letters, digits, `_ + - .`), not `.` or `..`.
pub fn check_id(id: &str) -> Result<(), OciError> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(OciError::Invalid(format!("invalid container id {id:?}")))
    }
}

/// The directory of container `id`.
pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

/// An exclusive lock on a container's directory, released on drop.
pub struct Locked {
    _dir: File,
}

/// Locks the directory of `id` (waiting for another command on it to finish).
pub fn lock(root: &Path, id: &str) -> Result<Locked, OciError> {
    let d = dir(root, id);
    let f = File::open(&d).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            OciError::NotFound(id.to_string())
        } else {
            OciError::io(format!("opening {}", d.display()), e)
        }
    })?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } < 0 {
        return Err(OciError::io(
            format!("locking {}", d.display()),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(Locked { _dir: f })
}

/// Reads the record of `id`: None while `create` has not written it yet.
pub fn load(root: &Path, id: &str) -> Result<Option<Record>, OciError> {
    let d = dir(root, id);
    if !d.is_dir() {
        return Err(OciError::NotFound(id.to_string()));
    }
    match std::fs::read(d.join("state.json")) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| OciError::Invalid(format!("{}/state.json: {e}", d.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(OciError::io(
            format!("reading {}/state.json", d.display()),
            e,
        )),
    }
}

/// Writes the record atomically (a temporary file renamed over the old one).
pub fn save(root: &Path, rec: &Record) -> Result<(), OciError> {
    let d = dir(root, &rec.id);
    let tmp = d.join("state.json.tmp");
    let bytes = serde_json::to_vec(rec).map_err(|e| OciError::Invalid(e.to_string()))?;
    std::fs::write(&tmp, bytes)
        .map_err(|e| OciError::io(format!("writing {}", tmp.display()), e))?;
    std::fs::rename(&tmp, d.join("state.json"))
        .map_err(|e| OciError::io(format!("writing {}/state.json", d.display()), e))
}

/// Field 22 (start time) and field 3 (state letter) of /proc/PID/stat.
fn proc_stat(pid: i32) -> Option<(u64, char)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((start, state))
}

/// The start time of live process `pid`.
pub fn start_time(pid: i32) -> Option<u64> {
    proc_stat(pid).map(|(t, _)| t)
}

/// Whether the sandbox of `rec` still runs (not ended, not a zombie, not a recycled pid).
pub fn alive(rec: &Record) -> bool {
    matches!(proc_stat(rec.pid), Some((t, s)) if t == rec.start_time && s != 'Z' && s != 'X')
}

/// The status of a container from its record.
pub fn status(rec: Option<&Record>) -> Status {
    match rec {
        None => Status::Creating,
        Some(r) if !alive(r) => Status::Stopped,
        Some(r) if r.paused => Status::Paused,
        Some(r) if r.started => Status::Running,
        Some(_) => Status::Created,
    }
}

/// The OCI state JSON of a container.
pub fn state_json(id: &str, rec: Option<&Record>, bundle: Option<&Path>) -> serde_json::Value {
    let st = status(rec);
    let mut v = serde_json::json!({
        "ociVersion": "1.0.2",
        "id": id,
        "status": st.as_str(),
        "pid": match (st, rec) {
            (Status::Stopped, _) | (_, None) => 0,
            (_, Some(r)) => r.pid,
        },
        "bundle": rec.map(|r| r.bundle.clone()).or(bundle.map(Path::to_path_buf)).unwrap_or_default(),
    });
    if let Some(r) = rec {
        v["created"] = r.created.clone().into();
        v["annotations"] = serde_json::to_value(&r.annotations).unwrap_or_default();
        v["owner"] = "".into();
        v["rootfs"] = serde_json::Value::Null;
    }
    v
}

/// The current time as RFC 3339 (UTC, nanoseconds), as runc prints it.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(check_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "\u{e9}"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn time_format() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 30, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }

    #[test]
    fn own_process_is_alive() {
        let pid = std::process::id() as i32;
        let rec = Record {
            id: "x".into(),
            pid,
            start_time: start_time(pid).unwrap(),
            bundle: "/".into(),
            created: now_rfc3339(),
            started: true,
            paused: false,
            annotations: Default::default(),
        };
        assert!(alive(&rec));
        assert_eq!(status(Some(&rec)), Status::Running);
        let stale = Record {
            start_time: rec.start_time + 1,
            ..rec
        };
        assert_eq!(status(Some(&stale)), Status::Stopped);
    }
}
