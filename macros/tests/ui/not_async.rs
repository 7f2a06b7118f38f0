#[safepoint::test]
fn forgot_async() {}

fn main() {}
