//! `bpr`: the operator's command. See `bpr --help`.

fn main() -> std::process::ExitCode {
    blueprint_remote_providers::cli::main()
}
