//! An optional per-epoch observer for programs that embed the engine (the Python package uses it
//! to show training progress in notebooks, where the terminal progress bar cannot draw).
//!
//! The observer is per thread: it sees the epochs of every training that runs on the thread
//! inside [`with_epoch_observer`], and nothing else. Training itself does not change.

use serde::{Deserialize, Serialize};
use std::cell::RefCell;

/// One epoch of training: its losses, validation RankIC and speed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    /// Mean over validation dates of the Spearman correlation between prediction and label;
    /// absent where no date had a defined correlation (or in files from older versions).
    #[serde(default)]
    pub val_rank_ic: Option<f64>,
    pub samples_per_s: f64,
}

type Observer = Box<dyn FnMut(&EpochLog, usize)>;

thread_local! {
    static OBSERVER: RefCell<Option<Observer>> = const { RefCell::new(None) };
}

/// Puts back the observer that was installed before, also when `f` panics.
struct Restore(Option<Observer>);

impl Drop for Restore {
    fn drop(&mut self) {
        let prev = self.0.take();
        OBSERVER.with(|o| *o.borrow_mut() = prev);
    }
}

/// Runs `f`, calling `observer(log, planned_epochs)` after each training epoch that `f` runs on
/// this thread (the epoch's log and the configured number of epochs).
pub fn with_epoch_observer<R>(
    observer: impl FnMut(&EpochLog, usize) + 'static,
    f: impl FnOnce() -> R,
) -> R {
    let prev = OBSERVER.with(|o| o.borrow_mut().replace(Box::new(observer)));
    let _restore = Restore(prev);
    f()
}

/// Called by the training loop after each epoch.
pub(crate) fn epoch_done(log: &EpochLog, epochs: usize) {
    // Taken out while it runs, so an observer that itself trains does not re-enter it.
    let Some(mut obs) = OBSERVER.with(|o| o.borrow_mut().take()) else {
        return;
    };
    obs(log, epochs);
    OBSERVER.with(|o| {
        let mut slot = o.borrow_mut();
        if slot.is_none() {
            *slot = Some(obs);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    fn log(epoch: usize) -> EpochLog {
        EpochLog {
            epoch,
            train_loss: 1.0,
            val_loss: 1.0,
            val_rank_ic: None,
            samples_per_s: 1.0,
        }
    }

    #[test]
    fn observer_sees_epochs_inside_only() {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let s = seen.clone();
        epoch_done(&log(0), 3);
        with_epoch_observer(
            move |l, n| s.borrow_mut().push((l.epoch, n)),
            || {
                epoch_done(&log(1), 3);
                epoch_done(&log(2), 3);
            },
        );
        epoch_done(&log(3), 3);
        assert_eq!(*seen.borrow(), vec![(1, 3), (2, 3)]);
    }
}
