//! The committed C header must be exactly what cbindgen renders from the
//! current source (build.rs writes the fresh one to OUT_DIR).

#[test]
fn committed_header_is_not_stale() {
    let fresh = include_str!(concat!(env!("OUT_DIR"), "/krepis.h"));
    let committed_path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/krepis.h");
    let committed = std::fs::read_to_string(committed_path).expect("read include/krepis.h");
    assert!(
        committed == fresh,
        "Cannot accept include/krepis.h: it is stale (the exported surface changed)\nRun `deno task gen` and commit the result"
    );
}
