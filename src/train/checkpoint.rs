//! Checkpoints: `model.safetensors` (every parameter by name, plus each BatchNorm's moving
//! statistics) and `config.json` (model and loss configuration, the v2.1 feature draw, the
//! panel's feature names, the training report), written atomically as one directory.

use super::trainer::TrainReport;
use crate::util::fs::write_dir_atomically;
// The largest width a checkpoint may declare is the bound training checks (guards against
// allocating an absurd model from an edited config before its tensors are compared).
use crate::model::config::MAX_WIDTH;
use crate::model::{LossConfig, Model, ModelConfig};
use crate::{Error, Result};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointConfig {
    pub format_version: u32,
    pub model: ModelConfig,
    pub loss: LossConfig,
    /// v2.1's drawn features (also derivable from the seed; stored so a draw is never re-made).
    pub drawn_features: Option<Vec<u16>>,
    pub feature_names: Vec<String>,
    pub train: Option<TrainReport>,
}

fn bn_names(k: usize) -> (String, String) {
    (format!("bn{k}.moving_mean"), format!("bn{k}.moving_var"))
}

pub fn save(
    dir: &Path,
    model: &Model<f32>,
    loss: &LossConfig,
    feature_names: &[String],
    report: Option<&TrainReport>,
) -> Result<()> {
    let cfg = CheckpointConfig {
        format_version: FORMAT_VERSION,
        model: model.cfg.clone(),
        loss: *loss,
        drawn_features: model.drawn.clone(),
        feature_names: feature_names.to_vec(),
        train: report.cloned(),
    };
    let mut tensors: Vec<(String, Vec<usize>, &[f32])> = model
        .store
        .entries
        .iter()
        .map(|e| {
            (
                e.name.clone(),
                e.shape.clone(),
                &model.store.data[e.range.clone()],
            )
        })
        .collect();
    for (k, s) in model.bn.iter().enumerate() {
        let (m, v) = bn_names(k);
        tensors.push((m, vec![s.moving_mean.len()], &s.moving_mean));
        tensors.push((v, vec![s.moving_var.len()], &s.moving_var));
    }
    let views = tensors
        .iter()
        .map(|(name, shape, data)| {
            TensorView::new(Dtype::F32, shape.clone(), bytemuck::cast_slice(data))
                .map(|v| (name.clone(), v))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Checkpoint {
            path: dir.into(),
            msg: e.to_string(),
        })?;
    let bytes = safetensors::serialize(views, &None).map_err(|e| Error::Checkpoint {
        path: dir.into(),
        msg: e.to_string(),
    })?;
    let json = serde_json::to_vec_pretty(&cfg).expect("config serializes");
    write_dir_atomically(dir, |tmp| {
        std::fs::write(tmp.join("model.safetensors"), &bytes)
            .map_err(|e| Error::io(tmp.join("model.safetensors"), e))?;
        std::fs::write(tmp.join("config.json"), &json)
            .map_err(|e| Error::io(tmp.join("config.json"), e))
    })
}

/// Checks the parts of a loaded configuration that the data path fixes: pictures of
/// `PICTURE_DAYS` days of `N_FEATURES` features, matching feature names, sane widths.
fn check_shape_fits(cfg: &CheckpointConfig) -> std::result::Result<(), String> {
    use crate::data::samples::{N_FEATURES, PICTURE_DAYS};
    let m = &cfg.model;
    if m.n_features != N_FEATURES || cfg.feature_names.len() != N_FEATURES {
        return Err(format!(
            "n_features {} with {} feature names, pictures have {N_FEATURES}",
            m.n_features,
            cfg.feature_names.len()
        ));
    }
    if m.days != PICTURE_DAYS {
        return Err(format!("days {}, pictures have {PICTURE_DAYS}", m.days));
    }
    if m.hidden > MAX_WIDTH || m.dense_hidden == 0 || m.dense_hidden > MAX_WIDTH {
        return Err(format!(
            "hidden {} / dense_hidden {} outside 1..={MAX_WIDTH}",
            m.hidden, m.dense_hidden
        ));
    }
    if m.stride == 0 || m.stride2 == 0 {
        return Err("a stride of 0".into());
    }
    for (name, x) in [
        ("v1_dropout", m.v1_dropout),
        ("l2", m.l2),
        ("bn_eps", m.bn_eps),
        ("bn_momentum", m.bn_momentum),
    ] {
        if !x.is_finite() || x < 0.0 {
            return Err(format!("{name} = {x}"));
        }
    }
    if !(0.0..1.0).contains(&m.v1_dropout) {
        return Err(format!("v1_dropout = {}", m.v1_dropout));
    }
    Ok(())
}

pub fn load(dir: &Path) -> Result<(Model<f32>, CheckpointConfig)> {
    let err = |msg: String| Error::Checkpoint {
        path: dir.into(),
        msg,
    };
    if !dir.join("model.safetensors").is_file() || !dir.join("config.json").is_file() {
        return Err(err(
            "not a checkpoint directory (it needs model.safetensors and config.json); \
             `alphanet train --out DIR` writes one"
                .into(),
        ));
    }
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?;
    let cfg: CheckpointConfig = serde_json::from_str(&text)
        .map_err(|e| err(format!("config.json is not a checkpoint config: {e}")))?;
    if cfg.format_version != FORMAT_VERSION {
        return Err(err(format!(
            "format version {} (this build reads {FORMAT_VERSION})",
            cfg.format_version
        )));
    }
    check_shape_fits(&cfg).map_err(|m| {
        err(format!(
            "config.json describes a model this engine cannot feed ({m}); the file was edited or \
             damaged: re-create the checkpoint"
        ))
    })?;
    let mut model = Model::<f32>::new(&cfg.model).map_err(|e| {
        err(format!(
            "config.json holds an invalid model configuration ({e}); re-create the checkpoint"
        ))
    })?;
    if model.drawn != cfg.drawn_features {
        return Err(err(format!(
            "the v2.1 feature draw in config.json ({:?}) differs from the one its seed gives ({:?})",
            cfg.drawn_features, model.drawn
        )));
    }
    let st_path = dir.join("model.safetensors");
    let bytes = std::fs::read(&st_path).map_err(|e| Error::io(&st_path, e))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| {
        err(format!(
            "model.safetensors ({} bytes) is truncated or damaged: its header does not describe its \
             contents ({e:?}); re-create the checkpoint (`alphanet train`, or rerun the job)",
            bytes.len()
        ))
    })?;
    let fill = |name: &str, shape: &[usize], dst: &mut [f32]| -> Result<()> {
        let t = st.tensor(name).map_err(|_| {
            err(format!(
                "model.safetensors has no tensor `{name}`: it was saved by a different model"
            ))
        })?;
        if t.dtype() != Dtype::F32 || t.shape() != shape {
            return Err(err(format!(
                "tensor `{name}` is {:?} {:?}, the model expects F32 {shape:?}",
                t.dtype(),
                t.shape()
            )));
        }
        // Copy through bytes: the file's data need not be 4-byte aligned.
        for (d, c) in dst.iter_mut().zip(t.data().chunks_exact(4)) {
            *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        Ok(())
    };
    for e in model.store.entries.clone() {
        fill(&e.name, &e.shape, &mut model.store.data[e.range.clone()])?;
    }
    for (k, s) in model.bn.iter_mut().enumerate() {
        let (m, v) = bn_names(k);
        let c = s.moving_mean.len();
        fill(&m, &[c], &mut s.moving_mean)?;
        fill(&v, &[c], &mut s.moving_var)?;
    }
    Ok((model, cfg))
}
