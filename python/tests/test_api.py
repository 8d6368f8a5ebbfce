"""The notebook API end to end on small synthetic panels."""

import numpy as np
import pandas as pd

import alphanet_rs as an
from conftest import random_market


def test_synth_train_predict_evaluate(tmp_path):
    panel = an.synth(stocks=40, days=260, seed=5)
    assert panel.source == "synth" and panel.n_stocks == 40
    model = an.train(panel, epochs=2, seed=0, end=panel.meta["dates"][200], progress=False)
    hist = model.history
    assert list(hist.index) == [1, 2] and {"train_loss", "val_loss", "val_rank_ic"} <= set(hist.columns)
    f = model.predict(panel, start=panel.meta["dates"][215])
    assert isinstance(f, pd.Series) and list(f.index.names) == ["date", "code"]
    assert f.index.get_level_values(0).dtype.kind == "M" and np.isfinite(f.values).all()
    ev = an.evaluate(panel, {"v2": f}, tmp_path / "report", baselines=["reversal5"], progress=False)
    assert list(ev.summary.index) == ["v2", "reversal5"]
    assert np.isfinite(ev.summary.loc["v2", "rank_ic"])
    exposures = [f"{k}_exposure" for k in panel.meta["style_names"]]
    assert exposures and np.isfinite(ev.summary.loc["v2", exposures].astype(float)).all()
    assert set(ev.ic.columns) == {"v2", "reversal5"} and len(ev.ic) >= 2
    assert list(ev.groups["v2"].columns) == ["G1", "G2", "G3", "G4", "G5", "benchmark"]
    assert (tmp_path / "report" / "metrics.json").is_file()


def test_progress_goes_through_the_epoch_observer(capsys):
    panel = an.synth(stocks=20, days=200, seed=1)
    an.train(panel, epochs=2, seed=0, progress=True)
    err = capsys.readouterr().err
    assert "train" in err and "2/2" in err
    an.train(panel, epochs=2, seed=0, progress=False)
    assert "2/2" not in capsys.readouterr().err


def test_run_rolling_protocol(tmp_path):
    panel = an.synth(stocks=30, days=320, seed=2)
    start = panel.meta["dates"][250]
    res = an.run(panel, tmp_path / "run", start=start, variants=["v2"], seeds=2, retrain_every="40d",
                 insample_days=150, epochs=1, progress=False)
    assert res.summary["ran"] == res.summary["jobs"] == 4
    f = res.factors["v2"]
    assert f.index.get_level_values(0).min() == pd.Timestamp(start) and np.isfinite(f.values).all()
    again = an.run(panel, tmp_path / "run", start=start, variants="v2", seeds=2, retrain_every="40d",
                   insample_days=150, epochs=1, progress=False)
    assert again.summary["skipped"] == 4 and again.summary["ran"] == 0
    # A job's checkpoint is an ordinary checkpoint.
    job = next((tmp_path / "run" / "jobs").iterdir())
    assert an.Model.load(job / "checkpoint").config["feature_names"] == panel.meta["feature_names"]


def test_caller_codes_come_back(tmp_path):
    m = random_market(stocks=10, days=150, seed=4)
    codes = [c.lower() for c in m["codes"]]
    panel = an.from_arrays(m["dates"], codes, open=m["open"], high=m["high"], low=m["low"], close=m["close"],
                           volume=m["volume"])
    assert panel.codes == codes
    model = an.train(panel, epochs=1, progress=False)
    assert set(model.predict(panel).index.get_level_values(1)) <= set(codes)


def test_training_releases_the_gil():
    import threading
    import time

    panel = an.synth(stocks=40, days=300, seed=3)
    ticks = []
    done = threading.Event()

    def tick():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    t = threading.Thread(target=tick)
    t.start()
    try:
        t0 = time.perf_counter()
        an.train(panel, epochs=3, seed=0, progress=False)
        t1 = time.perf_counter()
    finally:
        done.set()
        t.join()
    during = [x for x in ticks if t0 < x < t1]
    # The other thread kept running while the engine trained (it would stall if the GIL were held).
    assert len(during) >= 10, f"{len(during)} ticks in {t1 - t0:.2f} s of training"
