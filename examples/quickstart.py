"""alphanet_rs quickstart: run top to bottom (python examples/quickstart.py), or paste the cells
into a notebook. Builds a market from NumPy arrays, trains AlphaNet-v2, predicts a held-out
span, evaluates it beside the classic one-line factors, saves and reloads the checkpoint.

Install first, from the repository root:  pip install .
"""

# %% A market as NumPy arrays [dates, stocks]: here the engine's synthetic market (planted alpha),
# read back as plain arrays to stand in for your own data (a DataFrame indexed by (date, code)
# works too: alphanet_rs.from_frame(df)).
import tempfile
from pathlib import Path

import numpy as np

import alphanet_rs as an

work = Path(tempfile.mkdtemp(prefix="alphanet-quickstart-"))
market = an.synth(stocks=80, days=400, seed=7)
price = np.load(market.path / "price.npy")  # [T, N, fields]
fields = market.meta["price_fields"]
# Shares traded: the panel's feature is NaN on suspended days, which from_arrays would read as a
# missing row (and warn about); a suspension is volume 0.
volume = np.nan_to_num(np.load(market.path / "features.npy")[:, :, 5], nan=0.0)
arrays = {f: price[:, :, fields.index(f)] for f in ("open", "high", "low", "close")}
dates, codes = market.meta["dates"], market.meta["codes"]
print(f"{len(dates)} dates x {len(codes)} stocks, {dates[0]} .. {dates[-1]}")

# %% A panel from the arrays (written with the engine's qlib importer into a temporary folder).
panel = an.from_arrays(dates, codes, volume=volume, **arrays)
print(panel)

# %% Train on the first 75% of the dates (purged 4:1 train/validation split, early stopping).
cut = dates[int(0.75 * len(dates))]
model = an.train(panel, variant="v2", epochs=8, seed=0, end=cut)
print(model)
print(model.history)

# %% Predict the held-out tail: a pandas Series indexed by (date, code).
test_start = dates[int(0.75 * len(dates)) + 11]  # after the last in-sample label window
factor = model.predict(panel, start=test_start)
print(factor.head())

# %% Evaluate: neutralized RankIC and the 5-group layered backtest, beside the baselines.
ev = an.evaluate(panel, {"alphanet-v2": factor}, work / "report", baselines=True)
print(ev.summary[["rank_ic", "rank_ic_ir", "long_short_return", "top_ir"]])
print("report:", ev.report / "report.md")
# This market is kept small so that the example runs in seconds: 80 stocks x 300 in-sample dates
# and 8 epochs are too few samples for the network to learn the planted signal as well as the
# one-line factors that compute part of it directly. `alphanet demo` (300 stocks x 700 days)
# trains long enough to reach 65% of the planted signal's RankIC; on real data the study of
# scripts/reproduce.sh --market compares them on ten years of the whole market.
ics = ev.summary["rank_ic"]
best = ics.drop(index="alphanet-v2").idxmax()
if ics["alphanet-v2"] < ics[best]:
    print(f"note: on this small market the model's RankIC ({ics['alphanet-v2']:.2%}) is below the "
          f"{best} baseline's ({ics[best]:.2%}): too few samples to train on (see the comment above)")

# %% Checkpoints are the CLI's: `alphanet predict --checkpoint` reads this folder.
model.save(work / "checkpoint")
again = an.Model.load(work / "checkpoint").predict(panel, start=test_start)
assert np.array_equal(again.values, factor.values)
print("saved and reloaded", work / "checkpoint")
