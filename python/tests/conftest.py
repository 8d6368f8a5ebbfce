"""Fixtures of the alphanet_rs test suite (run by scripts/test_python.sh)."""

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cli():
    """The `alphanet` binary built from the same sources (scripts/test_python.sh builds it)."""
    path = Path(os.environ.get("ALPHANET_BIN") or Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target") / "release" / "alphanet")
    if not path.is_file():
        pytest.fail(f"{path}: no alphanet binary; build it with `cargo build --release` or set ALPHANET_BIN")

    def call(*args):
        r = subprocess.run([str(path), *map(str, args)], capture_output=True, text=True)
        assert r.returncode == 0, f"alphanet {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stderr}"
        return r

    return call


@pytest.fixture(scope="session")
def shared_qlib():
    """The shared A-share data in qlib's dump_bin layout (../shared/data/ashare-qlib)."""
    path = Path(os.environ.get("ALPHANET_SHARED_QLIB") or REPO.parent / "shared" / "data" / "ashare-qlib")
    if not (path / "calendars" / "day.txt").is_file():
        pytest.fail(f"{path}: the shared qlib data is missing (CI has ../shared beside the checkout)")
    return path


def random_market(stocks=40, days=200, seed=0):
    """Daily arrays [days, stocks] of a random-walk market: adjusted OHLC, volume, factor."""
    rng = np.random.default_rng(seed)
    ret = rng.normal(0, 0.02, size=(days, stocks))
    close = 10 * np.exp(np.cumsum(ret, axis=0))
    open_ = close * np.exp(rng.normal(0, 0.005, size=close.shape))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.01, size=close.shape)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.01, size=close.shape)))
    volume = rng.lognormal(15, 0.5, size=close.shape)
    volume[rng.random(close.shape) < 0.01] = 0.0  # suspensions
    factor = np.ones_like(close) * 1.5
    dates = np.busday_offset("2019-01-01", np.arange(days), roll="forward").astype("datetime64[D]").astype(str)
    codes = [f"SH{600000 + i}" for i in range(stocks)]
    return dict(dates=list(dates), codes=codes, open=open_ * factor, high=high * factor, low=low * factor,
                close=close * factor, volume=volume, factor=factor)
