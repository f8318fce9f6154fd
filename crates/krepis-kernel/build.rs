//! Generates, into OUT_DIR, everything the kernel compiles in:
//!
//! - `krepis.v1.rs`: prost types for `proto/krepis.proto`, compiled by protox
//!   (pure Rust), so no build machine needs a system `protoc`;
//! - `krepis.h`: the C header rendered by cbindgen from `src/`; the committed
//!   `include/krepis.h` must equal it (tests/header.rs);
//! - `abi_fingerprint.rs`: SHA-256 of the header's declarations, the digest of
//!   the exported surface that `krepis_abi_fingerprint()` returns;
//! - `build_info.rs`: target, profile, rustc, git commit and features.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let proto_dir = manifest_dir.join("../../proto");

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed={}", proto_dir.display());
    println!("cargo:rerun-if-env-changed=KREPIS_GIT_COMMIT");

    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("macos") {
        macos_link_args();
    }

    compile_proto(&proto_dir);
    let header = render_header(&manifest_dir);
    fs::write(out_dir.join("krepis.h"), &header).expect("write krepis.h");
    let proto = fs::read_to_string(proto_dir.join("krepis.proto")).expect("read proto/krepis.proto");
    let fingerprint = abi_fingerprint(&header, &proto);
    fs::write(
        out_dir.join("abi_fingerprint.rs"),
        format!("/// SHA-256 of the normalized declarations in krepis.h.\npub const ABI_FINGERPRINT: &::core::ffi::CStr = c\"{fingerprint}\";\n"),
    )
    .expect("write abi_fingerprint.rs");
    write_build_info(&manifest_dir, &out_dir);
}

/// macOS link arguments for the cdylib.
///
/// - The install name (`LC_ID_DYLIB`) is `@rpath/` plus the file name the
///   release ships, `libkrepis_kernel-<triple>.dylib` (matrix/targets.json):
///   cargo's default would be the absolute path of the build machine's
///   target directory, which a program linking against the shipped file
///   would then look for. The release renames the file after the build, so
///   the name is the shipped one, not cargo's `libkrepis_kernel.dylib`;
///   `deno task check-artifact` checks it against the table.
/// - `-adhoc_codesign`: Apple's linker and LLVM's `ld64.lld` sign arm64
///   output ad hoc by default, but not x86_64; signing both lets the check
///   verify the signature of every macOS target alike.
/// - `-dead_strip_dylibs`: a dylib none of whose symbols is used is not
///   loaded. The `libc` crate asks for `libiconv` on every Apple target; the
///   kernel calls none of it, so the linker leaves it out.
/// - The minimum macOS comes from `MACOSX_DEPLOYMENT_TARGET` (matrix/build.ts
///   sets the table's); relink when it changes.
///
/// On macOS the linker is Apple's, driven by the C compiler (`-Wl,` args).
/// Built on another OS (matrix/build.ts), the linker is rustup's `rust-lld`
/// itself, which rustc runs as `ld64.lld` (`-flavor darwin`) with plain
/// arguments; `KREPIS_MACOS_SYSLIBROOT` then names the directory whose
/// `usr/lib` holds the text stubs (`.tbd`) of the system libraries, passed
/// as `-syslibroot`.
fn macos_link_args() {
    let target = env::var("TARGET").expect("TARGET");
    let mut args = vec![
        "-install_name".to_owned(),
        format!("@rpath/libkrepis_kernel-{target}.dylib"),
        "-dead_strip_dylibs".to_owned(),
    ];
    // zig's linker (a hand-run `cargo zigbuild`) refuses the flag and signs arm64 by itself.
    if !linker_is_zig() {
        args.push("-adhoc_codesign".to_owned());
    }
    println!("cargo:rerun-if-env-changed=KREPIS_MACOS_SYSLIBROOT");
    if linker_is_lld() {
        if let Ok(root) = env::var("KREPIS_MACOS_SYSLIBROOT") {
            args.extend(["-syslibroot".to_owned(), root]);
        }
        for arg in args {
            println!("cargo:rustc-cdylib-link-arg={arg}");
        }
    } else {
        // `-Wl,a,b` hands `a b` to the linker; the install name and its value are one pair.
        println!("cargo:rustc-cdylib-link-arg=-Wl,{},{}", args[0], args[1]);
        for arg in &args[2..] {
            println!("cargo:rustc-cdylib-link-arg=-Wl,{arg}");
        }
    }
    println!("cargo:rerun-if-env-changed=MACOSX_DEPLOYMENT_TARGET");
}

/// Whether the target's linker is rustup's `rust-lld`, which rustc, going by
/// that name, runs itself as `ld64.lld` (`-flavor darwin`) for an Apple
/// target, with no C compiler between: the linker cargo passes rustc
/// (`CARGO_TARGET_<TRIPLE>_LINKER`) reaches build scripts as `RUSTC_LINKER`.
fn linker_is_lld() -> bool {
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    env::var("RUSTC_LINKER").is_ok_and(|linker| Path::new(&linker).file_stem().is_some_and(|name| name == "rust-lld"))
}

/// Whether the target's linker is zig's: cargo-zigbuild's `zigcc-…` wrapper
/// (its default, unless `CARGO_TARGET_<TRIPLE>_LINKER` names another).
fn linker_is_zig() -> bool {
    env::var("RUSTC_LINKER").is_ok_and(|linker| {
        Path::new(&linker)
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("zigcc"))
    })
}

fn compile_proto(proto_dir: &Path) {
    // conformance.proto is for the conformance example only (never part of
    // the kernel or its ABI fingerprint); compiling it here gives that
    // example the same prost code generation as the kernel's own messages.
    let descriptors = protox::compile(["krepis.proto", "conformance.proto"], [proto_dir]).unwrap_or_else(|err| {
        panic!("Cannot compile proto/krepis.proto: {err}");
    });
    prost_build::Config::new()
        .compile_fds(descriptors)
        .unwrap_or_else(|err| panic!("Cannot generate prost code: {err}"));
}

fn render_header(manifest_dir: &Path) -> String {
    let config = cbindgen::Config::from_file(manifest_dir.join("cbindgen.toml"))
        .unwrap_or_else(|err| panic!("Cannot read cbindgen.toml: {err}"));
    let bindings = cbindgen::Builder::new()
        .with_crate(manifest_dir)
        .with_config(config)
        .generate()
        .unwrap_or_else(|err| panic!("Cannot render krepis.h: {err}"));
    let mut bytes = Vec::new();
    bindings.write(&mut bytes);
    String::from_utf8(bytes).expect("cbindgen writes UTF-8")
}

/// The ABI fingerprint: SHA-256 (lowercase hex) of the header's declarations
/// and the control-plane schema, each with comments and preprocessor lines
/// removed and every run of white space folded into one space, joined by a
/// newline. Constants such as `KREPIS_ABI_MAJOR` are `#define`s and so do
/// not count: the fingerprint covers names, signatures, types and the
/// protobuf messages the kernel speaks. tools/gen_ffi.ts computes the same
/// digest from the committed header and schema.
fn abi_fingerprint(header: &str, proto: &str) -> String {
    let surface = format!("{}\n{}", normalize_header(header), normalize_header(proto));
    let digest = Sha256::digest(surface.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn normalize_header(header: &str) -> String {
    let mut without_block_comments = String::with_capacity(header.len());
    let mut rest = header;
    while let Some(start) = rest.find("/*") {
        without_block_comments.push_str(&rest[..start]);
        match rest[start + 2..].find("*/") {
            Some(end) => rest = &rest[start + 2 + end + 2..],
            None => rest = "",
        }
    }
    without_block_comments.push_str(rest);
    let mut words = Vec::new();
    for line in without_block_comments.lines() {
        let code = line.split("//").next().unwrap_or("");
        if code.trim_start().starts_with('#') {
            continue;
        }
        words.extend(code.split_whitespace());
    }
    words.join(" ")
}

fn write_build_info(manifest_dir: &Path, out_dir: &Path) {
    let target = env::var("TARGET").unwrap_or_default();
    let profile = env::var("PROFILE").unwrap_or_default();
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = command_output(Command::new(rustc).arg("--version")).unwrap_or_else(|| "unknown".into());
    let git_commit = env::var("KREPIS_GIT_COMMIT")
        .ok()
        .filter(|commit| !commit.is_empty())
        .or_else(|| git_commit(manifest_dir))
        .unwrap_or_else(|| "unknown".into());
    let mut features: Vec<String> = env::vars()
        .filter_map(|(key, _)| key.strip_prefix("CARGO_FEATURE_").map(str::to_owned))
        .map(|feature| feature.to_lowercase().replace('_', "-"))
        .collect();
    features.sort();
    let source = format!(
        "/// The Rust target triple.\npub const TARGET: &str = {target:?};\n\
         /// The cargo profile (debug or release).\npub const PROFILE: &str = {profile:?};\n\
         /// `rustc --version` of the compiler.\npub const RUSTC_VERSION: &str = {rustc_version:?};\n\
         /// The git commit built, or \"unknown\".\npub const GIT_COMMIT: &str = {git_commit:?};\n\
         /// Enabled cargo features.\npub const FEATURES: &[&str] = &{features:?};\n"
    );
    fs::write(out_dir.join("build_info.rs"), source).expect("write build_info.rs");
}

/// The commit checked out at build time; the build script reruns when HEAD
/// or the branch it points to moves.
fn git_commit(dir: &Path) -> Option<String> {
    let git_dir = command_output(
        Command::new("git")
            .current_dir(dir)
            .args(["rev-parse", "--absolute-git-dir"]),
    )?;
    let head = Path::new(&git_dir).join("HEAD");
    println!("cargo:rerun-if-changed={}", head.display());
    if let Ok(contents) = fs::read_to_string(&head)
        && let Some(reference) = contents.trim().strip_prefix("ref: ")
    {
        println!(
            "cargo:rerun-if-changed={}",
            Path::new(&git_dir).join(reference).display()
        );
    }
    command_output(Command::new("git").current_dir(dir).args(["rev-parse", "HEAD"]))
}

fn command_output(command: &mut Command) -> Option<String> {
    let output = command.output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}
