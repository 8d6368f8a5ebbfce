//! The run record: everything that determines a run's results ([`RunSpec`]), the identity of the
//! panel it was made on ([`PanelIdentity`]), both kept in `RUN/run.json` ([`RunFile`]), and the
//! check that a resumed or sharded run repeats them exactly, naming each differing flag with its
//! two values.

use crate::data::fingerprint::FileFingerprint;
use crate::data::panel::Panel;
use crate::model::{variant_configs, InputNorm, LossConfig, ModelConfig};
use crate::ops::elementwise::Activation;
use crate::ops::ts_features::OpSet;
use crate::rolling::claim::LOCKS;
use crate::rolling::schedule::ScheduleConfig;
use crate::train::trainer::TrainConfig;
use crate::util::fs::write_file_atomically;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything that determines a run's results; a resumed or sharded run must repeat it exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSpec {
    /// Report variants, one model family each; `+` combines (`v2.1+v2.3`).
    pub variants: Vec<String>,
    /// Models per window and variant (the ensemble size).
    pub seeds: usize,
    pub schedule: ScheduleConfig,
    pub sample_every: usize,
    pub hidden: usize,
    pub dropout: f64,
    pub ops: String,
    /// Runs started before the option existed fed raw pictures.
    #[serde(default)]
    pub input_norm: InputNorm,
    /// v1's hidden activation; runs started before the option existed used ReLU.
    #[serde(default)]
    pub activation: Activation,
    /// Its `seed` is the ensemble's base seed: seed index k trains with `job_seed(seed, k)`.
    pub train: TrainConfig,
}

/// The largest ensemble `--seeds` accepts.
pub const MAX_SEEDS: usize = 1000;

impl RunSpec {
    /// Model and loss configuration of variant `v` for a model seeded with `seed`.
    pub fn configs(&self, v: usize, seed: u64) -> Result<(ModelConfig, LossConfig)> {
        let base = ModelConfig {
            seed,
            dropout: self.dropout,
            hidden: self.hidden,
            input_norm: self.input_norm,
            activation: self.activation,
            ops: OpSet::parse(&self.ops)?,
            ..ModelConfig::default()
        };
        let (model, loss) = variant_configs(&self.variants[v].replace('+', ","), base)?;
        model.validate()?;
        Ok((model, loss))
    }

    pub fn validate(&self) -> Result<()> {
        if self.variants.is_empty() || self.seeds == 0 || self.sample_every == 0 {
            return Err(Error::Config(
                "--variants must name at least one variant, --seeds and --sample-every must be at least 1".into(),
            ));
        }
        if self.seeds > MAX_SEEDS {
            return Err(Error::Config(format!(
                "--seeds {}: at most {MAX_SEEDS} models per window and variant",
                self.seeds
            )));
        }
        for (k, v) in self.variants.iter().enumerate() {
            if self.variants[..k].contains(v) {
                return Err(Error::Config(format!("--variants lists {v} twice")));
            }
            self.configs(k, 0)?;
        }
        Ok(())
    }
}

/// The panel a run was planned on (its path may change; its contents may not): its shape, its
/// codes and dates in order, and a content fingerprint of every array file
/// ([`crate::data::fingerprint`]). The last three are absent from the `run.json` of runs started
/// by builds before they were recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanelIdentity {
    pub source: String,
    pub n_dates: usize,
    pub n_stocks: usize,
    pub first_date: String,
    pub last_date: String,
    pub feature_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dates: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<FileFingerprint>>,
}

impl PanelIdentity {
    pub fn of(panel: &Panel) -> Self {
        let m = panel.meta();
        PanelIdentity {
            source: m.source.clone(),
            n_dates: panel.n_dates(),
            n_stocks: panel.n_stocks(),
            first_date: m.dates[0].clone(),
            last_date: m.dates[m.dates.len() - 1].clone(),
            feature_names: m.feature_names.clone(),
            codes: Some(m.codes.clone()),
            dates: Some(m.dates.clone()),
            files: Some(panel.fingerprint()),
        }
    }

    /// Whether this (recorded) identity predates codes, dates and fingerprints.
    pub fn is_legacy(&self) -> bool {
        self.codes.is_none() || self.dates.is_none() || self.files.is_none()
    }

    /// What differs between the recorded identity `self` and `now`, one phrase each (empty when
    /// they agree). Parts `self` does not record are not compared.
    pub fn differences(&self, now: &PanelIdentity) -> Vec<String> {
        let mut out = Vec::new();
        if self.source != now.source {
            out.push(format!(
                "source {} (run) vs {} (this panel)",
                self.source, now.source
            ));
        }
        if self.feature_names != now.feature_names {
            out.push("feature names".into());
        }
        let list = |what: &str, a: &[String], b: &[String], unit: &str| -> Option<String> {
            if a == b {
                return None;
            }
            let span = |v: &[String]| match (v.first(), v.last()) {
                (Some(f), Some(l)) => format!("{} {unit} {f} .. {l}", v.len()),
                _ => format!("no {unit}"),
            };
            if a.len() != b.len() {
                return Some(format!(
                    "{what}: {} in the run, {} in this panel",
                    span(a),
                    span(b)
                ));
            }
            let diff: Vec<usize> = (0..a.len()).filter(|&k| a[k] != b[k]).collect();
            let k = diff[0];
            Some(format!(
                "{what}: {} of {} differ, first at position {k}: {} in the run, {} in this panel",
                diff.len(),
                a.len(),
                a[k],
                b[k]
            ))
        };
        match (&self.dates, &now.dates) {
            (Some(a), Some(b)) => out.extend(list("dates", a, b, "dates")),
            _ => {
                if (self.n_dates, &self.first_date, &self.last_date)
                    != (now.n_dates, &now.first_date, &now.last_date)
                {
                    out.push(format!(
                        "dates: {} dates {} .. {} in the run, {} dates {} .. {} in this panel",
                        self.n_dates,
                        self.first_date,
                        self.last_date,
                        now.n_dates,
                        now.first_date,
                        now.last_date
                    ));
                }
            }
        }
        match (&self.codes, &now.codes) {
            (Some(a), Some(b)) => out.extend(list("codes", a, b, "codes")),
            _ => {
                if self.n_stocks != now.n_stocks {
                    out.push(format!(
                        "codes: {} in the run, {} in this panel",
                        self.n_stocks, now.n_stocks
                    ));
                }
            }
        }
        if let (Some(a), Some(b)) = (&self.files, &now.files) {
            let names =
                |v: &[FileFingerprint]| v.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
            if names(a) != names(b) {
                out.push(format!(
                    "files: {:?} in the run, {:?} in this panel",
                    names(a),
                    names(b)
                ));
            } else {
                let sized: Vec<String> = a
                    .iter()
                    .zip(b)
                    .filter(|(x, y)| x.bytes != y.bytes)
                    .map(|(x, y)| {
                        format!("{} ({} bytes in the run, {} now)", x.name, x.bytes, y.bytes)
                    })
                    .collect();
                let changed: Vec<&str> = a
                    .iter()
                    .zip(b)
                    .filter(|(x, y)| x.bytes == y.bytes && x.hash != y.hash)
                    .map(|(x, _)| x.name.as_str())
                    .collect();
                if !sized.is_empty() {
                    out.push(format!("file sizes: {}", sized.join(", ")));
                }
                if !changed.is_empty() {
                    out.push(format!(
                        "contents of {} (same sizes, different data: another seed, a re-import or edited values)",
                        changed.join(", ")
                    ));
                }
            }
        }
        out
    }
}

/// The one warning line for a run whose `run.json` predates panel fingerprints.
pub fn warn_legacy_identity(run_dir: &Path) {
    eprintln!(
        "warning: {}/{RUN_FILE} was written by an older alphanet that did not record the panel's codes, \
         dates and content fingerprint: only its shape, dates and feature names are checked",
        run_dir.display()
    );
}

/// `RUN/run.json`: written by the first process of a run, checked by every later one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunFile {
    pub spec: RunSpec,
    pub panel: PanelIdentity,
    pub panel_dir: PathBuf,
}

pub const RUN_FILE: &str = "run.json";

impl RunFile {
    pub fn read(run_dir: &Path) -> Result<RunFile> {
        let path = run_dir.join(RUN_FILE);
        if !path.is_file() {
            return Err(Error::Data(if run_dir.is_dir() {
                format!(
                    "{} is not a run folder (no {RUN_FILE}): give the --out folder of an \
                     `alphanet run`",
                    run_dir.display()
                )
            } else {
                format!(
                    "{}: no such folder; give the --out folder of an `alphanet run`",
                    run_dir.display()
                )
            }));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::Data(format!(
                "{}: not the run.json of an `alphanet run` folder: {e}",
                path.display()
            ))
        })
    }

    /// The settings that differ, each as its flag with the run's value and this command's,
    /// e.g. `--seeds 2 (run) vs 3 (now)` (the panel is compared separately; its path is not a
    /// setting).
    fn differences(&self, other: &RunFile) -> Vec<String> {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        leaves(
            "",
            &serde_json::to_value(&self.spec).expect("spec serializes"),
            &mut a,
        );
        leaves(
            "",
            &serde_json::to_value(&other.spec).expect("spec serializes"),
            &mut b,
        );
        let value = |list: &[(String, String)], key: &str| {
            (list.iter().find(|(k, _)| k == key)).map_or("(unset)".to_string(), |(_, v)| v.clone())
        };
        let mut keys: Vec<&String> = a.iter().chain(&b).map(|(k, _)| k).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .filter(|k| value(&a, k) != value(&b, k))
            .map(|k| {
                format!(
                    "{} {} (run) vs {} (now)",
                    flag_of(k),
                    value(&a, k),
                    value(&b, k)
                )
            })
            .collect()
    }
}

/// Every leaf of a settings value as (dotted path, value as JSON text).
fn leaves(path: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (k, x) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                leaves(&p, x, out);
            }
        }
        _ => out.push((path.to_string(), v.to_string())),
    }
}

/// The flag that sets a settings path of `run.json` (the path itself where no flag does).
fn flag_of(path: &str) -> String {
    let flag = match path {
        "variants" => "--variants",
        "seeds" => "--seeds",
        "schedule.start" => "--start",
        "schedule.end" => "--end",
        "schedule.insample_days" => "--insample-days",
        "schedule.split" => "--split",
        "sample_every" => "--sample-every",
        "hidden" => "--hidden",
        "dropout" => "--dropout",
        "ops" => "--ops",
        "input_norm" => "--input-norm",
        "activation" => "--activation",
        "train.epochs" => "--epochs",
        "train.patience" => "--patience",
        "train.batch_size" => "--batch",
        "train.adam.lr" => "--lr",
        "train.seed" => "--seed",
        "train.select_by" => "--select-by",
        "train.label" => "--label",
        p if p.starts_with("schedule.every") => "--retrain-every",
        p => return p.to_string(),
    };
    flag.to_string()
}

/// Creates `out` with `run.json`, or checks that an existing run was started with the same
/// settings. Shards starting together may both write `run.json`: the rename makes that safe, and
/// the contents are the same.
pub(crate) fn lock(out: &Path, file: &RunFile) -> Result<()> {
    if out.join(RUN_FILE).is_file() {
        let recorded = RunFile::read(out)?;
        if recorded.panel.is_legacy() {
            warn_legacy_identity(out);
        }
        let diffs = recorded.differences(file);
        if !diffs.is_empty() {
            return Err(Error::Config(format!(
                "{} was started with different settings ({}): resume it with the same flags and panel, or choose a new --out",
                out.display(),
                diffs.join(", ")
            )));
        }
        let panel = recorded.panel.differences(&file.panel);
        if !panel.is_empty() {
            return Err(Error::PanelMismatch {
                panel: file.panel_dir.clone(),
                run: out.to_path_buf(),
                diffs: panel.join("; "),
                fix: format!(
                    "resume with the panel the run was started on ({}), or choose a new --out",
                    recorded.panel_dir.display()
                ),
            });
        }
        return Ok(());
    }
    if out.exists() {
        let foreign = std::fs::read_dir(out)
            .map_err(|e| Error::io(out, e))?
            .filter_map(|e| e.ok())
            .any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                !(name == "jobs" || name == LOCKS || name.starts_with(&format!(".{RUN_FILE}.tmp-")))
            });
        if foreign {
            return Err(Error::Config(format!(
                "{} exists and is not a run folder (no {RUN_FILE}): choose a new --out",
                out.display()
            )));
        }
    }
    std::fs::create_dir_all(out.join("jobs")).map_err(|e| Error::io(out, e))?;
    let json = serde_json::to_vec_pretty(file).expect("run file serializes");
    write_file_atomically(&out.join(RUN_FILE), &json)
}
