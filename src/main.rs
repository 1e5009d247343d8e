//! lightning-dictate: see `lightning-dictate --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
