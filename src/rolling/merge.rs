//! `alphanet merge RUN`: assembles each variant's factor from the finished jobs of a run (the
//! equal-weight mean over seeds, window by window) and writes the run manifest and the learning
//! curves (`rolling::curves`). An unsharded
//! `alphanet run` ends with the same step, so sharded and unsharded runs give the same bits.

use super::record::{warn_legacy_identity, PanelIdentity, RunFile};
use crate::data::panel::Panel;
use crate::rolling::curves::write_learning_curves;
use crate::rolling::ensemble::ensemble_mean;
use crate::rolling::jobs::{
    all_jobs, is_finished, job_dir, read_prediction, read_record, JobRecord,
};
use crate::rolling::manifest::{code_version, machine};
use crate::rolling::schedule::{plan_windows, Window};
use crate::train::predict::write_factor;
use crate::util::fs::{remove_stale_temps, write_dir_atomically, write_json_atomically};
use crate::{Error, Result};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Merges the run in `run_dir`, reading the panel from `panel_dir` or, by default, from where
/// the run found it.
pub fn merge(run_dir: &Path, panel_dir: Option<&Path>) -> Result<()> {
    let file = RunFile::read(run_dir)?;
    file.spec.validate().map_err(|e| {
        Error::Data(format!(
            "{}/{}: the run's settings are invalid ({e}); the file was edited or damaged",
            run_dir.display(),
            super::record::RUN_FILE
        ))
    })?;
    let dir = panel_dir.unwrap_or(&file.panel_dir);
    if panel_dir.is_none() && !dir.is_dir() {
        return Err(Error::Config(format!(
            "{}: the run was made on panel {}, which is no longer there; if it moved, pass it: \
             alphanet merge {} --panel NEW_DIR",
            run_dir.display(),
            dir.display(),
            run_dir.display()
        )));
    }
    let panel = Panel::open(dir)?;
    if file.panel.is_legacy() {
        warn_legacy_identity(run_dir);
    }
    let diffs = file.panel.differences(&PanelIdentity::of(&panel));
    if !diffs.is_empty() {
        return Err(Error::PanelMismatch {
            panel: dir.to_path_buf(),
            run: run_dir.to_path_buf(),
            diffs: diffs.join("; "),
            fix: "pass the panel the run was made on with --panel".into(),
        });
    }
    merge_run(run_dir, &file, &panel)
}

/// The factors directory of one variant.
pub fn factor_dir(run_dir: &Path, variant: &str) -> PathBuf {
    run_dir.join("factors").join(variant)
}

pub fn merge_run(run_dir: &Path, file: &RunFile, panel: &Panel) -> Result<()> {
    let spec = &file.spec;
    let windows = plan_windows(&panel.meta().dates, &spec.schedule)?;
    let jobs = all_jobs(spec.variants.len(), windows.len(), spec.seeds);
    let ids: Vec<String> = jobs.iter().map(|j| j.id(&spec.variants)).collect();
    let missing: Vec<&String> = ids.iter().filter(|id| !is_finished(run_dir, id)).collect();
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(5).map(|s| s.as_str()).collect();
        return Err(Error::Data(format!(
            "{} of {} jobs of {} are not finished (e.g. {}): run the missing shards (finished jobs are skipped), then merge",
            missing.len(),
            ids.len(),
            run_dir.display(),
            shown.join(", ")
        )));
    }
    let records = ids
        .iter()
        .map(|id| read_record(run_dir, id))
        .collect::<Result<Vec<JobRecord>>>()?;
    let span = windows[0].predict.start..windows[windows.len() - 1].predict.end;
    // Every prediction is checked before anything is written, so that a damaged job leaves no
    // partly merged run behind.
    let per_window = windows.len() * spec.seeds;
    for (v, variant) in spec.variants.iter().enumerate() {
        if !factor_dir(run_dir, variant).exists() {
            let per_variant = &ids[v * per_window..(v + 1) * per_window];
            check_predictions(run_dir, panel, &windows, per_variant, spec.seeds)?;
        }
    }
    for (v, variant) in spec.variants.iter().enumerate() {
        let out = factor_dir(run_dir, variant);
        if out.exists() {
            println!("{} already merged", out.display());
            continue;
        }
        let per_variant = &ids[v * per_window..(v + 1) * per_window];
        let factor = assemble(run_dir, panel, &windows, per_variant, spec.seeds)?;
        remove_stale_temps(&out)?;
        std::fs::create_dir_all(run_dir.join("factors"))
            .map_err(|e| Error::io(run_dir.join("factors"), e))?;
        let written =
            write_dir_atomically(&out, |tmp| write_factor(tmp, panel, &factor, span.clone()));
        match written {
            Ok(()) => {}
            // Another process (a second `run` on this folder) merged the same jobs meanwhile:
            // the same bits, already in place.
            Err(_) if out.join("factor.csv").is_file() => {
                println!("{} merged by another process", out.display());
                continue;
            }
            Err(e) => return Err(e),
        }
        let n = factor.iter().filter(|x| x.is_finite()).count();
        println!(
            "{}: factor.npy [{}, {}] and factor.csv ({n} values, {} .. {})",
            out.display(),
            span.len(),
            panel.n_stocks(),
            panel.meta().dates[span.start],
            panel.meta().dates[span.end - 1]
        );
    }
    write_manifest(run_dir, file, panel, &windows, &records)?;
    let per_variant: Vec<&[String]> = ids.chunks(per_window).collect();
    write_learning_curves(run_dir, &spec.variants, &per_variant)
}

/// Opens every prediction of one variant and checks its shape against its window.
fn check_predictions(
    run_dir: &Path,
    panel: &Panel,
    windows: &[Window],
    ids: &[String],
    seeds: usize,
) -> Result<()> {
    let n = panel.n_stocks();
    for (w, window_ids) in windows.iter().zip(ids.chunks(seeds)) {
        for id in window_ids {
            let p = read_prediction(run_dir, id)?;
            let want = [w.predict.len(), n];
            if p.shape() != want {
                return Err(Error::Data(format!(
                    "{}: shape {:?}, expected {want:?} for window {}; remove the job directory {} and run again to retrain it",
                    p.path().display(),
                    p.shape(),
                    w.index,
                    job_dir(run_dir, id).display()
                )));
            }
        }
    }
    Ok(())
}

/// The `[T, N]` factor of one variant: per window, the mean of its seeds' predictions in seed
/// order; NaN outside the test span. `ids` are the variant's jobs in window-then-seed order.
fn assemble(
    run_dir: &Path,
    panel: &Panel,
    windows: &[Window],
    ids: &[String],
    seeds: usize,
) -> Result<Vec<f32>> {
    let n = panel.n_stocks();
    let mut factor = vec![f32::NAN; panel.n_dates() * n];
    for (w, window_ids) in windows.iter().zip(ids.chunks(seeds)) {
        let preds = window_ids
            .iter()
            .map(|id| read_prediction(run_dir, id))
            .collect::<Result<Vec<_>>>()?;
        let want = [w.predict.len(), n];
        if let Some(bad) = preds.iter().find(|p| p.shape() != want) {
            return Err(Error::Data(format!(
                "{}: shape {:?}, expected {want:?} for window {}",
                bad.path().display(),
                bad.shape(),
                w.index
            )));
        }
        let members: Vec<&[f32]> = preds.iter().map(|p| p.as_slice()).collect();
        factor[w.predict.start * n..w.predict.end * n].copy_from_slice(&ensemble_mean(&members));
    }
    Ok(factor)
}

fn write_manifest(
    run_dir: &Path,
    file: &RunFile,
    panel: &Panel,
    windows: &[Window],
    records: &[JobRecord],
) -> Result<()> {
    let spec = &file.spec;
    let dates = &panel.meta().dates;
    let span = |r: &std::ops::Range<usize>| json!([dates[r.start], dates[r.end - 1]]);
    let variants = spec
        .variants
        .iter()
        .enumerate()
        .map(|(v, name)| {
            let (model, loss) = spec.configs(v, spec.train.seed)?;
            Ok(json!({ "name": name, "model": model, "loss": loss,
                        "factor": format!("factors/{name}") }))
        })
        .collect::<Result<Vec<_>>>()?;
    let windows = windows
        .iter()
        .map(|w| {
            json!({ "index": w.index, "insample": span(&w.insample), "train": span(&w.train),
                    "val": span(&w.val), "predict": span(&w.predict), "shrunk_to": w.shrunk_to })
        })
        .collect::<Vec<_>>();
    let mut versions: Vec<String> = records.iter().map(|r| r.code.to_string()).collect();
    versions.sort();
    versions.dedup();
    if versions.len() > 1 {
        eprintln!(
            "note: the jobs were run by different builds: {}",
            versions.join("; ")
        );
    }
    // Each job's device says which GPU (and driver, and kernel source: fatbin or NVRTC) or CPU
    // trained it; the distinct ones, for a reader of the manifest.
    let mut devices: Vec<&str> = records.iter().map(|r| r.device.as_str()).collect();
    devices.sort_unstable();
    devices.dedup();
    let manifest = json!({
        "spec": spec,
        "devices": devices,
        "panel": file.panel,
        "panel_dir": file.panel_dir,
        "variants": variants,
        "windows": windows,
        "code": code_version(),
        "job_code_versions": versions,
        "merged_on": machine("cpu"),
        "totals": {
            "jobs": records.len(),
            "train_s": records.iter().map(|r| r.train_s).sum::<f64>(),
            "predict_s": records.iter().map(|r| r.predict_s).sum::<f64>(),
        },
        "jobs": records,
    });
    let path = run_dir.join("manifest.json");
    write_json_atomically(&path, &manifest)?;
    println!("manifest: {}", path.display());
    Ok(())
}
