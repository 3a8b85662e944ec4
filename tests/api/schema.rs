#[test]
fn committed_schema_matches_the_printed_schema() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql is committed");
    let printed = exchanger::graphql::sdl();
    assert!(
        committed == printed,
        "schema.graphql is out of date: run `cargo run -- schema > schema.graphql`"
    );
}
