mod transport;
fn main() -> anyhow::Result<()> {
    for path in [platform::SyscallPath::Ring, platform::SyscallPath::ExitOnly] {
        let n = if path == platform::SyscallPath::Ring {
            200_000
        } else {
            20_000
        };
        println!("{path:?}: {:.0} ns", transport::bare_round_trip(path, n)?);
    }
    Ok(())
}
