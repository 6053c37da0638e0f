//! The OCI runtime commands (runc's command line); the work is in the `oci` crate.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use oci::commands::{self, Globals};
use oci::OciError;

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// The bundle directory (default: the current directory).
    #[arg(long, short = 'b')]
    bundle: Option<PathBuf>,
    /// Where to write the pid of the process that stands for the container.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// A Unix socket to send the pty master to (process.terminal).
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility (descriptors beyond stdio are not passed).
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    #[arg(long, hide = true)]
    no_pivot: bool,
    #[arg(long, hide = true)]
    no_new_keyring: bool,
    id: String,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    create: CreateArgs,
    /// Return once started, leaving the container running.
    #[arg(long, short = 'd')]
    detach: bool,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// A JSON file with the process to run (OCI `process`).
    #[arg(long, short = 'p')]
    process: Option<PathBuf>,
    /// Return once the process runs; --pid-file gets the pid that stands for it.
    #[arg(long, short = 'd')]
    detach: bool,
    #[arg(long)]
    pid_file: Option<PathBuf>,
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Give the process a terminal.
    #[arg(long, short = 't')]
    tty: bool,
    /// Working directory.
    #[arg(long)]
    cwd: Option<String>,
    /// KEY=VALUE added to the environment (repeatable).
    #[arg(long, short = 'e')]
    env: Vec<String>,
    /// UID[:GID].
    #[arg(long, short = 'u')]
    user: Option<String>,
    /// Add a capability (CAP_NAME) to the process's bounding, effective, permitted and
    /// ambient sets (repeatable).
    #[arg(long, short = 'c')]
    cap: Vec<String>,
    /// Set no_new_privs for the process.
    #[arg(long)]
    no_new_privs: bool,
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// runc's `update` flags; each overrides the same field of `--resources`.
#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// A JSON file with the `linux.resources` to apply, or `-` for stdin.
    #[arg(long, short = 'r')]
    resources: Option<PathBuf>,
    /// Memory limit (64m, 1g, -1 for none).
    #[arg(long, allow_hyphen_values = true)]
    memory: Option<String>,
    /// Memory plus swap limit (the sandbox never swaps: at least --memory, or -1).
    #[arg(long, allow_hyphen_values = true)]
    memory_swap: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    memory_reservation: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    kernel_memory: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    kernel_memory_tcp: Option<String>,
    /// The most tasks (threads included) the container may have (-1 for none).
    #[arg(long, allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    #[arg(long)]
    cpu_period: Option<u64>,
    #[arg(long, allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    #[arg(long)]
    cpu_share: Option<u64>,
    #[arg(long)]
    cpu_rt_period: Option<u64>,
    #[arg(long, allow_hyphen_values = true)]
    cpu_rt_runtime: Option<i64>,
    #[arg(long)]
    cpuset_cpus: Option<String>,
    #[arg(long)]
    cpuset_mems: Option<String>,
    #[arg(long)]
    blkio_weight: Option<u16>,
    #[arg(long)]
    l3_cache_schema: Option<String>,
    #[arg(long)]
    mem_bw_schema: Option<String>,
    id: String,
}

impl UpdateArgs {
    /// The resources object: `--resources`, then the flags over it.
    fn resources(&self) -> Result<serde_json::Value, OciError> {
        use oci::resources::{parse, parse_bytes, set};
        use serde_json::json;
        let mut r = match &self.resources {
            None => json!({}),
            Some(p) if p.as_os_str() == "-" => {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
                    .map_err(|e| OciError::io("reading the resources from stdin", e))?;
                parse(&bytes, "resources (stdin)")?
            }
            Some(p) => {
                let bytes = std::fs::read(p)
                    .map_err(|e| OciError::io(format!("reading {}", p.display()), e))?;
                parse(&bytes, &p.display().to_string())?
            }
        };
        let sizes = [
            ("memory.limit", &self.memory),
            ("memory.swap", &self.memory_swap),
            ("memory.reservation", &self.memory_reservation),
            ("memory.kernel", &self.kernel_memory),
            ("memory.kernelTCP", &self.kernel_memory_tcp),
        ];
        for (path, v) in sizes {
            if let Some(v) = v {
                set(&mut r, path, json!(parse_bytes(v)?));
            }
        }
        let numbers = [
            ("pids.limit", self.pids_limit.map(|v| json!(v))),
            ("cpu.period", self.cpu_period.map(|v| json!(v))),
            ("cpu.quota", self.cpu_quota.map(|v| json!(v))),
            ("cpu.shares", self.cpu_share.map(|v| json!(v))),
            ("cpu.realtimePeriod", self.cpu_rt_period.map(|v| json!(v))),
            ("cpu.realtimeRuntime", self.cpu_rt_runtime.map(|v| json!(v))),
            ("cpu.cpus", self.cpuset_cpus.as_ref().map(|v| json!(v))),
            ("cpu.mems", self.cpuset_mems.as_ref().map(|v| json!(v))),
            ("blockIO.weight", self.blkio_weight.map(|v| json!(v))),
            (
                "intelRdt.l3CacheSchema",
                self.l3_cache_schema.as_ref().map(|v| json!(v)),
            ),
            (
                "intelRdt.memBwSchema",
                self.mem_bw_schema.as_ref().map(|v| json!(v)),
            ),
        ];
        for (path, v) in numbers {
            if let Some(v) = v {
                set(&mut r, path, v);
            }
        }
        Ok(r)
    }
}

#[derive(Subcommand, Debug)]
pub enum OciCommand {
    /// Create a container from a bundle, stopped before its program runs.
    Create(CreateArgs),
    /// Run the program of a created container.
    Start { id: String },
    /// Create and start a container; without --detach, wait for it and delete it.
    Run(RunArgs),
    /// Print the OCI state of a container.
    State { id: String },
    /// Send a signal (name or number, default TERM) to the container's first process.
    Kill {
        /// To every process of the container.
        #[arg(long, short = 'a')]
        all: bool,
        id: String,
        #[arg(default_value = "TERM")]
        signal: String,
    },
    /// Delete a container (--force: also when it runs).
    Delete {
        #[arg(long, short = 'f')]
        force: bool,
        id: String,
    },
    /// Run another process in a container.
    Exec(ExecArgs),
    /// List the processes of a container.
    Ps {
        #[arg(long, short = 'f', default_value = "table")]
        format: String,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        ps_args: Vec<String>,
    },
    /// List containers.
    List {
        #[arg(long, short = 'f', default_value = "table")]
        format: String,
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Stop every process of a container.
    Pause { id: String },
    /// Continue a paused container.
    Resume { id: String },
    /// Resource use of a container: a stats event every --interval until it stops
    /// (--stats: one sample).
    Events {
        #[arg(long)]
        stats: bool,
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// Print what this runtime supports (JSON).
    Features,
    /// Write a starter config.json.
    Spec {
        #[arg(long, short = 'b')]
        bundle: Option<PathBuf>,
    },
    /// Change a running container's limits: the memory limit and the task limit apply
    /// live; what the sandbox can't enforce (cpu, blkio) is refused, naming it.
    Update(Box<UpdateArgs>),
    /// (internal) The sandbox process of a container.
    #[command(hide = true)]
    Sandbox {
        #[arg(long)]
        bundle: PathBuf,
        #[arg(long)]
        ready_fd: i32,
        #[arg(long)]
        console_socket: Option<PathBuf>,
        id: String,
    },
    /// (internal) The process that stands for a detached exec.
    #[command(hide = true)]
    ExecProxy {
        #[arg(long)]
        ready_fd: i32,
        #[arg(long)]
        request: String,
        #[arg(long)]
        console_socket: Option<PathBuf>,
        id: String,
    },
}

/// Global flags the OCI commands use.
pub struct OciGlobals {
    pub root: PathBuf,
    pub log: Option<PathBuf>,
    pub log_json: bool,
    pub platform: boot::PlatformKind,
    pub total_memory: Option<u64>,
    /// The sandbox process's seccomp filter (`--seccomp`).
    pub seccomp: boot::seccomp::Mode,
    /// Flags for re-executed runsc processes.
    pub args: Vec<OsString>,
}

/// Writes the error line Docker shows the user (the last line of --log) and to stderr.
pub fn log_error(g: &OciGlobals, msg: &str) {
    if let Some(path) = &g.log {
        let time = oci::state::now_rfc3339();
        let line = if g.log_json {
            serde_json::json!({"level": "error", "msg": msg, "time": time}).to_string()
        } else {
            format!("time={time:?} level=error msg={msg:?}")
        };
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
    eprintln!("runsc: {msg}");
}

fn print_json(v: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

fn table(list: &[serde_json::Value]) {
    println!("ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER");
    for c in list {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            c["id"].as_str().unwrap_or(""),
            c["pid"],
            c["status"].as_str().unwrap_or(""),
            c["bundle"].as_str().unwrap_or(""),
            c["created"].as_str().unwrap_or(""),
            c["owner"].as_str().unwrap_or("")
        );
    }
}

fn run_command(g: &OciGlobals, cmd: OciCommand) -> Result<i32, OciError> {
    let exe = std::env::current_exe().map_err(|e| OciError::io("finding runsc", e))?;
    let globals = Globals {
        root: g.root.clone(),
        exe,
        args: g.args.clone(),
    };
    let globals = &globals;
    match cmd {
        OciCommand::Create(a) => {
            commands::create(
                globals,
                &a.id,
                a.bundle.as_deref(),
                a.pid_file.as_deref(),
                a.console_socket.as_deref(),
            )?;
            Ok(0)
        }
        OciCommand::Run(a) => {
            let c = a.create;
            let child = commands::create(
                globals,
                &c.id,
                c.bundle.as_deref(),
                c.pid_file.as_deref(),
                c.console_socket.as_deref(),
            )?;
            if let Err(e) = commands::start(globals, &c.id) {
                let _ = commands::delete(globals, &c.id, true);
                return Err(e);
            }
            if a.detach {
                return Ok(0);
            }
            let status = commands::wait_child(child);
            commands::delete(globals, &c.id, true)?;
            Ok(status)
        }
        OciCommand::Start { id } => commands::start(globals, &id).map(|_| 0),
        OciCommand::State { id } => {
            print_json(&commands::state_of(globals, &id)?);
            Ok(0)
        }
        OciCommand::Kill { all, id, signal } => {
            commands::kill(globals, &id, &signal, all).map(|_| 0)
        }
        OciCommand::Delete { force, id } => commands::delete(globals, &id, force).map(|_| 0),
        OciCommand::Exec(a) => {
            let spec = commands::exec_spec(
                globals,
                &a.id,
                a.process.as_deref(),
                &commands::ExecOverrides {
                    args: &a.args,
                    env: &a.env,
                    cwd: a.cwd.as_deref(),
                    user: a.user.as_deref(),
                    tty: a.tty,
                    caps: &a.cap,
                    no_new_privs: a.no_new_privs,
                },
            )?;
            if a.detach {
                let pid = commands::exec_detached(
                    globals,
                    &a.id,
                    &commands::exec_spec_json(&spec),
                    a.console_socket.as_deref(),
                )?;
                if let Some(p) = &a.pid_file {
                    let tmp = p.with_extension("runsc-tmp");
                    std::fs::write(&tmp, pid.to_string())
                        .and_then(|_| std::fs::rename(&tmp, p))
                        .map_err(|e| OciError::io(format!("writing {}", p.display()), e))?;
                }
                Ok(0)
            } else {
                commands::exec_session(globals, &a.id, &spec, a.console_socket.as_deref(), None)
            }
        }
        OciCommand::Ps { format, id, .. } => {
            let out = commands::ps(globals, &id, format == "json")?;
            println!("{}", out.trim_end());
            Ok(0)
        }
        OciCommand::List { format, quiet } => {
            let list = commands::list(globals)?;
            if quiet {
                for c in &list {
                    println!("{}", c["id"].as_str().unwrap_or(""));
                }
            } else if format == "json" {
                println!("{}", serde_json::Value::Array(list));
            } else {
                table(&list);
            }
            Ok(0)
        }
        OciCommand::Pause { id } => commands::pause(globals, &id, true).map(|_| 0),
        OciCommand::Resume { id } => commands::pause(globals, &id, false).map(|_| 0),
        OciCommand::Events {
            stats,
            interval,
            id,
        } => {
            if stats {
                println!("{}", commands::stats(globals, &id)?);
                return Ok(0);
            }
            let interval = commands::parse_duration(&interval)?;
            commands::events(globals, &id, interval, |ev| {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                writeln!(out, "{ev}")
                    .and_then(|_| out.flush())
                    .map_err(|e| OciError::io("writing an event", e))
            })?;
            Ok(0)
        }
        OciCommand::Features => {
            print_json(&commands::features());
            Ok(0)
        }
        OciCommand::Spec { bundle } => {
            let dir = bundle.unwrap_or_else(|| PathBuf::from("."));
            let path = dir.join("config.json");
            if path.exists() {
                return Err(OciError::State(format!(
                    "File {} exists. Remove it first",
                    path.display()
                )));
            }
            let text = serde_json::to_string_pretty(&commands::spec_template())
                .map_err(|e| OciError::Invalid(e.to_string()))?;
            std::fs::write(&path, text + "\n")
                .map_err(|e| OciError::io(format!("writing {}", path.display()), e))?;
            Ok(0)
        }
        OciCommand::Update(a) => {
            let resources = a.resources()?;
            let now = commands::update(globals, &a.id, &resources)?;
            tracing::info!("update {}: now {now:?}", a.id);
            Ok(0)
        }
        OciCommand::Sandbox {
            bundle,
            ready_fd,
            console_socket,
            id,
        } => Ok(oci::sandbox::main(oci::sandbox::SandboxArgs {
            root: g.root.clone(),
            id,
            bundle,
            ready_fd,
            console_socket,
            platform: g.platform,
            total_memory: g.total_memory,
            seccomp: g.seccomp,
        })),
        OciCommand::ExecProxy {
            ready_fd,
            request,
            console_socket,
            id,
        } => {
            use std::os::fd::FromRawFd;
            // SAFETY: exec handed us this descriptor and nothing else owns it.
            let ready = unsafe { std::os::fd::OwnedFd::from_raw_fd(ready_fd) };
            // SAFETY: F_SETFD on the descriptor we now own.
            unsafe { libc::fcntl(ready_fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            let spec = match commands::exec_spec_from_json(&request) {
                Ok(s) => s,
                Err(e) => {
                    let msg = format!("error:{e}");
                    // SAFETY: writing a buffer to the pipe we own.
                    unsafe { libc::write(ready_fd, msg.as_ptr().cast(), msg.len()) };
                    return Err(e);
                }
            };
            commands::exec_session(globals, &id, &spec, console_socket.as_deref(), Some(ready))
        }
    }
}

/// Runs an OCI command: its exit status (1 after an error, logged as runc logs it).
pub fn run(g: OciGlobals, cmd: OciCommand) -> ExitCode {
    let quiet_errors = matches!(
        cmd,
        OciCommand::Sandbox { .. } | OciCommand::ExecProxy { .. }
    );
    match run_command(&g, cmd) {
        Ok(status) => ExitCode::from(status.clamp(0, 255) as u8),
        Err(e) => {
            if quiet_errors {
                // The caller reports it; stderr here is the container's.
                tracing::debug!("{e}");
            } else {
                log_error(&g, &e.to_string());
            }
            ExitCode::from(1)
        }
    }
}
