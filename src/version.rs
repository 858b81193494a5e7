//! What this binary is: the package version and the commit it was built from (recorded by
//! `build.rs`), for `dingtail --version`, the man pages and anything else that reports a build.
//! Constants only, so that every place that names the build names the same one.

/// The package version (`Cargo.toml`).
pub const PACKAGE: &str = env!("CARGO_PKG_VERSION");

/// The short hash of the commit the binary was built from, or `commit unknown` when it was built
/// outside a git checkout without `DINGTAIL_COMMIT` set.
pub const COMMIT: &str = env!("DINGTAIL_COMMIT");

/// What `dingtail --version` prints after the name: `0.1.0 (1a2b3c4)`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("DINGTAIL_COMMIT"),
    ")"
);
