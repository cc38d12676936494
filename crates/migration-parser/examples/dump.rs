//! Print the parsed migration of a file as JSON: `cargo run -p migration-parser --example dump FILE [wrap]`.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: dump FILE [wrap]");
        std::process::exit(3);
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(3);
        }
    };
    let mut options = migration_parser::ParseOptions::default();
    if args.get(2).map(String::as_str) == Some("wrap") {
        options.transaction_mode = migration_parser::TransactionMode::WrapFile;
    }
    match migration_parser::parse_bytes(path, &bytes, &options) {
        Ok(m) => {
            for s in &m.statements {
                println!("{}", serde_json::to_string(s).unwrap_or_default());
            }
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(3);
        }
    }
}
