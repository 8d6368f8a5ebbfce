//! Per-kernel GPU time from CUDA events: while timing is on, every launch is bracketed by two
//! timing events on the stream, and [`KernelTimer::take`] turns the pairs into milliseconds per
//! kernel name. Off by default (two event records per launch are not free); `alphanet bench
//! --device cuda:K` turns it on for a few extra steps after the timed ones.

use std::sync::Mutex;

use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::{CudaEvent, CudaStream};

use crate::error::{Error, Result};

/// One kernel's share of the recorded launches.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KernelTime {
    pub name: String,
    pub launches: usize,
    /// Sum over its launches of the time between the events around each launch.
    pub ms: f64,
}

#[derive(Default)]
pub struct KernelTimer {
    /// (kernel, start, end) of every launch since timing was turned on; None when off.
    records: Mutex<Option<Vec<(String, CudaEvent, CudaEvent)>>>,
}

impl KernelTimer {
    /// Starts recording (dropping anything recorded before).
    pub fn start(&self) {
        *self.records.lock().unwrap() = Some(Vec::new());
    }

    /// Runs `launch`, bracketed by timing events when timing is on.
    pub fn around<T>(
        &self,
        name: &str,
        stream: &CudaStream,
        launch: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let mut records = self.records.lock().unwrap();
        let Some(records) = records.as_mut() else {
            return launch();
        };
        let event = || stream.record_event(Some(CUevent_flags::CU_EVENT_DEFAULT));
        let start = event().map_err(Error::cuda)?;
        let out = launch()?;
        records.push((name.to_string(), start, event().map_err(Error::cuda)?));
        Ok(out)
    }

    /// Stops recording and returns the time per kernel, largest first (waits for the GPU).
    pub fn take(&self) -> Result<Vec<KernelTime>> {
        let records = self.records.lock().unwrap().take().unwrap_or_default();
        let mut times: Vec<KernelTime> = Vec::new();
        for (name, start, end) in records {
            let ms = start.elapsed_ms(&end).map_err(Error::cuda)? as f64;
            match times.iter_mut().find(|t| t.name == name) {
                Some(t) => {
                    t.launches += 1;
                    t.ms += ms;
                }
                None => times.push(KernelTime {
                    name,
                    launches: 1,
                    ms,
                }),
            }
        }
        times.sort_by(|a, b| b.ms.total_cmp(&a.ms));
        Ok(times)
    }
}
