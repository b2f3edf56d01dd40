//! The `ebm` command. Parsing lives in `cli`, each subcommand in its own module.

mod bench;
mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
