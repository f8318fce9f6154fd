//! Facts about this build, recorded by build.rs.

include!(concat!(env!("OUT_DIR"), "/build_info.rs"));

/// The lock-step version (`[workspace.package] version`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
