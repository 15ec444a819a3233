fn main() -> std::process::ExitCode {
    data::cli::main()
}
