//! Print the lock facts of every statement of a file:
//! `cargo run -p migration-parser --example facts -- FILE [PG_VERSION]`.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: facts FILE [PG_VERSION]");
        std::process::exit(3);
    };
    let v = migration_parser::PgVersion(args.get(2).and_then(|a| a.parse().ok()).unwrap_or(15));
    let source = std::fs::read_to_string(path).unwrap_or_default();
    let options = migration_parser::ParseOptions::default();
    match migration_parser::parse(path, &source, &options) {
        Ok(m) => {
            for s in &m.statements {
                let facts: Vec<String> = s
                    .operations
                    .iter()
                    .flat_map(|op| migration_parser::lock_facts(op, v))
                    .map(|f| {
                        format!(
                            "{}={}/{:?}/{:?}",
                            f.relation,
                            f.mode.pg_locks_name(),
                            f.rewrite,
                            f.scan
                        )
                    })
                    .collect();
                println!("{}\t{}", s.sql.replace('\n', " "), facts.join(" "));
            }
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(3);
        }
    }
}
