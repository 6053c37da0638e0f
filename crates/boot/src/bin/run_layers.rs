//! `run_layers INDEX LAYER... -- PROGRAM [ARGS...]`: runs a program on a ContainerFS root
//! (see `boot::run_layers_from_args`). Used by the boot tests and the benchmarks until the
//! CLI has its own way to run a layer stack.

fn main() {
    let args = std::env::args_os().skip(1).collect();
    let status = match boot::run_layers_from_args(args) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("run_layers: {e}");
            e.exit_status()
        }
    };
    std::process::exit(status);
}
