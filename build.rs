//! Builds the CUDA side (docs/engine.md):
//! - every `kernels/*.cu` → a fatbin (sm_80 and sm_90 SASS + compute_90 PTX) with nvcc when it is
//!   found, the `-Xptxas -v` register/shared-memory report kept in `$OUT_DIR/ptxas.txt`;
//! - every `kernels/*.cu` with its local includes inlined, embedded for the NVRTC fallback;
//! - `kernels/host_shim.cpp` (the `.cuh` per-thread maths, compiled for the host) for the tests;
//! - the CPU stand-in for the CUDA driver (`emulator/`, docs/cuda_emulator.md): every kernel file
//!   and `emulator/broken_kernels.cu` compiled as host C++ with the runtime into `libcuda.so`,
//!   whose path the library gets as `ALPHANET_EMULATOR_LIB`.
//!
//! Environment: `NVCC`, `CUDA_HOME`/`CUDA_PATH` (where to find nvcc), `KERNELS_REQUIRE_NVCC=1`
//! (a missing nvcc or a failing compile is an error), `KERNELS_VERBOSE=1` (one warning line of
//! ptxas figures per kernel). Kernels are recompiled only when a kernel file or one of these
//! variables changes.

use std::collections::HashSet;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const ENV_VARS: [&str; 5] = [
    "NVCC",
    "CUDA_HOME",
    "CUDA_PATH",
    "KERNELS_REQUIRE_NVCC",
    "KERNELS_VERBOSE",
];
const NVCC_FLAGS: [&str; 9] = [
    "-std=c++17",
    "-O3",
    "--fatbin",
    "-gencode=arch=compute_80,code=sm_80",
    "-gencode=arch=compute_90,code=[sm_90,compute_90]",
    "-Xptxas",
    "-v",
    "-I",
    "kernels",
];

fn main() {
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let require = env::var("KERNELS_REQUIRE_NVCC").is_ok_and(|v| v == "1");
    for var in ENV_VARS {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=kernels");
    println!("cargo:rerun-if-changed=emulator");
    println!("cargo:rerun-if-changed={KERNEL_CONSTS}");
    write_kernel_consts(&out);
    let mut sources: Vec<PathBuf> = fs::read_dir("kernels")
        .expect("kernels/ directory")
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("cu" | "cuh" | "cpp")
            )
        })
        .collect();
    sources.sort();
    for p in &sources {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    let kernels: Vec<&PathBuf> = sources
        .iter()
        .filter(|p| p.extension().unwrap() == "cu")
        .collect();

    let nvcc = find_nvcc();
    let fatbins = match &nvcc {
        Some(nvcc) => compile_all(nvcc, &kernels, &out),
        None => Err("nvcc not found (set NVCC or CUDA_HOME, or put nvcc on PATH)".to_string()),
    };
    if let Err(why) = &fatbins {
        if require {
            panic!("KERNELS_REQUIRE_NVCC=1: {why}");
        }
        println!("cargo:warning=CUDA kernels not precompiled: {why}; they will be compiled with NVRTC at run time");
    }
    if env::var("KERNELS_VERBOSE").is_ok_and(|v| v == "1") && fatbins.is_ok() {
        for line in ptxas_summary(&fs::read_to_string(out.join("ptxas.txt")).unwrap()) {
            println!("cargo:warning={line}");
        }
    }

    let mut gen = String::from("pub const MODULES: &[KernelModule] = &[\n");
    for cu in &kernels {
        let name = cu.file_stem().unwrap().to_str().unwrap();
        let resolved = out.join(format!("{name}.nvrtc.cu"));
        fs::write(&resolved, inline_includes(cu, &mut HashSet::new())).unwrap();
        let fatbin = match &fatbins {
            Ok(_) => format!(
                "Some(include_bytes!({:?}))",
                out.join(format!("{name}.fatbin"))
            ),
            Err(_) => "None".to_string(),
        };
        let names = kernel_names(&fs::read_to_string(cu).unwrap());
        writeln!(
            gen,
            "    KernelModule {{ name: {name:?}, source: include_str!({resolved:?}), fatbin: {fatbin}, kernels: &{names:?} }},"
        )
        .unwrap();
    }
    gen.push_str("];\n");
    write_kernel_enum(&mut gen, &kernels);
    let report = if fatbins.is_ok() {
        fs::read_to_string(out.join("ptxas.txt")).unwrap()
    } else {
        String::new()
    };
    writeln!(gen, "pub const PTXAS_REPORT: &str = {report:?};").unwrap();
    fs::write(out.join("kernels.rs"), gen).unwrap();

    cc::Build::new()
        .cpp(true)
        .file("kernels/host_shim.cpp")
        .include("kernels")
        .include(&out)
        .warnings(true)
        .compile("kernel_host_maths");

    let images = match &fatbins {
        Ok(()) => kernels
            .iter()
            .map(|cu| {
                let name = cu.file_stem().unwrap().to_str().unwrap();
                let fatbin = fs::read(out.join(format!("{name}.fatbin"))).unwrap();
                (
                    fnv1a(&fatbin),
                    name.to_string(),
                    kernel_names(&fs::read_to_string(cu).unwrap()),
                )
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let mut host_kernels = kernels.clone();
    let broken = PathBuf::from("emulator/broken_kernels.cu");
    host_kernels.push(&broken);
    let lib = build_emulator(&out.join("emulator"), &host_kernels, &images);
    println!("cargo:rustc-env=ALPHANET_EMULATOR_LIB={}", lib.display());
}

/// The stand-in's runtime, compiled with every host copy of a kernel file.
const EMULATOR_RUNTIME: [&str; 4] = [
    "emulator/driver.cpp",
    "emulator/executor.cpp",
    "emulator/fiber.cpp",
    "emulator/memory.cpp",
];

/// Compiles the stand-in into `dir/libcuda.so` (soname `libcuda.so`, the first name cudarc
/// dlopens). `images`: (FNV-1a of the fatbin, kernel file, its kernels) for each fatbin built,
/// so that the stand-in recognizes exactly those images.
fn build_emulator(
    dir: &Path,
    kernels: &[&PathBuf],
    images: &[(u64, String, Vec<String>)],
) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let mut inc = String::from("static const ImageEntry IMAGES[] = {\n");
    for (hash, module, names) in images {
        writeln!(
            inc,
            "    {{0x{hash:016x}ull, {module:?}, {:?}}},",
            names.join(" ")
        )
        .unwrap();
    }
    // A sentinel: C++ has no empty arrays, and without nvcc there is no fatbin to list.
    inc.push_str("    {0, nullptr, nullptr},\n};\n");
    fs::write(dir.join("images.inc"), inc).unwrap();

    let mut sources: Vec<PathBuf> = EMULATOR_RUNTIME.iter().map(PathBuf::from).collect();
    for cu in kernels {
        let stem = cu.file_stem().unwrap().to_str().unwrap();
        let host = dir.join(format!("{stem}.host.cpp"));
        fs::write(&host, host_source(cu)).unwrap();
        sources.push(host);
    }
    let compiler = cc::Build::new().cpp(true).get_compiler();
    let objects: Vec<PathBuf> = std::thread::scope(|s| {
        let jobs: Vec<_> = sources
            .iter()
            .map(|src| {
                let obj = dir.join(src.file_name().unwrap()).with_extension("o");
                let mut cmd = compiler.to_command();
                // -O2 whatever the profile: the kernels are the tests' hot loop. No contraction
                // of a·b + c into an FMA, so results do not depend on the host CPU's features.
                cmd.args([
                    "-std=c++17",
                    "-O2",
                    "-fPIC",
                    "-fvisibility=hidden",
                    "-fvisibility-inlines-hidden",
                ])
                .args([
                    "-ffp-contract=off",
                    "-Wall",
                    "-Wextra",
                    "-Wno-unused-parameter",
                ])
                .arg("-Iemulator")
                .arg(format!("-I{}", dir.display()))
                .arg("-c")
                .arg(src)
                .arg("-o")
                .arg(&obj);
                s.spawn(move || run_checked(cmd).map(|_| obj))
            })
            .collect();
        jobs.into_iter()
            .map(|j| {
                j.join()
                    .unwrap()
                    .unwrap_or_else(|e| panic!("building the CUDA emulator: {e}"))
            })
            .collect()
    });
    let lib = dir.join("libcuda.so");
    let mut link = compiler.to_command();
    link.args(["-shared", "-Wl,-soname,libcuda.so", "-pthread", "-o"])
        .arg(&lib)
        .args(&objects);
    run_checked(link).unwrap_or_else(|e| panic!("linking the CUDA emulator: {e}"));
    lib
}

fn run_checked(mut cmd: Command) -> Result<(), String> {
    // The program and its arguments (Command's Debug output also lists the whole environment).
    let line = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let run = cmd
        .output()
        .map_err(|e| format!("cannot run {line}: {e}"))?;
    if run.status.success() {
        for warning in String::from_utf8_lossy(&run.stderr).lines() {
            println!("cargo:warning={warning}");
        }
        return Ok(());
    }
    Err(format!(
        "{line} failed:\n{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    ))
}

/// A kernel file as host C++ for the stand-in: the emulation header first, the file with its
/// includes inlined, and two rewrites no macro can express: `extern __shared__ T name[];` becomes
/// a pointer to the launch's dynamic shared memory, and each static `__shared__ T a[..], b[..];`
/// is followed by `::emu::shared_array(a, sizeof a); ...` so the stand-in can fill the arrays
/// with garbage at each block's start, as a GPU leaves them. Then one registration per kernel.
fn host_source(cu: &Path) -> String {
    let unsupported = |decl: &str| -> ! {
        panic!(
            "{}: `{decl}`: the emulator rewrites only `extern __shared__ TYPE NAME[];` and `__shared__ TYPE DECLARATORS;` on a line of their own",
            cu.display()
        )
    };
    let mut text = String::from("#include \"cuda_emu.h\"\n");
    for line in inline_includes(cu, &mut HashSet::new()).lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        if let Some(decl) = trimmed.strip_prefix("extern __shared__ ") {
            let (ty, name) = decl
                .strip_suffix("[];")
                .and_then(|d| d.trim().rsplit_once(' '))
                .unwrap_or_else(|| unsupported(trimmed));
            writeln!(
                text,
                "{indent}{ty}* const {name} = static_cast<{ty}*>(::emu::dynamic_shared());"
            )
            .unwrap();
        } else if let Some(decl) = trimmed.strip_prefix("__shared__ ") {
            let body = decl
                .strip_suffix(';')
                .unwrap_or_else(|| unsupported(trimmed));
            // The type is the first word (the kernels use one-word types); the declarators are
            // separated by commas outside brackets, each named by what precedes its first `[`.
            let (_, declarators) = body.split_once(' ').unwrap_or_else(|| unsupported(trimmed));
            let mut names = Vec::new();
            let (mut depth, mut start) = (0, 0);
            for (k, c) in declarators.char_indices().chain([(declarators.len(), ',')]) {
                match c {
                    '[' | '(' => depth += 1,
                    ']' | ')' => depth -= 1,
                    ',' if depth == 0 => {
                        let d = declarators[start..k].trim();
                        names.push(d.split('[').next().unwrap().trim().to_string());
                        start = k + 1;
                    }
                    _ => {}
                }
            }
            text += line;
            for name in names {
                write!(text, " ::emu::shared_array({name}, sizeof {name});").unwrap();
            }
            text.push('\n');
        } else if line.split("//").next().unwrap().contains("__shared__") {
            unsupported(trimmed);
        } else {
            text += line;
            text.push('\n');
        }
    }
    for name in kernel_names(&fs::read_to_string(cu).unwrap()) {
        writeln!(text, "EMU_REGISTER_KERNEL({name})").unwrap();
    }
    text
}

/// 64-bit FNV-1a, as the stand-in hashes a fatbin it is given (emulator/driver.cpp).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// nvcc from `NVCC`, then `CUDA_HOME`/`CUDA_PATH`, then `PATH`, then `/usr/local/cuda`.
fn find_nvcc() -> Option<PathBuf> {
    if let Some(p) = env::var_os("NVCC") {
        return Some(PathBuf::from(p));
    }
    let homes = ["CUDA_HOME", "CUDA_PATH"]
        .into_iter()
        .filter_map(env::var_os)
        .map(PathBuf::from);
    let found = homes.map(|h| h.join("bin/nvcc")).find(|p| p.is_file());
    if found.is_some() {
        return found;
    }
    // Only a PATH lookup depends on PATH; tracking it otherwise would recompile on any change.
    println!("cargo:rerun-if-env-changed=PATH");
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .map(|d| d.join("nvcc"))
        .chain([PathBuf::from("/usr/local/cuda/bin/nvcc")])
        .find(|p| p.is_file())
}

/// Compiles every kernel file in parallel; the ptxas reports go to `ptxas.txt` in file order.
fn compile_all(nvcc: &Path, kernels: &[&PathBuf], out: &Path) -> Result<(), String> {
    let results: Vec<Result<String, String>> = std::thread::scope(|s| {
        let jobs: Vec<_> = kernels
            .iter()
            .map(|cu| s.spawn(move || compile_one(nvcc, cu, out)))
            .collect();
        jobs.into_iter().map(|j| j.join().unwrap()).collect()
    });
    let logs = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    fs::write(out.join("ptxas.txt"), logs.concat()).unwrap();
    Ok(())
}

fn compile_one(nvcc: &Path, cu: &Path, out: &Path) -> Result<String, String> {
    let fatbin = out.join(cu.file_stem().unwrap()).with_extension("fatbin");
    let run = Command::new(nvcc)
        .args(NVCC_FLAGS)
        .arg("-I")
        .arg(out)
        .arg("-o")
        .arg(&fatbin)
        .arg(cu)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", nvcc.display()))?;
    let log =
        String::from_utf8_lossy(&run.stderr).into_owned() + &String::from_utf8_lossy(&run.stdout);
    if !run.status.success() {
        return Err(format!(
            "{} failed on {}:\n{log}",
            nvcc.display(),
            cu.display()
        ));
    }
    Ok(format!("== {}\n{log}", cu.display()))
}

/// The constants Rust and CUDA share, defined once (src/ops/kernel_consts.rs).
const KERNEL_CONSTS: &str = "src/ops/kernel_consts.rs";

/// Writes `OUT_DIR/kernel_consts.cuh`: `#define NAME VALUE` for every `pub const NAME: T = VALUE;`
/// of KERNEL_CONSTS, whose values must be integer literals.
fn write_kernel_consts(out: &Path) {
    let text = fs::read_to_string(KERNEL_CONSTS).unwrap_or_else(|e| panic!("{KERNEL_CONSTS}: {e}"));
    let mut header = format!(
        "// Generated by build.rs from {KERNEL_CONSTS}: edit that file, not this one.\n#pragma once\n"
    );
    for line in text.lines().filter(|l| l.starts_with("pub const ")) {
        let parsed = line
            .strip_prefix("pub const ")
            .and_then(|r| r.strip_suffix(';'))
            .and_then(|r| r.split_once(':'))
            .and_then(|(name, rest)| Some((name.trim(), rest.split_once('=')?.1.trim())))
            .filter(|(_, v)| v.parse::<u64>().is_ok());
        let Some((name, value)) = parsed else {
            panic!("{KERNEL_CONSTS}: `{line}`: expected `pub const NAME: TYPE = INTEGER;`");
        };
        writeln!(header, "#define {name} {value}").unwrap();
    }
    fs::write(out.join("kernel_consts.cuh"), header).unwrap();
}

/// The file with its `#include "local.cuh"` lines replaced by the header text (each header once,
/// `#pragma once` dropped), since NVRTC is given one self-contained source.
fn inline_includes(path: &Path, seen: &mut HashSet<PathBuf>) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t == "#pragma once" {
            continue;
        }
        if let Some(name) = t
            .strip_prefix("#include \"")
            .and_then(|r| r.strip_suffix('"'))
        {
            // A local header, or the generated one in OUT_DIR.
            let local = path.parent().unwrap().join(name);
            let header = if local.is_file() {
                local
            } else {
                PathBuf::from(env::var("OUT_DIR").unwrap()).join(name)
            };
            if seen.insert(header.clone()) {
                out += &inline_includes(&header, seen);
            }
            continue;
        }
        out += line;
        out.push('\n');
    }
    out
}

/// `enum Kernel`: one variant per `extern "C" __global__` function of the kernel files
/// (`activation_forward` → `ActivationForward`), in file and declaration order, with its name, so
/// that a launch names its kernel by a value the compiler checks, and `Gpu::new` loads each one
/// (or fails) when the modules load.
fn write_kernel_enum(gen: &mut String, kernels: &[&PathBuf]) {
    let names: Vec<String> = kernels
        .iter()
        .flat_map(|cu| kernel_names(&fs::read_to_string(cu).unwrap()))
        .collect();
    let camel = |n: &str| -> String {
        n.split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
            })
            .collect()
    };
    gen.push_str("/// Every kernel of `kernels/*.cu` (generated by build.rs).\n");
    gen.push_str("#[derive(Debug, Clone, Copy, PartialEq, Eq)]\npub enum Kernel {\n");
    for n in &names {
        writeln!(gen, "    {},", camel(n)).unwrap();
    }
    gen.push_str("}\n\nimpl Kernel {\n    pub const ALL: &[Kernel] = &[\n");
    for n in &names {
        writeln!(gen, "        Kernel::{},", camel(n)).unwrap();
    }
    gen.push_str("    ];\n\n    /// The function's name in its kernel file.\n    pub fn name(self) -> &'static str {\n        match self {\n");
    for n in &names {
        writeln!(gen, "            Kernel::{} => {n:?},", camel(n)).unwrap();
    }
    gen.push_str("        }\n    }\n}\n");
}

/// Names of the `extern "C" __global__` functions of a kernel file.
fn kernel_names(src: &str) -> Vec<String> {
    src.split("extern \"C\" __global__ void ")
        .skip(1)
        .map(|rest| rest.split('(').next().unwrap().trim().to_string())
        .collect()
}

/// One line per kernel from ptxas's sm_90 report: registers, shared memory, spills.
fn ptxas_summary(log: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current: Option<String> = None;
    for l in log.lines() {
        if let Some(rest) = l.split("Compiling entry function '").nth(1) {
            current = rest
                .ends_with("for 'sm_90'")
                .then(|| rest.split('\'').next().unwrap().to_string());
        } else if let (Some(name), true) = (&current, l.contains("Used")) {
            lines.push(format!(
                "ptxas sm_90 {name}: {}",
                l.trim_start_matches("ptxas info    : ")
            ));
        } else if let (Some(name), true) = (&current, l.contains("spill")) {
            if !l.contains(" 0 bytes spill stores, 0 bytes spill loads") {
                lines.push(format!("ptxas sm_90 {name}: {}", l.trim()));
            }
        }
    }
    lines
}
