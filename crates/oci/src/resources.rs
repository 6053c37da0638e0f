//! `runsc update`: `linux.resources` changed on a live container, as far as a sandbox can
//! enforce them. The sandbox holds two limits of its own: the memory its pages come from
//! (`memory.limit`: past it the guest gets ENOMEM, or is killed on a fault it can't
//! serve, as with the create-time limit) and the most tasks it may have (`pids.limit`,
//! the sentry's pids.max). `memory.swap` is honoured trivially (the sandbox never swaps:
//! memory+swap use is memory use). Everything else (cpu, blockIO, hugepages, ...) has no
//! counterpart in the sentry: an update that changes it is refused, naming each field.
//! A field given with the value the container was created with changes nothing and is
//! accepted: Docker sends every resource of the container with each update.

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::OciError;

/// What an update sets in the sandbox (None: unchanged).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Bytes (whole pages), or [`UNLIMITED`].
    pub memory: Option<i64>,
    /// Tasks, or [`UNLIMITED`].
    pub pids: Option<i64>,
}

/// No limit (runc's -1).
pub const UNLIMITED: i64 = -1;

/// The smallest memory limit the sandbox takes (as at create: the sentry's own pages and a
/// shell must fit).
pub const MIN_MEMORY: i64 = 16 << 20;

/// The limits in force in a sandbox and what it uses (`events --stats`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub memory_limit: u64,
    pub memory_usage: u64,
    pub memory_max_usage: u64,
    /// None: no limit.
    pub pids_limit: Option<u64>,
    pub pids_current: u64,
}

/// The fields `runsc update` can apply; every other one is compared with the container's.
const APPLIED: [&str; 3] = ["memory.limit", "memory.swap", "pids.limit"];

/// A byte count as runc's flags take it (go-units' RAMInBytes): a number with an optional
/// binary suffix (k, m, g, t, p; "b", "ib" accepted), or -1 for no limit.
pub fn parse_bytes(text: &str) -> Result<i64, OciError> {
    let bad = || OciError::Invalid(format!("invalid size: {text:?} (e.g. 64m, 1g, -1)"));
    let t = text.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(UNLIMITED);
    }
    let digits = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let value: f64 = t[..digits].parse().map_err(|_| bad())?;
    let unit = t[digits..].trim();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return Err(bad()),
    };
    let bytes = value * (1u64 << shift) as f64;
    if !(0.0..9.2e18).contains(&bytes) {
        return Err(bad());
    }
    Ok(bytes as i64)
}

/// Parses a `linux.resources` object (`--resources FILE`, or `-` for stdin), naming a field
/// of the wrong shape.
pub fn parse(bytes: &[u8], what: &str) -> Result<Value, OciError> {
    let value: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(bytes)
            .map_err(|e| OciError::Invalid(format!("{what}: invalid JSON: {e}")))?
    };
    check_shape(&value, what)?;
    Ok(value)
}

/// Refuses a resources object oci-spec would not take, naming the field.
fn check_shape(value: &Value, what: &str) -> Result<(), OciError> {
    let _: LinuxResources = serde_path_to_error::deserialize(value.clone()).map_err(|e| {
        let field = e.path().to_string();
        OciError::Invalid(format!("{what}: {field}: {}", e.into_inner()))
    })?;
    Ok(())
}

/// Sets `value` at the dotted `path` of `resources` (runc's flags override the file).
pub fn set(resources: &mut Value, path: &str, value: Value) {
    let mut at = resources;
    for key in path.split('.') {
        if !at.is_object() {
            *at = Value::Object(Default::default());
        }
        at = at
            .as_object_mut()
            .expect("made an object above")
            .entry(key)
            .or_insert(Value::Null);
    }
    *at = value;
}

/// Every leaf of `v` that says something, as (dotted path, value): nulls, zeros, false,
/// empty strings and empty lists are runc's "not set" (Docker sends `cpu.quota: 0` for a
/// container without a CPU quota).
fn leaves(v: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(v, &path, out);
            }
        }
        Value::Null | Value::Bool(false) => {}
        Value::Number(n) if n.as_f64() == Some(0.0) => {}
        Value::String(s) if s.is_empty() => {}
        Value::Array(a) if a.is_empty() => {}
        v => out.push((prefix.to_string(), v.clone())),
    }
}

fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

/// What `update` (the resources object, flags applied) asks of a container created with
/// `created` (its config.json's `linux.resources`): the limits to set, or an error naming
/// every field that can't be applied.
pub fn plan(update: &Value, created: Option<&Value>) -> Result<Limits, OciError> {
    let null = Value::Null;
    let created = created.unwrap_or(&null);
    let mut given = Vec::new();
    leaves(update, "", &mut given);
    let mut was = Vec::new();
    leaves(created, "", &mut was);
    let refused: Vec<String> = given
        .iter()
        // `devices` is the device cgroup's list, which runc's update leaves alone too.
        .filter(|(path, _)| !APPLIED.contains(&path.as_str()) && !path.starts_with("devices"))
        .filter(|(path, v)| !was.iter().any(|(p, w)| p == path && w == v))
        .map(|(path, _)| path.clone())
        .collect();
    if !refused.is_empty() {
        return Err(OciError::Invalid(format!(
            "the sandbox can't apply {}: runsc update changes only memory.limit \
             (--memory), memory.swap (--memory-swap, the sandbox never swaps) and pids.limit \
             (--pids-limit)",
            refused.join(", ")
        )));
    }
    let int = |path: &str| {
        get(update, path)
            .and_then(Value::as_i64)
            .filter(|&n| n != 0)
    };
    // Whole pages, and at least what create takes.
    let memory = int("memory.limit").map(|l| match l {
        l if l < 0 => UNLIMITED,
        l => (l.saturating_add(4095) / 4096 * 4096).max(MIN_MEMORY),
    });
    if let Some(swap) = int("memory.swap").filter(|&s| s > 0) {
        // memory+swap: honoured when it is at least the memory limit (nothing is ever
        // swapped). Below it runc refuses the update too.
        match memory.or_else(|| int("memory.limit")) {
            Some(m) if m > 0 && swap >= m => {}
            Some(m) if m > 0 => {
                return Err(OciError::Invalid(format!(
                    "memory.swap: {swap} is below memory.limit {m}: the memory+swap limit \
                     must be at least the memory limit"
                )))
            }
            _ => {
                return Err(OciError::Invalid(format!(
                    "memory.swap: a memory+swap limit ({swap}) without memory.limit is not \
                     supported: give --memory too"
                )))
            }
        }
    }
    let pids = int("pids.limit").map(|l| if l < 0 { UNLIMITED } else { l });
    Ok(Limits { memory, pids })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_as_runc_reads_them() {
        assert_eq!(parse_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("512kb").unwrap(), 512 << 10);
        assert_eq!(parse_bytes("2MiB").unwrap(), 2 << 20);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert_eq!(parse_bytes("-1").unwrap(), UNLIMITED);
        for bad in ["", "m", "12x", "-5", "1e30"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn docker_s_update_applies_memory_and_pids() {
        // What dockerd 20.10 sends for `docker update --memory 64m --pids-limit 20` on a
        // container made without limits.
        let update = json!({
            "memory": { "limit": 64 << 20 },
            "cpu": { "period": 0, "quota": 0, "cpus": "", "mems": "" },
            "pids": { "limit": 20 },
        });
        assert_eq!(
            plan(&update, None).unwrap(),
            Limits {
                memory: Some(64 << 20),
                pids: Some(20)
            }
        );
        assert_eq!(
            plan(
                &json!({ "memory": { "limit": -1 }, "pids": { "limit": -1 } }),
                None
            )
            .unwrap(),
            Limits {
                memory: Some(UNLIMITED),
                pids: Some(UNLIMITED)
            }
        );
        // Rounded to pages, at least MIN_MEMORY.
        assert_eq!(
            plan(&json!({ "memory": { "limit": 1000 } }), None)
                .unwrap()
                .memory,
            Some(MIN_MEMORY)
        );
        assert_eq!(plan(&json!({}), None).unwrap(), Limits::default());
    }

    #[test]
    fn what_can_t_be_applied_is_refused_by_name() {
        let err = plan(
            &json!({ "cpu": { "quota": 50000, "period": 100000 }, "blockIO": { "weight": 300 } }),
            None,
        )
        .unwrap_err()
        .to_string();
        for field in ["cpu.quota", "cpu.period", "blockIO.weight"] {
            assert!(err.contains(field), "{err}");
        }
        // Unchanged from create: accepted (Docker resends them with every update).
        let created = json!({ "cpu": { "shares": 512 } });
        assert!(plan(
            &json!({ "cpu": { "shares": 512 }, "pids": { "limit": 5 } }),
            Some(&created)
        )
        .is_ok());
        assert!(plan(&json!({ "cpu": { "shares": 1024 } }), Some(&created)).is_err());
        // memory+swap below the memory limit, or alone.
        assert!(plan(
            &json!({ "memory": { "limit": 64 << 20, "swap": 128 << 20 } }),
            None
        )
        .is_ok());
        let err = plan(
            &json!({ "memory": { "limit": 64 << 20, "swap": 32 << 20 } }),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("memory.swap"), "{err}");
        assert!(plan(&json!({ "memory": { "swap": 32 << 20 } }), None).is_err());
        assert!(plan(&json!({ "memory": { "swap": -1 } }), None).is_ok());
    }

    #[test]
    fn a_field_of_the_wrong_shape_is_named() {
        let err = parse(br#"{"pids": {"limit": "many"}}"#, "resources")
            .unwrap_err()
            .to_string();
        assert!(err.contains("pids.limit"), "{err}");
        assert_eq!(parse(b"  ", "resources").unwrap(), json!({}));
    }
}
