//! `ui/src/bindings.ts` is generated from the commands and events; this test
//! regenerates it and fails when the committed file differs.
//! `UPDATE_BINDINGS=1` writes the new file instead.

#[test]
fn bindings_are_up_to_date() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/bindings.ts");
    let fresh = recourse_console::typescript_bindings().unwrap();
    if std::env::var_os("UPDATE_BINDINGS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "ui/src/bindings.ts is out of date: run `UPDATE_BINDINGS=1 cargo test -p recourse-console --test bindings`"
    );
}
