#[safepoint::test(flavor = "deterministic", sedes = 8)]
async fn misspelled() {}

fn main() {}
