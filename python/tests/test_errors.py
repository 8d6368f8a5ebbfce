"""Bad input raises clear exceptions with the CLI's messages."""

import numpy as np
import pandas as pd
import pytest

import alphanet_rs as an
from conftest import random_market


@pytest.fixture(scope="module")
def panel():
    return an.synth(stocks=20, days=150, seed=1)


def arrays(**over):
    m = random_market(stocks=5, days=80)
    m.pop("factor")
    m.update(over)
    return m


def test_wrong_shapes():
    m = arrays()
    with pytest.raises(ValueError, match=r"close has shape \(80, 4\); expected \(dates, stocks\) = \(80, 5\)"):
        an.from_arrays(**{**m, "close": m["close"][:, :4]})
    with pytest.raises(an.ConfigError, match=r"volume has shape \(80,\)"):
        an.from_arrays(**{**m, "volume": m["volume"][:, 0]})
    with pytest.raises(ValueError, match="strictly increasing"):
        an.from_arrays(**{**m, "dates": m["dates"][::-1]})
    with pytest.raises(ValueError, match="appears more than once"):
        an.from_arrays(**{**m, "codes": ["A", "a", "B", "C", "D"]})
    with pytest.raises(ValueError, match="indexed by \\(date, code\\)"):
        an.from_frame(pd.DataFrame({"close": [1.0]}))


def test_nan_only_frames():
    m = random_market(stocks=3, days=60)
    idx = pd.MultiIndex.from_product([pd.to_datetime(m["dates"]), m["codes"]], names=["date", "code"])
    df = pd.DataFrame(np.nan, index=idx, columns=["open", "high", "low", "close", "volume"])
    with pytest.raises(an.DataError, match="every close is NaN"):
        an.from_frame(df)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['volume'\]"):
        an.from_frame(df.drop(columns="volume"))


def test_too_little_data_to_train():
    m = random_market(stocks=5, days=45)
    p = an.from_arrays(m["dates"], m["codes"], open=m["open"], high=m["high"], low=m["low"], close=m["close"],
                       volume=m["volume"])
    with pytest.raises(an.AlphaNetError) as e:
        an.train(p, epochs=1, progress=False)
    assert isinstance(e.value, ValueError) and str(e.value)


def test_unknown_device(panel):
    with pytest.raises(ValueError, match=r'device="gpu": expected auto, cpu, cuda or cuda:K'):
        an.train(panel, device="gpu", progress=False)
    try:  # trains on a GPU where there is one; elsewhere the CLI's error
        an.train(panel, device="cuda:0", epochs=1, progress=False)
    except an.CudaError as e:
        assert isinstance(e, RuntimeError) and 'device="cuda:0" cannot be used' in str(e)
    with pytest.raises(ValueError, match="expected auto, cpu"):
        an.run(panel, "/nonexistent/run", start=panel.meta["dates"][100], device="tpu", progress=False)
    assert an.parse_device("CUDA") == "cuda:0"


def test_cli_messages(panel, tmp_path):
    with pytest.raises(ValueError, match="--lr -1: must be a positive number"):
        an.train(panel, lr=-1, progress=False)
    with pytest.raises(ValueError, match="--split 4-1: expected two positive integers like 4:1"):
        an.train(panel, split="4-1", progress=False)
    with pytest.raises(an.ConfigError, match="--select-by"):
        an.train(panel, select_by="sharpe", progress=False)
    with pytest.raises(an.ConfigError, match="--input-norm"):
        an.run(panel, tmp_path / "run", start=panel.meta["dates"][-20], input_norm="bogus", progress=False)
    with pytest.raises(an.PanelError, match="no such directory"):
        an.open_panel(tmp_path / "nope")
    with pytest.raises(an.DataError, match="is not a trading day of the panel|is outside the panel"):
        an.train(panel, start="2000-01-01", epochs=1, progress=False)
    with pytest.raises(an.CheckpointError, match="not a checkpoint directory"):
        an.Model.load(tmp_path)
    model = an.train(panel, epochs=1, progress=False)
    model.save(tmp_path / "ck")
    with pytest.raises(FileExistsError, match="already exists"):
        model.save(tmp_path / "ck")
    with pytest.raises(an.DataError, match="outside what panel"):
        model.predict(panel, start=panel.meta["dates"][0], end=panel.meta["dates"][10])
    with pytest.raises(ValueError, match="--every 0"):
        an.evaluate(panel, {"f": model.predict(panel)}, every=0)


def test_device_notes_are_worded_for_python_and_said_once(panel, capfd):
    for _ in range(3):
        an.train(panel, epochs=1, device="auto", progress=False)
    err = capfd.readouterr().err
    assert "--device" not in err, err
    notes = [l for l in err.splitlines() if l.startswith("note: device=")]
    assert len(notes) <= 1, err
    assert len([l for l in err.splitlines() if l.startswith("device: ")]) <= 1, err
