"""The Python package is the engine: same model, same predictions, same checkpoints as the CLI."""

import numpy as np
import pandas as pd

import alphanet_rs as an
from conftest import random_market


def test_prediction_equals_cli_on_same_panel_and_seed(cli, tmp_path):
    m = random_market(stocks=40, days=200, seed=1)
    panel = an.from_arrays(m["dates"], m["codes"], open=m["open"], high=m["high"], low=m["low"],
                           close=m["close"], volume=m["volume"], factor=m["factor"], path=tmp_path / "panel")
    assert panel.n_stocks == 40 and panel.n_dates == 200
    flags = ["--epochs", 2, "--seed", 3, "--variant", "v2.3", "--batch", 500]
    cli("train", "--panel", panel.path, "--out", tmp_path / "ck", *flags)
    first, last = m["dates"][150], m["dates"][-1]
    cli("predict", "--checkpoint", tmp_path / "ck", "--panel", panel.path, "--from", first, "--to", last,
        "--out", tmp_path / "pred")
    want = np.load(tmp_path / "pred" / "factor.npy")

    model = an.train(panel, epochs=2, seed=3, variant="v2.3", batch=500, progress=False)
    got, dates, codes = model.predict_array(panel, first, last)
    assert got.shape == want.shape == (50, 40)
    assert dates[0] == first and dates[-1] == last and codes == m["codes"]
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.isfinite(got).sum() > 1000
    assert np.nanmax(np.abs(got - want)) <= 1e-6

    # The Series is factor.csv's rows.
    s = model.predict(panel, first, last)
    csv = pd.read_csv(tmp_path / "pred" / "factor.csv", dtype={"code": str})
    assert len(s) == len(csv)
    assert list(s.index.names) == ["date", "code"]
    assert np.allclose(s.values, csv["factor"].values, rtol=0, atol=1e-6)

    # Checkpoints go both ways.
    model.save(tmp_path / "py-ck")
    cli("predict", "--checkpoint", tmp_path / "py-ck", "--panel", panel.path, "--from", first, "--to", last,
        "--out", tmp_path / "pred2")
    assert np.array_equal(np.load(tmp_path / "pred2" / "factor.npy"), want, equal_nan=True)
    loaded = an.Model.load(tmp_path / "ck")
    again, _, _ = loaded.predict_array(panel, first, last)
    assert np.array_equal(again, want, equal_nan=True)
    assert loaded.config["train"]["best_epoch"] == model.config["train"]["best_epoch"]


def test_frame_and_arrays_give_the_same_panel(tmp_path):
    m = random_market(stocks=12, days=120, seed=2)
    a = an.from_arrays(m["dates"], m["codes"], open=m["open"], high=m["high"], low=m["low"],
                       close=m["close"], volume=m["volume"], factor=m["factor"], path=tmp_path / "a")
    idx = pd.MultiIndex.from_product([pd.to_datetime(m["dates"]), m["codes"]], names=["date", "code"])
    df = pd.DataFrame({k: m[k].reshape(-1) for k in ("open", "high", "low", "close", "volume", "factor")}, index=idx)
    # Shuffled rows and qlib's column names are fine.
    df = df.sample(frac=1.0, random_state=0).rename(columns=lambda c: "$" + c)
    b = an.from_frame(df, path=tmp_path / "b")
    assert a.meta["dates"] == b.meta["dates"] and a.meta["codes"] == b.meta["codes"]
    for f in ("features.npy", "price.npy", "tradable.npy", "styles.npy", "size.npy"):
        assert np.array_equal(np.load(a.path / f), np.load(b.path / f), equal_nan=True), f
