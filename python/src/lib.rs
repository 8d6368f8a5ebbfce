//! `alphanet_rs._alphanet_rs`: the Python extension. Thin bindings over the library functions the
//! command-line program calls (`app::train`, `app::predict`, `app::run`, `app::eval`, `train::checkpoint`,
//! `train::predict`, the qlib importer); the user-facing API is the pure-Python package around it
//! (`python/alphanet_rs/`). Structured results cross as JSON strings, factors as NumPy arrays
//! that take over the engine's buffer without a copy.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use alphanet::app::args::{
    init_threads, parse_activation, parse_ratio, ModelArgs, NetArgs, TrainArgs,
};
use alphanet::app::eval::{self as app_eval, EvalOptions};
use alphanet::app::predict::prediction_dates;
use alphanet::app::train::fit_insample;
use alphanet::cuda::{Backend, DeviceChoice};
use alphanet::data::import_qlib::{import_qlib as qlib_import, QlibOptions};
use alphanet::data::panel::Panel;
use alphanet::data::synth::{write_synth, SynthConfig};
use alphanet::eval::baselines::Baseline;
use alphanet::eval::factor::FactorSpec;
use alphanet::eval::layered::LayerConfig;
use alphanet::model::{Arch, LossConfig, Model};
use alphanet::rolling::driver::{self, RunOptions};
use alphanet::rolling::jobs::Shard;
use alphanet::rolling::record::RunSpec;
use alphanet::rolling::schedule::{Period, ScheduleConfig};
use alphanet::train::checkpoint;
use alphanet::train::predict::{predict_factor, Output};
use alphanet::train::progress::with_epoch_observer;
use alphanet::train::trainer::{EpochLog, TrainReport};
use alphanet::Error;
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// The default feature-layer ops of `alphanet train` / `run` (`--ops`).
const DEFAULT_OPS: &str = "corr,cov,stddev,zscore,return,decaylinear,mean";
const DEFAULT_LABEL: &str = alphanet::train::trainer::LabelNorm::DEFAULT.name();
/// Samples per prediction batch, as `alphanet predict`.
const PREDICT_BATCH: usize = 4096;

/// An engine error as the Python exception of `alphanet_rs.errors` for its kind, with the text
/// the command-line program prints after `error: `.
fn to_py(e: Error) -> PyErr {
    let class = match &e {
        Error::Config(_) => "ConfigError",
        Error::Data(_) => "DataError",
        Error::Panel { .. } | Error::Npy { .. } | Error::PanelMismatch { .. } => "PanelError",
        Error::Checkpoint { .. } => "CheckpointError",
        Error::Exists { .. } => "OutputExistsError",
        Error::Io { .. } | Error::Unwritable { .. } => "AlphaNetIOError",
        Error::Cuda(_) => "CudaError",
    };
    let msg = e.to_string();
    Python::attach(|py| {
        let made = py
            .import("alphanet_rs.errors")
            .and_then(|m| m.getattr(class))
            .and_then(|c| c.call1((msg.clone(),)));
        match made {
            Ok(exc) => PyErr::from_value(exc),
            Err(_) => PyRuntimeError::new_err(msg),
        }
    })
}

trait OrPy<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> OrPy<T> for alphanet::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// The device hook: what `device=` means for `train` and `Model.predict`, in one place. The
/// library's `train`/`predict` take the device since issue 13, so this is the CLI's parse
/// (`auto`, `cpu`, `cuda`, `cuda:K`; a bad string raises the CLI's message) and the choice is
/// passed on to `Backend::open`, as `alphanet train --device` / `predict --device` do.
fn training_device(device: &str) -> PyResult<DeviceChoice> {
    device.parse().py_err()
}

/// Calls the Python progress callback (if any) with each epoch's log as a dict.
fn epoch_callback(mut cb: Option<Py<PyAny>>) -> impl FnMut(&EpochLog, usize) + 'static {
    move |log: &EpochLog, epochs: usize| {
        if let Some(f) = &cb {
            let failed = Python::attach(|py| {
                let json = serde_json::to_string(log).expect("an epoch log serializes");
                f.call1(py, (json, epochs))
                    .map_err(|e| e.print(py))
                    .is_err()
            });
            if failed {
                // A failing progress display must not stop training: shown once, then dropped.
                cb = None;
            }
        }
    }
}

fn parse_arch(s: &str) -> PyResult<Arch> {
    match s.trim().to_ascii_lowercase().as_str() {
        "v1" => Ok(Arch::V1),
        "v2" => Ok(Arch::V2),
        "v3" => Ok(Arch::V3),
        _ => Err(to_py(Error::Config(format!(
            "--model {s:?}: expected v1, v2 or v3"
        )))),
    }
}

/// The JSON of a panel's `meta.json`, after opening and checking the panel.
#[pyfunction]
fn panel_meta(py: Python<'_>, path: PathBuf) -> PyResult<String> {
    py.detach(|| {
        let panel = Panel::open(&path)?;
        Ok(serde_json::to_string(panel.meta()).expect("panel meta serializes"))
    })
    .py_err()
}

/// `alphanet synth --out OUT --stocks S --days D --seed SEED`, without the summary line.
#[pyfunction]
fn synth(py: Python<'_>, out: PathBuf, stocks: usize, days: usize, seed: u64) -> PyResult<()> {
    py.detach(|| write_synth(&SynthConfig { stocks, days, seed }, &out))
        .py_err()
}

/// `alphanet import qlib`; returns the import summary as JSON.
#[pyfunction]
#[pyo3(signature = (src, out, instruments="all", start=None, end=None, industry=None, benchmark=None))]
#[allow(clippy::too_many_arguments)]
fn import_qlib(
    py: Python<'_>,
    src: PathBuf,
    out: PathBuf,
    instruments: &str,
    start: Option<String>,
    end: Option<String>,
    industry: Option<PathBuf>,
    benchmark: Option<String>,
) -> PyResult<String> {
    let o = QlibOptions {
        src,
        out,
        instruments: instruments.to_string(),
        start,
        end,
        industry,
        benchmark,
    };
    let s = py
        .detach(|| qlib_import(&o, &indicatif::ProgressBar::hidden()))
        .py_err()?;
    Ok(serde_json::json!({
        "n_dates": s.n_dates,
        "n_stocks": s.n_stocks,
        "skipped": s.skipped,
        "missing_rows": s.missing_rows,
        "invalid_rows": s.audit.invalid,
        "rows_without_prices": s.audit.no_price,
        "warnings": s.audit.warnings().into_iter().chain(s.warnings).collect::<Vec<_>>(),
    })
    .to_string())
}

/// Sets the size of the engine's worker pool (once per process, before any work).
#[pyfunction]
fn set_threads(n: usize) -> PyResult<()> {
    init_threads(Some(n)).py_err()
}

/// A factor `[dates, stocks]`, its dates and its codes.
type Prediction<'py> = (Bound<'py, PyArray2<f32>>, Vec<String>, Vec<String>);

/// A trained model: what a checkpoint holds.
#[pyclass(name = "Model", module = "alphanet_rs._alphanet_rs")]
struct PyModel {
    model: Mutex<Model<f32>>,
    loss: LossConfig,
    feature_names: Vec<String>,
    report: Option<TrainReport>,
    /// Where it was loaded from or last saved to; names the model in errors.
    origin: Mutex<PathBuf>,
}

impl PyModel {
    fn origin(&self) -> PathBuf {
        self.origin.lock().expect("origin lock").clone()
    }
}

#[pymethods]
impl PyModel {
    /// Predictions over `start ..= end` of `panel`: (factor `[dates, stocks]` float32 with NaN
    /// where there is no prediction, the dates, the codes), as `alphanet predict` computes them.
    #[pyo3(signature = (panel, start, end, device="auto"))]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        panel: PathBuf,
        start: &str,
        end: &str,
        device: &str,
    ) -> PyResult<Prediction<'py>> {
        let device = training_device(device)?;
        let origin = self.origin();
        let (factor, dates, codes, n) = py
            .detach(|| -> alphanet::Result<_> {
                let panel = Panel::open(&panel)?;
                let range = prediction_dates(&panel, &self.feature_names, &origin, start, end)?;
                let backend = Backend::open(device)?;
                let model = self.model.lock().expect("model lock");
                let mut factor = predict_factor(
                    &backend,
                    &panel,
                    &model,
                    range.clone(),
                    PREDICT_BATCH,
                    Output::of(&self.loss),
                )?;
                let n = panel.n_stocks();
                factor.truncate(range.end * n);
                factor.drain(..range.start * n);
                let meta = panel.meta();
                Ok((factor, meta.dates[range].to_vec(), meta.codes.clone(), n))
            })
            .py_err()?;
        let rows = dates.len();
        let array = Array2::from_shape_vec((rows, n), factor)
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        Ok((array.into_pyarray(py), dates, codes))
    }

    /// Writes the checkpoint directory `alphanet train --out` writes (refuses an existing path).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| {
            alphanet::util::fs::check_output_creatable(&path)?;
            let model = self.model.lock().expect("model lock");
            checkpoint::save(
                &path,
                &model,
                &self.loss,
                &self.feature_names,
                self.report.as_ref(),
            )
        })
        .py_err()?;
        *self.origin.lock().expect("origin lock") = path;
        Ok(())
    }

    /// Reads a checkpoint directory (`alphanet train --out`, or a `run` job's `checkpoint/`).
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<PyModel> {
        let (model, cfg) = py.detach(|| checkpoint::load(&path)).py_err()?;
        Ok(PyModel {
            model: Mutex::new(model),
            loss: cfg.loss,
            feature_names: cfg.feature_names,
            report: cfg.train,
            origin: Mutex::new(path),
        })
    }

    /// The checkpoint's `config.json` content as JSON (model, loss, features, training report).
    fn config_json(&self) -> String {
        let model = self.model.lock().expect("model lock");
        serde_json::json!({
            "format_version": checkpoint::FORMAT_VERSION,
            "model": model.cfg,
            "loss": self.loss,
            "drawn_features": model.drawn,
            "feature_names": self.feature_names,
            "train": self.report,
        })
        .to_string()
    }
}

/// `alphanet train` without writing a checkpoint: returns the fitted model. The arguments are the
/// CLI's flags and go through the CLI's own parsing and checks (`ModelArgs`, `TrainArgs`).
#[pyfunction]
#[pyo3(signature = (
    panel, *, variant="v2", model=None, pair_sample=None, neutralize_loss=false,
    long_weight=None, ops=DEFAULT_OPS, dropout=0.0, hidden=30, input_norm="none", activation="relu",
    epochs=100, patience=10, select_by="rankic", label=DEFAULT_LABEL, batch=1000, lr=1e-4, seed=0, start=None, end=None,
    sample_every=1, split="4:1", device="auto", progress=false, on_epoch=None
))]
#[allow(clippy::too_many_arguments)]
fn train(
    py: Python<'_>,
    panel: PathBuf,
    variant: &str,
    model: Option<&str>,
    pair_sample: Option<usize>,
    neutralize_loss: bool,
    long_weight: Option<f64>,
    ops: &str,
    dropout: f64,
    hidden: usize,
    input_norm: &str,
    activation: &str,
    epochs: usize,
    patience: usize,
    select_by: &str,
    label: &str,
    batch: usize,
    lr: f64,
    seed: u64,
    start: Option<String>,
    end: Option<String>,
    sample_every: usize,
    split: &str,
    device: &str,
    progress: bool,
    on_epoch: Option<Py<PyAny>>,
) -> PyResult<PyModel> {
    let device = training_device(device)?;
    let margs = ModelArgs {
        variant: variant.to_string(),
        model: model.map(parse_arch).transpose()?,
        pair_sample,
        neutralize_loss,
        long_weight,
        net: NetArgs {
            ops: ops.to_string(),
            dropout,
            hidden,
            input_norm: input_norm.parse().py_err()?,
            activation: activation.to_string(),
        },
    };
    let targs = TrainArgs {
        epochs,
        patience,
        select_by: select_by.to_string(),
        label: label.to_string(),
        batch,
        lr,
        seed,
        threads: None,
    };
    let (m, l) = margs.configs(seed).py_err()?;
    let cfg = targs.config().py_err()?;
    let ratio = parse_ratio(split).py_err()?;
    let observer = epoch_callback(on_epoch);
    let (fitted, names) = py
        .detach(|| -> alphanet::Result<_> {
            let panel = Panel::open(&panel)?;
            let fitted = with_epoch_observer(observer, || {
                fit_insample(
                    device,
                    &panel,
                    &m,
                    &l,
                    &cfg,
                    (start.as_deref(), end.as_deref()),
                    sample_every,
                    ratio,
                    progress,
                )
            })?;
            Ok((fitted, panel.meta().feature_names.clone()))
        })
        .py_err()?;
    Ok(PyModel {
        model: Mutex::new(fitted.model),
        loss: l,
        feature_names: names,
        report: Some(fitted.report),
        origin: Mutex::new(PathBuf::from("<model trained in Python, not saved>")),
    })
}

/// `alphanet run`: the rolling protocol into the run folder `out`; returns the run summary as
/// JSON (jobs, ran, skipped, by_others).
#[pyfunction]
#[pyo3(signature = (
    panel, out, *, start, end=None, variants="v2,v2.1,v2.2,v2.3", seeds=10, retrain_every="6M",
    insample_days=1500, sample_every=2, split="4:1", shard="0/1", device="auto", ops=DEFAULT_OPS,
    dropout=0.0, hidden=30, input_norm="none", activation="relu", epochs=100, patience=10, select_by="rankic",
    label=DEFAULT_LABEL, batch=1000, lr=1e-4, seed=0, on_epoch=None
))]
#[allow(clippy::too_many_arguments)]
fn run(
    py: Python<'_>,
    panel: PathBuf,
    out: PathBuf,
    start: String,
    end: Option<String>,
    variants: &str,
    seeds: usize,
    retrain_every: &str,
    insample_days: usize,
    sample_every: usize,
    split: &str,
    shard: &str,
    device: &str,
    ops: &str,
    dropout: f64,
    hidden: usize,
    input_norm: &str,
    activation: &str,
    epochs: usize,
    patience: usize,
    select_by: &str,
    label: &str,
    batch: usize,
    lr: f64,
    seed: u64,
    on_epoch: Option<Py<PyAny>>,
) -> PyResult<String> {
    let train = TrainArgs {
        epochs,
        patience,
        select_by: select_by.to_string(),
        label: label.to_string(),
        batch,
        lr,
        seed,
        threads: None,
    };
    let spec = RunSpec {
        variants: variants
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect(),
        seeds,
        schedule: ScheduleConfig {
            start,
            end,
            every: retrain_every.parse::<Period>().py_err()?,
            insample_days,
            split: parse_ratio(split).py_err()?,
        },
        sample_every,
        hidden,
        dropout,
        ops: ops.to_string(),
        input_norm: input_norm.parse().py_err()?,
        activation: parse_activation(activation).py_err()?,
        train: train.config().py_err()?,
    };
    let opts = RunOptions {
        panel,
        out,
        spec,
        shard: shard.parse::<Shard>().py_err()?,
        device: device.parse::<DeviceChoice>().py_err()?,
    };
    let observer = epoch_callback(on_epoch);
    let s = py
        .detach(|| with_epoch_observer(observer, || driver::run(&opts)))
        .py_err()?;
    Ok(serde_json::json!({
        "jobs": s.jobs,
        "ran": s.ran,
        "skipped": s.skipped,
        "by_others": s.by_others,
    })
    .to_string())
}

/// `alphanet eval`: factors given as (name, path of a long CSV or `.npy`); writes the report
/// folder `out` and returns {"dates": panel dates, "factors": [{"name", "eval"}]} as JSON.
#[pyfunction]
#[pyo3(signature = (panel, factors, out, every=10, groups=5, cost=0.002, baselines=None))]
#[allow(clippy::too_many_arguments)]
fn evaluate(
    py: Python<'_>,
    panel: PathBuf,
    factors: Vec<(String, PathBuf)>,
    out: PathBuf,
    every: usize,
    groups: usize,
    cost: f64,
    baselines: Option<&str>,
) -> PyResult<String> {
    // The same check (and message) as the command line's `eval`.
    if every == 0 || groups < 2 || !(0.0..0.5).contains(&cost) {
        return Err(to_py(Error::Config(format!(
            "--every {every} must be ≥ 1, --groups {groups} ≥ 2, --cost {cost} in [0, 0.5)"
        ))));
    }
    let opts = EvalOptions {
        panel: panel.clone(),
        factors: factors
            .into_iter()
            .map(|(name, path)| FactorSpec {
                name,
                path,
                first_date: None,
            })
            .collect(),
        out,
        layers: LayerConfig {
            every,
            groups,
            cost,
        },
        baselines: match baselines {
            Some(list) => Baseline::parse_list(list).py_err()?,
            None => Vec::new(),
        },
    };
    py.detach(|| -> alphanet::Result<String> {
        let evals = app_eval::run(&opts)?;
        let meta = Panel::open(&panel)?.meta().clone();
        Ok(serde_json::json!({
            "dates": meta.dates,
            "style_names": meta.style_names,
            "factors": evals
                .iter()
                .map(|(name, e)| serde_json::json!({ "name": name, "eval": e }))
                .collect::<Vec<_>>(),
        })
        .to_string())
    })
    .py_err()
}

/// Parses a device string as the CLI does (`auto`, `cpu`, `cuda`, `cuda:K`), returning its
/// canonical form; a bad one raises the CLI's error.
#[pyfunction]
fn parse_device(device: &str) -> PyResult<String> {
    Ok(device.parse::<DeviceChoice>().py_err()?.to_string())
}

#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Whether `path` is a panel directory (has `meta.json`); cheap, no validation.
#[pyfunction]
fn is_panel_dir(path: PathBuf) -> bool {
    Path::new(&path).join("meta.json").is_file()
}

#[pymodule]
fn _alphanet_rs(m: &Bound<'_, PyModule>) -> PyResult<()> {
    alphanet::cuda::word_for_python();
    m.add_class::<PyModel>()?;
    m.add_function(wrap_pyfunction!(panel_meta, m)?)?;
    m.add_function(wrap_pyfunction!(synth, m)?)?;
    m.add_function(wrap_pyfunction!(import_qlib, m)?)?;
    m.add_function(wrap_pyfunction!(set_threads, m)?)?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(parse_device, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(is_panel_dir, m)?)?;
    Ok(())
}
