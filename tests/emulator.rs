//! The CPU stand-in of the CUDA driver (emulator/, docs/cuda_emulator.md): each of its checks
//! catches the deliberately broken kernel of emulator/broken_kernels.cu made for it, stays quiet
//! on the correct twin, and the CLI runs a GPU benchmark on it.
//!
//! A check that finds a bad access aborts the process, and every check explains itself on
//! stderr, so each scenario runs in a child process (this test binary again, with the scenario
//! in ALPHANET_EMULATOR_TEST_SCENARIO) whose exit status, stdout and stderr the test inspects.
//! The children always use the stand-in (ALPHANET_CUDA=emulator), GPU or not.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};
use std::sync::Arc;

use alphanet::cuda::{nvrtc_available, open_for_tests, Gpu};
use cudarc::driver::{result, CudaFunction, CudaModule, DevicePtr, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::{CompileOptions, Ptx};

mod common;
use common::alphanet;

const SCENARIO: &str = "ALPHANET_EMULATOR_TEST_SCENARIO";
const SIGABRT: i32 = 6;

// ---- the child side ---------------------------------------------------------------------------

/// The stand-in and the broken kernels, compiled from their source by NVRTC (PTX, the image
/// kind the library's NVRTC fallback loads; the library's own kernels come as nvcc fatbins).
fn open() -> (Gpu, Arc<CudaModule>) {
    let gpu = open_for_tests().unwrap();
    assert!(gpu.info.emulated, "the child must run on the stand-in");
    nvrtc_available().unwrap();
    let opts = CompileOptions {
        options: vec!["--gpu-architecture=compute_90".into()],
        ..Default::default()
    };
    let ptx =
        cudarc::nvrtc::compile_ptx_with_opts(include_str!("../emulator/broken_kernels.cu"), opts)
            .unwrap();
    let module = gpu.stream().context().load_module(ptx).unwrap();
    (gpu, module)
}

fn function(m: &Arc<CudaModule>, name: &str) -> CudaFunction {
    m.load_function(name).unwrap()
}

fn cfg(grid: u32, block: u32, shared: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (grid, 1, 1),
        block_dim: (block, 1, 1),
        shared_mem_bytes: shared,
    }
}

/// What the child tells the parent, one line each.
fn say(what: &str, r: impl std::fmt::Debug) {
    println!("scenario {what}: {r:?}");
}

/// Runs the scenario named in ALPHANET_EMULATOR_TEST_SCENARIO; the parent tests below start this
/// test in a child process. In an ordinary test run (no scenario named) it has nothing to do.
#[test]
fn child_process_entry() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    let (gpu, m) = open();
    let s = gpu.stream();
    let n = 1000;
    let inp = gpu
        .upload(&(0..n).map(|k| k as f32).collect::<Vec<_>>())
        .unwrap();
    let mut out = gpu.zeros::<f32>(n).unwrap();
    let ni = n as i32;
    match scenario.as_str() {
        "write_past_end" => {
            let f = function(&m, "emu_test_write_past_end");
            let r = unsafe {
                s.launch_builder(&f)
                    .arg(&mut out)
                    .arg(&ni)
                    .launch(cfg(4, 256, 0))
            };
            say("survived", r.map(drop));
        }
        "read_past_end" => {
            let f = function(&m, "emu_test_read_past_end");
            let mut b = s.launch_builder(&f);
            b.arg(&mut out).arg(&inp).arg(&ni);
            say("survived", unsafe { b.launch(cfg(4, 256, 0)) }.map(drop));
        }
        "shared_past_end" => {
            let f = function(&m, "emu_test_shared_slots");
            // Room for all 64 slots: fine.
            let r = unsafe { s.launch_builder(&f).arg(&mut out).launch(cfg(2, 64, 256)) };
            say("64 slots", r.map(drop));
            // Room for 63: thread 63 writes past the end.
            let r = unsafe { s.launch_builder(&f).arg(&mut out).launch(cfg(2, 64, 252)) };
            say("survived", r.map(drop));
        }
        "bad_pointers" => {
            let f = function(&m, "emu_test_copy");
            let (base, _sync) = inp.device_ptr(s);
            let mut launch_from = |p: u64| unsafe {
                let mut b = s.launch_builder(&f);
                b.arg(&mut out).arg(&p).arg(&ni);
                b.launch(cfg(4, 256, 0)).map(drop)
            };
            say("not device memory", launch_from(0xdead_0000));
            say("one past the end", launch_from(base + 4 * n as u64));
            say("misaligned", launch_from(base + 2));
            let gone = unsafe { s.alloc::<f32>(16) }.unwrap().leak();
            unsafe { result::free_sync(gone) }.unwrap();
            say("freed", launch_from(gone));
            say("valid", launch_from(base));
            say(
                "copied",
                gpu.download(&out).unwrap() == gpu.download(&inp).unwrap(),
            );
        }
        "copy_ranges" => {
            let small = gpu.zeros::<f32>(5).unwrap();
            let (p, _sync) = small.device_ptr(s);
            let host = [1.0f32; 10];
            let mut back = [0.0f32; 10];
            let cu = s.cu_stream();
            say("htod 10 into 5", unsafe {
                result::memcpy_htod_async(p, &host, cu)
            });
            say("dtoh 10 from 5", unsafe {
                result::memcpy_dtoh_async(&mut back, p, cu)
            });
            say("htod 5 into 5 at +1", unsafe {
                result::memcpy_htod_async(p + 4, &host[..5], cu)
            });
            say("memset 21 bytes of 20", unsafe {
                result::memset_d8_async(p, 0, 21, cu)
            });
            say("htod 5 into 5", unsafe {
                result::memcpy_htod_async(p, &host[..5], cu)
            });
        }
        "early_return" => {
            let f = function(&m, "emu_test_early_return");
            let r = unsafe { s.launch_builder(&f).arg(&mut out).launch(cfg(1, 64, 0)) };
            say("early return", r.map(drop));
        }
        "block_sum" => {
            let f = function(&m, "emu_test_block_sum");
            let mut sums = gpu.zeros::<f32>(4).unwrap();
            let inp = gpu.upload(&[1.0f32; 1024]).unwrap();
            for with_barrier in [1i32, 0] {
                let mut b = s.launch_builder(&f);
                b.arg(&mut sums).arg(&inp).arg(&with_barrier);
                let r = unsafe { b.launch(cfg(4, 256, 0)) }.map(drop);
                say(&format!("with_barrier {with_barrier}"), r);
            }
            let f = function(&m, "emu_test_blocks_collide");
            let r = unsafe { s.launch_builder(&f).arg(&mut out).launch(cfg(8, 32, 0)) };
            say("blocks collide", r.map(drop));
        }
        "modules" => {
            let ctx = s.context();
            say(
                "garbage image",
                ctx.load_module(Ptx::from_binary(vec![1, 2, 3, 4, 0]))
                    .map(drop),
            );
            // Without nvcc at build time the kernels come as NVRTC PTX (checked below with a
            // foreign PTX and by every other CUDA test); the parent says so, and CI
            // (KERNELS_REQUIRE_NVCC=1) requires the fatbins.
            match alphanet::cuda::MODULES[0].fatbin {
                Some(fatbin) => {
                    let mut fatbin = fatbin.to_vec();
                    say(
                        "own fatbin",
                        ctx.load_module(Ptx::from_binary(fatbin.clone())).map(drop),
                    );
                    let last = fatbin.len() - 1;
                    fatbin[last] ^= 1;
                    say(
                        "altered fatbin",
                        ctx.load_module(Ptx::from_binary(fatbin)).map(drop),
                    );
                }
                None => println!("scenario own fatbin: none in this build"),
            }
            let foreign = ".version 8.0\n.target sm_90\n.address_size 64\n.visible .entry not_a_kernel_here()\n{\nret;\n}\n";
            say(
                "foreign PTX",
                ctx.load_module(Ptx::from_src(foreign)).map(drop),
            );
            say(
                "unknown name",
                m.load_function("emu_test_nothing").map(drop),
            );
        }
        "launch_limits" => {
            let f = function(&m, "emu_test_shared_slots");
            let launch = |c: LaunchConfig, out: &mut cudarc::driver::CudaSlice<f32>| unsafe {
                s.launch_builder(&f).arg(out).launch(c).map(drop)
            };
            say("1025 threads", launch(cfg(1, 1025, 0), &mut out));
            say("64 KiB without opt-in", launch(cfg(1, 64, 65536), &mut out));
            f.set_attribute(
                cudarc::driver::sys::CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                65536,
            )
            .unwrap();
            say("64 KiB with opt-in", launch(cfg(1, 64, 65536), &mut out));
        }
        other => panic!("{SCENARIO}={other}: no such scenario"),
    }
    s.synchronize().unwrap();
}

// ---- the parent side --------------------------------------------------------------------------

/// Runs one scenario in a child process on the stand-in.
fn child(scenario: &str, order_check: bool) -> Output {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_process_entry", "--nocapture"])
        .env(SCENARIO, scenario)
        .env("ALPHANET_CUDA", "emulator")
        .env(
            "ALPHANET_EMULATOR_ORDER_CHECK",
            if order_check { "1" } else { "0" },
        )
        .env_remove("ALPHANET_REQUIRE_GPU")
        .output()
        .unwrap();
    eprintln!(
        "---- scenario {scenario}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The child's answer to `what` ("scenario WHAT: ANSWER").
fn answer(out: &Output, what: &str) -> String {
    let tag = format!("scenario {what}: ");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&tag).map(str::to_string))
        .unwrap_or_else(|| panic!("the child said nothing about {what:?}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_aborted_saying(out: &Output, expected: &[&str]) {
    assert_eq!(
        out.status.signal(),
        Some(SIGABRT),
        "the stand-in should abort: {}",
        out.status
    );
    let err = stderr(out);
    for e in expected {
        assert!(err.contains(e), "stderr lacks {e:?}:\n{err}");
    }
}

#[test]
fn a_write_one_past_the_end_faults_and_names_kernel_block_thread() {
    // Thread 1000 of 4 blocks × 256 is block 3, thread 232; out has 1000 floats.
    let out = child("write_past_end", false);
    assert_aborted_saying(
        &out,
        &[
            "kernel emu_test_write_past_end, block (3,0,0), thread (232,0,0): invalid write",
            "0 bytes past the end of allocation",
            "(4000 bytes at",
        ],
    );
}

#[test]
fn a_read_one_past_the_end_faults_and_names_kernel_block_thread() {
    let out = child("read_past_end", false);
    assert_aborted_saying(
        &out,
        &[
            "kernel emu_test_read_past_end, block (3,0,0), thread (231,0,0): invalid read",
            "0 bytes past the end of allocation",
        ],
    );
}

#[test]
fn dynamic_shared_memory_ends_at_a_guard_page() {
    let out = child("shared_past_end", false);
    assert_eq!(answer(&out, "64 slots"), "Ok(())");
    assert_aborted_saying(
        &out,
        &[
            "kernel emu_test_shared_slots, block (0,0,0), thread (63,0,0): invalid write",
            "0 bytes past the end of the launch's 252 bytes of dynamic shared memory",
        ],
    );
}

#[test]
fn pointer_arguments_must_point_into_live_allocations() {
    let out = child("bad_pointers", false);
    assert!(out.status.success(), "{}", out.status);
    for what in [
        "not device memory",
        "one past the end",
        "misaligned",
        "freed",
    ] {
        assert!(
            answer(&out, what).contains("CUDA_ERROR_INVALID_VALUE"),
            "{what}"
        );
    }
    assert_eq!(answer(&out, "valid"), "Ok(())");
    assert_eq!(answer(&out, "copied"), "true");
    let err = stderr(&out);
    for e in [
        "kernel emu_test_copy: argument 1 (float const*) = 0xdead0000 is not in any live device allocation (not device memory)",
        "is not in any live device allocation (0 bytes past the end of allocation",
        "is not aligned to 4 bytes",
        "already freed",
    ] {
        assert!(err.contains(e), "stderr lacks {e:?}:\n{err}");
    }
}

#[test]
fn copies_must_stay_inside_one_allocation() {
    let out = child("copy_ranges", false);
    assert!(out.status.success(), "{}", out.status);
    for what in [
        "htod 10 into 5",
        "dtoh 10 from 5",
        "htod 5 into 5 at +1",
        "memset 21 bytes of 20",
    ] {
        assert!(
            answer(&out, what).contains("CUDA_ERROR_INVALID_VALUE"),
            "{what}"
        );
    }
    assert_eq!(answer(&out, "htod 5 into 5"), "Ok(())");
    let err = stderr(&out);
    for e in [
        "cuMemcpyHtoDAsync destination: [0x",
        "+40 bytes) runs 20 bytes past the end of allocation",
        "cuMemcpyDtoHAsync source",
        "+20 bytes) runs 4 bytes past the end",
        "cuMemsetD8Async destination",
    ] {
        assert!(err.contains(e), "stderr lacks {e:?}:\n{err}");
    }
}

#[test]
fn a_barrier_some_threads_never_reach_is_an_error() {
    let out = child("early_return", false);
    assert!(answer(&out, "early return").contains("CUDA_ERROR_LAUNCH_FAILED"));
    let err = stderr(&out);
    let e = "kernel emu_test_early_return, block (0,0,0): __syncthreads() number 1 is reached by 63 of the block's 64 threads (e.g. thread (1,0,0)), but thread (0,0,0) and 0 others returned without reaching it";
    assert!(err.contains(e), "stderr lacks {e:?}:\n{err}");
}

#[test]
fn the_order_check_finds_a_missing_barrier_and_a_race_between_blocks() {
    let out = child("block_sum", true);
    assert_eq!(answer(&out, "with_barrier 1"), "Ok(())");
    assert!(answer(&out, "with_barrier 0").contains("CUDA_ERROR_LAUNCH_FAILED"));
    assert!(answer(&out, "blocks collide").contains("CUDA_ERROR_LAUNCH_FAILED"));
    let err = stderr(&out);
    for e in [
        "kernel emu_test_block_sum: order check failed",
        "(argument 0) differs in",
        "kernel emu_test_blocks_collide: order check failed",
        "first at word 0: forward 7 (0x40e00000), reversed 0 (0x00000000)",
    ] {
        assert!(err.contains(e), "stderr lacks {e:?}:\n{err}");
    }
    // Without the order check, nothing stops either kernel: the check is what finds them.
    let out = child("block_sum", false);
    assert_eq!(answer(&out, "with_barrier 0"), "Ok(())");
    assert_eq!(answer(&out, "blocks collide"), "Ok(())");
}

#[test]
fn modules_are_the_builds_own_fatbins_or_ptx_of_known_kernels() {
    let out = child("modules", false);
    assert!(out.status.success(), "{}", out.status);
    assert!(answer(&out, "garbage image").contains("CUDA_ERROR_INVALID_IMAGE"));
    let mut expected = vec![
        "neither an nvcc fatbin nor PTX text",
        "PTX has kernel not_a_kernel_here, which the stand-in has no host build of",
        "cuModuleGetFunction: PTX has no kernel emu_test_nothing",
    ];
    if answer(&out, "own fatbin") == "none in this build" {
        assert!(
            !std::env::var("KERNELS_REQUIRE_NVCC").is_ok_and(|v| v == "1"),
            "KERNELS_REQUIRE_NVCC=1 but the build has no fatbin"
        );
        // Straight to stderr, past the test harness's capture: a check not run is said.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "note: built without nvcc: the stand-in's fatbin checks did not run here (CI runs them)"
        );
    } else {
        assert_eq!(answer(&out, "own fatbin"), "Ok(())");
        assert!(answer(&out, "altered fatbin").contains("CUDA_ERROR_NO_BINARY_FOR_GPU"));
        expected.extend(["an nvcc fatbin", "that this stand-in was not built with"]);
    }
    assert!(answer(&out, "foreign PTX").contains("CUDA_ERROR_NO_BINARY_FOR_GPU"));
    assert!(answer(&out, "unknown name").contains("CUDA_ERROR_NOT_FOUND"));
    let err = stderr(&out);
    for e in expected {
        assert!(err.contains(e), "stderr lacks {e:?}:\n{err}");
    }
}

#[test]
fn launches_outside_the_device_limits_fail() {
    let out = child("launch_limits", false);
    assert!(answer(&out, "1025 threads").contains("CUDA_ERROR_INVALID_VALUE"));
    assert!(answer(&out, "64 KiB without opt-in").contains("CUDA_ERROR_INVALID_VALUE"));
    assert_eq!(answer(&out, "64 KiB with opt-in"), "Ok(())");
    assert!(stderr(&out).contains("as a GPU requires above 48 KiB"));
}

#[test]
fn bench_runs_on_the_stand_in_and_says_so_first() {
    let run = |device: &str, driver: &str| {
        alphanet()
            .args([
                "bench", "--device", device, "--batch", "256", "--steps", "2",
            ])
            .env("ALPHANET_CUDA", driver)
            .output()
            .unwrap()
    };
    let out = run("cuda:0", "emulator");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{}", stdout, stderr(&out));
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.contains("device: cuda:0 alphanet CPU emulator of the CUDA driver"),
        "{first}"
    );
    assert!(stdout.contains("v2 "), "{stdout}");
    // Per-kernel times from CUDA events: every kernel of the v2 step is listed, once.
    assert!(
        stdout.contains("kernels of one training step, batch 256 (CUDA events"),
        "{stdout}"
    );
    for kernel in [
        "ts_features_forward",
        "lstm_forward",
        "lstm_backward_steps",
        "matmul_splitk",
        "adam_update",
    ] {
        let rows = stdout
            .lines()
            .filter(|l| l.split_whitespace().next() == Some(kernel))
            .count();
        assert_eq!(rows, 1, "{kernel} in\n{stdout}");
    }
    let out = run("cuda:1", "emulator");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cuda:1 requested but the driver sees 1 GPU(s)"),
        "{}",
        stderr(&out)
    );
    // Selection is never a guess: an unknown value is an error, not the real driver.
    let out = run("cuda:0", "cpu-emulator");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("ALPHANET_CUDA=\"cpu-emulator\": the only value is `emulator`"),
        "{}",
        stderr(&out)
    );
}
