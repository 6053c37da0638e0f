//! `runsc`: the command line of the sandbox.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

mod image;
mod oci_cli;

/// A secure container runtime: programs run in a KVM guest and their system calls are served
/// by the sentry, a user-space implementation of Linux.
#[derive(Parser, Debug)]
#[command(name = "runsc", version, about, long_about = None, args_override_self = true)]
struct Cli {
    /// Platform that runs application code.
    #[arg(long, global = true, value_enum, default_value_t = PlatformArg::Kvm)]
    platform: PlatformArg,
    /// Enable debug logging.
    #[arg(long, global = true)]
    debug: bool,
    /// Where debug logs go: a directory (a file named runsc.PID.log is created in it) or a
    /// file. Implies --debug.
    #[arg(long, global = true, value_name = "DIR")]
    debug_log: Option<PathBuf>,
    /// Memory the sandbox may use, in bytes or with a K, M or G suffix (default 2G). Only
    /// touched pages cost host memory; a larger size costs a little more start-up time.
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_size)]
    total_memory: Option<u64>,
    /// Where container state lives (OCI commands).
    #[arg(long, global = true, default_value = "/run/runsc")]
    root: PathBuf,
    /// Log file of the OCI commands; errors go there as their last line.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Format of --log: text or json.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Accepted for runc compatibility (no cgroups are made).
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility (true, false or auto).
    #[arg(long, global = true, require_equals = true, num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    /// The sentry's own seccomp filter, loaded before the first guest instruction: enforce
    /// (a host call outside its list stops the sandbox, naming the call), log (the kernel
    /// logs such calls and lets them through) or off.
    #[arg(long, global = true, default_value = "enforce", value_parser = ["enforce", "log", "off"])]
    seccomp: String,
    /// The sentry's Landlock ruleset, applied before the first guest instruction: enforce
    /// (it may open host files only beneath the trees the sandbox was given) or off.
    #[arg(long, global = true, default_value = "enforce", value_parser = ["enforce", "off"])]
    landlock: String,
    #[command(subcommand)]
    command: Command,
}

/// Parses "4096", "64K", "512M" or "2G" into bytes (whole pages, at least 16 MiB).
fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, shift) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 512M or 2G"))?;
    let bytes = n
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{s} is too large"))?;
    if bytes < 16 << 20 || bytes % 4096 != 0 || bytes > 1 << 46 {
        return Err(format!("{s}: must be whole pages between 16M and 64T"));
    }
    Ok(bytes)
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PlatformArg {
    /// Application code runs in guest ring 3 of a KVM virtual machine.
    Kvm,
    /// Application code runs as a host process whose system calls trap (not yet available).
    Systrap,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SyscallPathArg {
    /// The exitless ring served by a polling sentry thread, with the exit as fallback.
    Ring,
    /// Every system call exits to the vCPU's host thread (for comparison).
    Exit,
}

/// `runsc do --network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum NetworkArg {
    Host,
    None,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a program in a new sandbox, with the caller's environment, working directory and
    /// standard streams. Exits with the program's status, or 128+N if signal N killed it.
    Do {
        /// How system calls reach the sentry (benchmarks compare the two).
        #[arg(long, value_enum, default_value_t = SyscallPathArg::Ring, hide = true)]
        syscall_path: SyscallPathArg,
        /// The network: `host` (the caller's network namespace: sockets reach what the
        /// caller reaches; the default) or `none` (a new namespace with only loopback;
        /// needs root or unprivileged user namespaces; the default with --image, as
        /// `docker run --network=none`).
        #[arg(long, value_enum)]
        network: Option<NetworkArg>,
        /// The most tasks (processes and threads) the sandbox may have, as a pids cgroup's
        /// pids.max: fork and clone past it fail with EAGAIN (default: no limit).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        pids_limit: Option<u64>,
        /// Mount the ImgFS image IMG read-only at PATH in the sandbox (PATH is created if
        /// missing). Repeatable; mounted in order.
        #[arg(
            long = "mount-image",
            value_name = "IMG:/PATH",
            value_parser = boot::ImageMount::parse
        )]
        mount_image: Vec<boot::ImageMount>,
        /// Bind-mount the host directory HOSTDIR at PATH in the sandbox, as `docker run -v`:
        /// writes reach HOSTDIR unless `:ro` is given. Repeatable; mounted after the images.
        #[arg(
            long = "volume",
            short = 'v',
            value_name = "HOSTDIR:/PATH[:ro]",
            value_parser = boot::Volume::parse
        )]
        volume: Vec<boot::Volume>,
        /// Run the container image NAME (a name, ID or ID prefix from `runsc image list`) as
        /// Docker runs it: its layers as the root, its entrypoint, command (replaced by
        /// PROGRAM [ARGS] if given), environment, working directory and user.
        #[arg(long, value_name = "NAME|DIGEST")]
        image: Option<String>,
        /// The image store of --image (default: $XDG_DATA_HOME/runsc/images,
        /// /var/lib/runsc/images for root).
        #[arg(long, value_name = "STORE", requires = "image")]
        store: Option<PathBuf>,
        /// The program (a static x86-64 ELF; looked up in $PATH if it has no slash) and its
        /// arguments.
        #[arg(
            required_unless_present = "image",
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "PROGRAM [ARGS]"
        )]
        argv: Vec<OsString>,
    },
    /// Build, inspect and verify ImgFS images (container image layers).
    Image(image::ImageArgs),
    #[command(flatten)]
    Oci(oci_cli::OciCommand),
    /// Print the sentry's system call table.
    Syscalls {
        /// As the Markdown of docs/syscalls.md.
        #[arg(long)]
        markdown: bool,
    },
}

fn init_logging(cli: &Cli) -> anyhow::Result<()> {
    let debug = cli.debug || cli.debug_log.is_some();
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUNSC_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if debug { "debug" } else { "warn" })
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match &cli.debug_log {
        Some(path) => {
            let file_path = if path.is_dir() || path.as_os_str().to_string_lossy().ends_with('/') {
                std::fs::create_dir_all(path)
                    .with_context(|| format!("creating log directory {}", path.display()))?;
                path.join(format!("runsc.{}.log", host_pid()))
            } else {
                path.clone()
            };
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&file_path)
                .with_context(|| format!("opening debug log {}", file_path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .init();
        }
        None if matches!(
            cli.command,
            Command::Oci(
                oci_cli::OciCommand::Sandbox { .. } | oci_cli::OciCommand::ExecProxy { .. }
            )
        ) =>
        {
            // Its stderr is the container's.
            builder.with_writer(std::io::sink).init()
        }
        None => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}

/// This process's pid in the host's pid namespace (the OCI sandbox process is pid 1 of its
/// own): the first of /proc/self/status's NSpid, read while /proc is still the host's.
fn host_pid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|p| p.parse().ok())
        })
        .unwrap_or_else(std::process::id)
}

/// A new container ID: 32 random bytes in hex, as Docker makes them.
fn container_id() -> anyhow::Result<String> {
    use std::io::Read as _;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom for a container ID")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The command line and root file system of `runsc do --image NAME [-- ARGS]`.
fn container(
    name: &str,
    store: Option<PathBuf>,
    args: &[OsString],
) -> anyhow::Result<(Vec<OsString>, boot::RootFs)> {
    let store = image::store_path(store);
    let st = ::image::Store::open(&store)?;
    let rec = st.find(name)?;
    let (layers, index) = st.root_files(&rec)?;
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            a.to_str()
                .map(String::from)
                .with_context(|| format!("{a:?} is not UTF-8"))
        })
        .collect::<anyhow::Result<_>>()?;
    let argv: Vec<OsString> = rec
        .run
        .argv(&args)
        .into_iter()
        .map(OsString::from)
        .collect();
    if argv.is_empty() {
        anyhow::bail!("the image has no entrypoint or command: give one after --");
    }
    // A container ID (random, 64 hex digits) and, as Docker names a container's host, its
    // first 12 digits as the sandbox's host name: uname(2), /etc/hostname, HOSTNAME.
    let id = container_id()?;
    tracing::debug!("container ID {id}");
    let hostname = id[..12].to_string();
    let process = boot::container::ContainerProcess {
        env: rec.run.env.clone(),
        working_dir: rec.run.working_dir.clone(),
        user: rec.run.user.clone(),
        hostname,
    };
    Ok((
        argv,
        boot::RootFs::Image {
            layers,
            index,
            process,
        },
    ))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before any thread starts: the namespace is the calling thread's (see boot::netns).
    if let Command::Do { network, image, .. } = &cli.command {
        // The caller's credentials for the program, before a user namespace changes them.
        boot::confine::remember_caller();
        let none = match network {
            Some(n) => *n == NetworkArg::None,
            None => image.is_some(),
        };
        if none {
            if let Err(e) = boot::netns::isolate_network() {
                eprintln!("runsc: {e}");
                return ExitCode::from(125);
            }
        }
    }
    if let Err(e) = init_logging(&cli) {
        eprintln!("runsc: {e:#}");
        return ExitCode::from(125);
    }
    boot::landlock::set_mode(cli.landlock.parse().expect("clap checked the value"));
    if matches!(cli.command, Command::Do { .. }) {
        // Still single-threaded: the sentry's own namespaces; from here on this is the
        // sentry, pid 1 of its pid namespace, and the process the caller started waits for
        // it (boot::confine).
        boot::confine::enter_for_do(cli.seccomp.parse().expect("clap checked the value"));
    }
    match cli.command {
        Command::Oci(cmd) => {
            let mut args: Vec<OsString> = vec![
                format!(
                    "--platform={}",
                    match cli.platform {
                        PlatformArg::Kvm => "kvm",
                        PlatformArg::Systrap => "systrap",
                    }
                )
                .into(),
                "--root".into(),
                cli.root.clone().into(),
                "--log-format".into(),
                cli.log_format.clone().into(),
            ];
            if let Some(l) = &cli.log {
                args.push("--log".into());
                args.push(l.clone().into());
            }
            if let Some(d) = &cli.debug_log {
                args.push("--debug-log".into());
                args.push(d.clone().into());
            }
            if cli.debug {
                args.push("--debug".into());
            }
            if let Some(m) = cli.total_memory {
                args.push(format!("--total-memory={m}").into());
            }
            args.push(format!("--seccomp={}", cli.seccomp).into());
            args.push(format!("--landlock={}", cli.landlock).into());
            let g = oci_cli::OciGlobals {
                root: cli.root.clone(),
                log: cli.log.clone(),
                log_json: cli.log_format == "json",
                platform: match cli.platform {
                    PlatformArg::Kvm => boot::PlatformKind::Kvm,
                    PlatformArg::Systrap => boot::PlatformKind::Systrap,
                },
                total_memory: cli.total_memory,
                seccomp: cli.seccomp.parse().expect("clap checked the value"),
                args,
            };
            oci_cli::run(g, cmd)
        }
        Command::Image(args) => image::run(args),
        Command::Syscalls { markdown } => {
            if markdown {
                print!("{}", sentry::syscalls::markdown_status());
            } else {
                for s in sentry::syscalls::TABLE {
                    println!("{} {}", s.nr, sentry::syscalls::name(s.nr));
                }
            }
            ExitCode::SUCCESS
        }
        Command::Do {
            syscall_path,
            network: _,
            pids_limit,
            mount_image,
            volume,
            image,
            store,
            argv,
        } => {
            let (argv, rootfs) = match image {
                None => (argv, boot::RootFs::Host),
                Some(name) => match container(&name, store, &argv) {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("runsc: do --image {name}: {e:#}");
                        return ExitCode::from(125);
                    }
                },
            };
            let opts = boot::DoOptions {
                platform: match cli.platform {
                    PlatformArg::Kvm => boot::PlatformKind::Kvm,
                    PlatformArg::Systrap => boot::PlatformKind::Systrap,
                },
                syscall_path: match syscall_path {
                    SyscallPathArg::Ring => platform::SyscallPath::Ring,
                    SyscallPathArg::Exit => platform::SyscallPath::ExitOnly,
                },
                total_memory: cli.total_memory,
                argv,
                image_mounts: mount_image,
                volumes: volume,
                seccomp: cli.seccomp.parse().expect("clap checked the value"),
                pids_limit,
            };
            match boot::run_do_in(opts, rootfs) {
                Ok(status) => ExitCode::from(status as u8),
                Err(e) => {
                    eprintln!("runsc: {e}");
                    ExitCode::from(e.exit_status() as u8)
                }
            }
        }
    }
}
