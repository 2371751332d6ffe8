//! Picks the memory map of the QEMU machine that runs the target being built, puts it (as
//! `memory.x`) and `device.x` where the linker finds them, and tells the firmware which
//! machine it is on (`cfg(machine = "...")`).
use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target = env::var("TARGET").expect("cargo sets TARGET");
    // One QEMU machine per Cortex-M class.
    let machine = if target.starts_with("thumbv6m") {
        "microbit" // Cortex-M0
    } else if target.starts_with("thumbv8m.main") {
        "mps2-an505" // Cortex-M33
    } else if target.starts_with("thumbv7em") {
        "mps2-an386" // Cortex-M4F
    } else {
        panic!("no QEMU machine for target {target}: use thumbv6m-none-eabi, thumbv7em-none-eabihf or thumbv8m.main-none-eabihf");
    };
    let memory = format!("memory/{machine}.x");
    fs::copy(&memory, out.join("memory.x")).expect("copy memory map to OUT_DIR");
    fs::copy("device.x", out.join("device.x")).expect("copy device.x to OUT_DIR");
    println!("cargo:rustc-link-search={}", out.display());
    println!(
        "cargo::rustc-check-cfg=cfg(machine, values(\"microbit\", \"mps2-an386\", \"mps2-an505\"))"
    );
    println!("cargo:rustc-cfg=machine=\"{machine}\"");
    println!("cargo:rerun-if-changed=memory");
    println!("cargo:rerun-if-changed=device.x");
    println!("cargo:rerun-if-changed=build.rs");
}
