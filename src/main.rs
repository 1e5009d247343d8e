//! lightning-dictate: see `lightning-dictate --help`.

fn main() -> std::process::ExitCode {
    lightning_dictate::cli::main()
}
