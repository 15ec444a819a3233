//! The `data` binary: runs the command line (`cli::main`) and exits with its code.

fn main() -> std::process::ExitCode {
    data::cli::main()
}
