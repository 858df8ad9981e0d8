mod linear;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        // HE offline phase of every linear layer (see benches/src/linear.rs).
        Some("linear") => linear::main(&args[1..]),
        _ => anyhow::bail!("usage: pi-bench linear --help"),
    }
}
