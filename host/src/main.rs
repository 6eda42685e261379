//! `bpr`: the operator's command. See `bpr --help`.
//!
//! The command line is the binary's own modules ([`cli`]): the library's public
//! API is what an embedder uses, and `bpr` is one more embedder of it.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
