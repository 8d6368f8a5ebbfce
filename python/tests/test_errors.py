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
    with pytest.raises(an.DataError, match="before the first full 30-day picture; choose --from on or after"):
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


def _frame(stocks=3, days=60):
    m = random_market(stocks=stocks, days=days)
    idx = pd.MultiIndex.from_product([m["dates"], m["codes"]], names=["date", "code"])
    cols = {k: m[k].reshape(-1) for k in ("open", "high", "low", "close", "volume")}
    return pd.DataFrame(cols, index=idx)


def test_frames_are_read_or_refused_by_column_and_level():
    df = _frame()
    # (code, date) with text dates: the levels are found by what they hold.
    swapped = df.swaplevel(0, 1).sort_index()
    assert an.from_frame(swapped).n_stocks == 3
    with pytest.raises(an.ConfigError, match="neither index level holds dates"):
        an.from_frame(df.set_axis(pd.MultiIndex.from_product([range(60), ["A", "B", "C"]]), axis=0))
    text = df.astype({"close": object})
    text.iloc[7, text.columns.get_loc("close")] = "n/a"
    with pytest.raises(an.ConfigError, match="column 'close' is not numeric: 'n/a'"):
        an.from_frame(text)
    with pytest.raises(an.ConfigError, match="the frame has no rows"):
        an.from_frame(df.iloc[:0])
    with pytest.raises(an.ConfigError, match="universe='member' is not a column"):
        an.from_frame(df, universe="member")
    with pytest.raises(an.ConfigError, match="universe column 'member' must be boolean"):
        an.from_frame(df.assign(member="no"), universe="member")
    assert an.from_frame(df.assign(member=1), universe="member").n_stocks == 3


def test_row_checks_are_printed(capfd):
    m = random_market(stocks=3, days=60)
    m.pop("factor")
    m["high"][:, 1] = np.inf
    an.from_arrays(**m)
    err = capfd.readouterr().err
    assert "60 stock-days of 1 stocks have impossible prices or volume (high is infinite: 60)" in err, err


def test_integers_out_of_range_are_config_errors(panel):
    with pytest.raises(an.ConfigError, match="stocks=-1: expected a whole number from 0"):
        an.synth(stocks=-1)
    with pytest.raises(an.ConfigError, match=r"hidden=1267650600228229401496703205376: expected"):
        an.train(panel, hidden=2**100, progress=False)
    with pytest.raises(an.ConfigError, match=r"epochs=2.5: expected a whole number"):
        an.train(panel, epochs=2.5, progress=False)


def test_evaluate_answers_in_python_words(panel):
    with pytest.raises(an.ConfigError, match="evaluate: factors is empty") as e:
        an.evaluate(panel, {})
    assert "--factor" not in str(e.value)
    bad = pd.Series([1.0], index=pd.MultiIndex.from_tuples([(pd.Timestamp("1990-01-02"), "SH600000")]))
    with pytest.raises(an.AlphaNetError) as e:
        an.evaluate(panel, {"mine": bad}, progress=False)
    assert "factor 'mine'" in str(e.value) and "alphanet-factors-" not in str(e.value), str(e.value)
