"""alphanet_rs: train, predict and evaluate AlphaNet from Python.

The engine is the Rust crate of this repository (the ``alphanet`` command line); this package
calls the same library functions the command line calls, so a model trained here is the model
``alphanet train`` gives on the same panel, seed and settings, and checkpoints are interchangeable.

>>> import alphanet_rs as an
>>> panel = an.synth(stocks=60, days=300)            # or an.open_panel(path), an.from_frame(df)
>>> model = an.train(panel, epochs=3, seed=0)
>>> factor = model.predict(panel)                     # pandas Series indexed by (date, code)
>>> an.evaluate(panel, {"v2": factor}).summary        # neutralized RankIC, layered backtest

See docs/python.md for the whole API.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd

from . import _alphanet_rs as _rs
from .errors import (
    AlphaNetError,
    AlphaNetIOError,
    CheckpointError,
    ConfigError,
    CudaError,
    DataError,
    OutputExistsError,
    PanelError,
)

__version__ = _rs.version()

#: Days of history in one picture: the first ``PICTURE_DAYS - 1`` dates of a panel cannot be
#: predicted.
PICTURE_DAYS = 30
#: Days of the label (the VWAP return from t+1 to t+LABEL_DAYS): the last ``LABEL_DAYS`` dates of
#: a panel have no label and give no training sample.
LABEL_DAYS = 11

#: The feature-layer ops every model uses by default (``--ops``).
DEFAULT_OPS = "corr,cov,stddev,zscore,return,decaylinear,mean"

PathLike = Union[str, os.PathLike]

# --------------------------------------------------------------------------------------------
# Progress and quiet mode
# --------------------------------------------------------------------------------------------


def _in_notebook() -> bool:
    return "ipykernel" in sys.modules


def _terminal() -> bool:
    try:
        return sys.stderr.isatty() and not _in_notebook()
    except (AttributeError, ValueError):
        return False


class _EpochBar:
    """Per-epoch progress from the engine's epoch observer: a tqdm bar (a widget in notebooks)."""

    def __init__(self, desc: str):
        self.desc = desc
        self.bar = None

    def __call__(self, log_json: str, epochs: int) -> None:
        log = json.loads(log_json)
        if self.bar is None or log["epoch"] == 1:
            self.close()
            try:
                from tqdm.auto import tqdm
            except ImportError:  # pragma: no cover - tqdm is a dependency
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=epochs, desc=self.desc, unit="epoch", leave=True)
            else:
                self.bar = False
        ic = log.get("val_rank_ic")
        post = {
            "loss": f"{log['train_loss']:.4f}",
            "val": f"{log['val_loss']:.4f}",
            "val RankIC": "n/a" if ic is None else f"{100 * ic:.2f}%",
        }
        if self.bar:
            self.bar.set_postfix(post, refresh=False)
            self.bar.update(1)
        else:
            print(f"{self.desc} epoch {log['epoch']}/{epochs} " + " ".join(f"{k} {v}" for k, v in post.items()),
                  file=sys.stderr)

    def close(self) -> None:
        if self.bar:
            self.bar.close()
        self.bar = None


@contextlib.contextmanager
def _quiet(enabled: bool):
    """Sends what the engine writes to stdout and stderr (file descriptors 1 and 2) to /dev/null."""
    if not enabled:
        yield
        return
    for s in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            s.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved + [devnull]:
            os.close(fd)


# --------------------------------------------------------------------------------------------
# Panels
# --------------------------------------------------------------------------------------------


class Panel:
    """A panel directory (docs/data.md): ``[dates, stocks]`` arrays of features, prices, flags,
    styles. Opened and checked by the engine; nothing is read into Python's memory.

    Panels built in memory (:func:`from_arrays`, :func:`from_frame`, :func:`synth` without a
    path) live in a temporary directory that is removed when the object is garbage-collected."""

    def __init__(self, path: PathLike, _temp: Optional[str] = None, _codes: Optional[Mapping[str, str]] = None):
        self.path = Path(path)
        self.meta: Dict[str, Any] = json.loads(_rs.panel_meta(str(self.path)))
        # Panel code -> the caller's code, where the panel normalized them (upper case).
        self._code_names = dict(_codes or {})
        self._finalizer = weakref.finalize(self, shutil.rmtree, _temp, True) if _temp else None

    @property
    def dates(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(pd.to_datetime(self.meta["dates"]), name="date")

    @property
    def codes(self) -> list:
        return [self._code_names.get(c, c) for c in self.meta["codes"]]

    @property
    def n_dates(self) -> int:
        return len(self.meta["dates"])

    @property
    def n_stocks(self) -> int:
        return len(self.meta["codes"])

    @property
    def source(self) -> str:
        return self.meta["source"]

    def __repr__(self) -> str:
        d = self.meta["dates"]
        return f"Panel({str(self.path)!r}: {len(d)} dates {d[0]} .. {d[-1]} x {self.n_stocks} stocks, source {self.source})"

    def __fspath__(self) -> str:
        return str(self.path)


PanelLike = Union[Panel, PathLike]


def _whole(**given) -> None:
    """Keyword integers as the engine takes them (unsigned 64-bit): a ConfigError naming the
    keyword for anything else (the engine checks the ranges that matter, e.g. epochs >= 1)."""
    for name, v in given.items():
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ConfigError(f"{name}={v!r}: expected a whole number")
        if not 0 <= int(v) < 2**64:
            raise ConfigError(f"{name}={v}: expected a whole number from 0 to 2**64 - 1")


def _panel(p: PanelLike) -> Panel:
    if isinstance(p, Panel):
        return p
    if isinstance(p, (str, os.PathLike)):
        return Panel(p)
    raise ConfigError(f"panel: expected an alphanet_rs.Panel or a panel directory path, got {type(p).__name__}")


def open_panel(path: PathLike) -> Panel:
    """Opens a panel directory written by ``alphanet synth``/``import``, or by this package."""
    return Panel(path)


def _out_dir(path: Optional[PathLike], prefix: str):
    """(output path, temp dir to remove with the object or None)."""
    if path is not None:
        return Path(path), None
    tmp = tempfile.mkdtemp(prefix=prefix)
    return Path(tmp) / "panel", tmp


def synth(path: Optional[PathLike] = None, *, stocks: int = 300, days: int = 700, seed: int = 7) -> Panel:
    """The synthetic market of ``alphanet synth`` (planted, learnable alpha) as a panel at
    ``path`` (a new directory; by default a temporary one)."""
    _whole(stocks=stocks, days=days, seed=seed)
    out, tmp = _out_dir(path, "alphanet-synth-")
    _rs.synth(str(out), stocks, days, seed)
    return Panel(out, _temp=tmp)


def import_qlib(
    src: PathLike,
    path: Optional[PathLike] = None,
    *,
    instruments: str = "all",
    start: Optional[str] = None,
    end: Optional[str] = None,
    industry: Optional[PathLike] = None,
    benchmark: Optional[str] = None,
) -> Panel:
    """``alphanet import qlib``: a panel from a qlib ``dump_bin`` directory. ``benchmark=
    "csi500-proxy"`` (with ``instruments="all"``) adds the CSI500 proxy as its benchmark."""
    out, tmp = _out_dir(path, "alphanet-qlib-")
    summary = json.loads(
        _rs.import_qlib(str(src), str(out), instruments, _date(start), _date(end),
                        None if industry is None else str(industry), benchmark)
    )
    for w in summary["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    return Panel(out, _temp=tmp)


def _date(d) -> Optional[str]:
    if d is None:
        return None
    try:
        return pd.Timestamp(d).strftime("%Y-%m-%d")
    except (ValueError, TypeError) as e:
        raise ConfigError(f"date {d!r}: expected a YYYY-MM-DD date ({e})") from None


_FIELDS = ("open", "high", "low", "close", "volume", "factor")


def from_arrays(
    dates: Sequence,
    codes: Sequence[str],
    *,
    open: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    factor: Optional[np.ndarray] = None,
    universe: Optional[np.ndarray] = None,
    path: Optional[PathLike] = None,
) -> Panel:
    """A panel from daily arrays ``[dates, stocks]``: back-adjusted ``open high low close``, raw
    ``volume`` (shares) and optionally the adjustment ``factor`` (raw price = adjusted / factor;
    default 1) and a boolean ``universe`` mask (point-in-time membership, e.g. CSI300; default:
    every stock on every date).

    The arrays are written as a qlib ``dump_bin`` directory and imported with the engine's qlib
    importer (``alphanet import qlib``), so the panel gets exactly that importer's checks, features
    and documented proxies (VWAP = (H+L+C)/3, relative volume for turnover, traded value for size).
    NaN marks a missing day; volume 0 a suspension."""
    dates = [_date(d) for d in dates]
    codes = [str(c) for c in codes]
    t, n = len(dates), len(codes)
    if t == 0 or n == 0:
        raise ConfigError(f"from_arrays: {t} dates and {n} codes; a panel needs at least one of each")
    if any(b <= a for a, b in zip(dates, dates[1:])):
        raise ConfigError("from_arrays: dates must be strictly increasing (sort them, drop duplicates)")
    upper = [c.strip().upper() for c in codes]
    if len(set(upper)) != n:
        dup = next(c for c in upper if upper.count(c) > 1)
        raise ConfigError(f"from_arrays: code {dup!r} appears more than once (codes are compared in upper case)")
    bad = [c for c in upper if not c or "/" in c or c in (".", "..") or any(ch.isspace() for ch in c)]
    if bad:
        raise ConfigError(f"from_arrays: code {bad[0]!r} cannot name a stock (empty, or with '/' or spaces)")
    given = {"open": open, "high": high, "low": low, "close": close, "volume": volume,
             "factor": np.ones((t, n)) if factor is None else factor}
    arrays = {}
    for name, a in given.items():
        try:
            a = np.asarray(a, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"from_arrays: {name} is not numeric ({e})") from None
        if a.shape != (t, n):
            raise ConfigError(
                f"from_arrays: {name} has shape {a.shape}; expected (dates, stocks) = ({t}, {n})"
            )
        arrays[name] = a
    if universe is not None:
        universe = np.asarray(universe, dtype=bool)
        if universe.shape != (t, n):
            raise ConfigError(f"from_arrays: universe has shape {universe.shape}; expected (dates, stocks) = ({t}, {n})")
    has_price = np.isfinite(arrays["close"])
    if not has_price.any():
        raise DataError(
            "from_arrays: every close is NaN: there is no price to build a panel from "
            "(check the column names and the date/code index)"
        )
    out, tmp = _out_dir(path, "alphanet-arrays-")
    with tempfile.TemporaryDirectory(prefix="alphanet-qlib-layout-") as src:
        src = Path(src)
        (src / "calendars").mkdir()
        (src / "calendars" / "day.txt").write_text("\n".join(dates) + "\n")
        (src / "instruments").mkdir()
        lines = []
        for i, code in enumerate(upper):
            rows = np.flatnonzero(has_price[:, i])
            if rows.size == 0:
                continue
            first, last = rows[0], rows[-1]
            member = np.ones(t, dtype=bool) if universe is None else universe[:, i]
            for a, b in _runs(member[first : last + 1]):
                lines.append(f"{code}\t{dates[first + a]}\t{dates[first + b]}")
            d = src / "features" / code
            d.mkdir(parents=True)
            for name in _FIELDS:
                col = np.concatenate([[np.float32(first)], arrays[name][first : last + 1, i]]).astype("<f4")
                col.tofile(d / f"{name}.day.bin")
        if not lines:
            raise DataError("from_arrays: no stock is in the universe on a date it has prices")
        (src / "instruments" / "panel.txt").write_text("\n".join(lines) + "\n")
        try:
            summary = json.loads(_rs.import_qlib(str(src), str(out), str(src / "instruments" / "panel.txt")))
        except BaseException:
            if tmp:
                shutil.rmtree(tmp, ignore_errors=True)
            raise
    for w in summary["warnings"]:
        if "index (features/" not in w:  # no market index in an in-memory frame: expected
            print(f"warning: {w}", file=sys.stderr)
    return Panel(out, _temp=tmp, _codes=dict(zip(upper, codes)))


def _parses_as_dates(level: pd.Index) -> bool:
    """Whether an index level holds dates: datetimes, or text that pandas reads as dates."""
    if pd.api.types.is_datetime64_any_dtype(level):
        return True
    if not (pd.api.types.is_object_dtype(level) or pd.api.types.is_string_dtype(level)):
        return False
    try:
        pd.to_datetime(level[:100], format="mixed")
    except (ValueError, TypeError):
        return False
    return True


def _runs(mask: np.ndarray):
    """(first, last) index pairs of the runs of True in mask."""
    m = np.concatenate([[False], mask, [False]]).astype(np.int8)
    d = np.diff(m)
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1))


def from_frame(df: pd.DataFrame, *, path: Optional[PathLike] = None, universe: Optional[str] = None) -> Panel:
    """A panel from a pandas DataFrame indexed by (date, code) with columns ``open high low close
    volume`` and optionally ``factor`` (qlib's ``$open`` … names are accepted too). ``universe``
    names an optional boolean column of point-in-time membership. See :func:`from_arrays`."""
    if not isinstance(df, pd.DataFrame):
        raise ConfigError(f"from_frame: expected a pandas DataFrame, got {type(df).__name__}")
    if not isinstance(df.index, pd.MultiIndex) or df.index.nlevels != 2:
        raise ConfigError(
            "from_frame: the frame must be indexed by (date, code) (a 2-level MultiIndex); "
            f"it has {df.index.nlevels} level(s) {list(df.index.names)}"
        )
    df = df.rename(columns=lambda c: str(c).lstrip("$").lower())
    if len(df) == 0:
        raise ConfigError("from_frame: the frame has no rows")
    missing = [c for c in ("open", "high", "low", "close", "volume") if c not in df.columns]
    if missing:
        raise ConfigError(f"from_frame: missing column(s) {missing}; have {list(df.columns)}")
    if universe is not None and str(universe).lstrip("$").lower() not in df.columns:
        raise ConfigError(f"from_frame: universe={universe!r} is not a column; have {list(df.columns)}")
    universe = None if universe is None else str(universe).lstrip("$").lower()
    # Which level holds the dates: (date, code), or qlib's (instrument, datetime).
    parses = [_parses_as_dates(df.index.get_level_values(k)) for k in (0, 1)]
    if parses == [False, True]:
        df = df.swaplevel(0, 1)
    elif not parses[0]:
        raise ConfigError(
            "from_frame: neither index level holds dates (YYYY-MM-DD or datetimes); first values: "
            f"{df.index[0]!r}. Index the frame by (date, code)"
        )
    if df.index.duplicated().any():
        raise ConfigError("from_frame: the (date, code) index has duplicates")
    df = df.sort_index()
    cols = [c for c in ("open", "high", "low", "close", "volume", "factor") if c in df.columns]
    for c in cols:
        if not pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]):
            bad = pd.to_numeric(df[c], errors="coerce").isna() & df[c].notna()
            if bad.any():
                where = df.index[bad.to_numpy()][0]
                raise ConfigError(
                    f"from_frame: column {c!r} is not numeric: {df[c][bad].iloc[0]!r} at {where!r}"
                )
            df[c] = pd.to_numeric(df[c])
    if universe is not None:
        u = df[universe]
        if not pd.api.types.is_bool_dtype(u) and not u.dropna().isin([0, 1]).all():
            raise ConfigError(
                f"from_frame: universe column {universe!r} must be boolean (True/False or 0/1); "
                f"it has {u.dropna().iloc[0]!r}"
            )
        cols.append(universe)
    wide = df[cols].unstack(level=1)
    dates = wide.index
    codes = list(wide.columns.get_level_values(1).unique())

    def arr(name):
        return wide[name].reindex(columns=codes).to_numpy(dtype=np.float64)

    uni = None
    if universe is not None:
        uni = wide[universe].reindex(columns=codes).fillna(False).to_numpy(dtype=bool)
    return from_arrays(
        dates,
        codes,
        open=arr("open"),
        high=arr("high"),
        low=arr("low"),
        close=arr("close"),
        volume=arr("volume"),
        factor=arr("factor") if "factor" in df.columns else None,
        universe=uni,
        path=path,
    )


# --------------------------------------------------------------------------------------------
# Training, prediction, checkpoints
# --------------------------------------------------------------------------------------------


def set_threads(n: int) -> None:
    """Sets the engine's worker threads (default: all cores). Once per process, before any work."""
    _whole(n=n)
    _rs.set_threads(int(n))


def parse_device(device: str) -> str:
    """Checks a device string as the CLI does: ``auto``, ``cpu``, ``cuda`` or ``cuda:K``."""
    return _rs.parse_device(device)


def _factor_series(values: np.ndarray, dates, codes, names=("date", "code")) -> pd.Series:
    mask = np.isfinite(values)
    t_idx, i_idx = np.nonzero(mask)
    idx = pd.MultiIndex.from_arrays(
        [pd.DatetimeIndex(pd.to_datetime(np.asarray(dates)[t_idx])), np.asarray(codes, dtype=object)[i_idx]],
        names=list(names),
    )
    return pd.Series(values[mask].astype(np.float64), index=idx, name="factor")


class Model:
    """A trained AlphaNet model: what a checkpoint directory holds."""

    def __init__(self, inner):
        self._m = inner

    @classmethod
    def load(cls, path: PathLike) -> "Model":
        """Reads a checkpoint directory (``alphanet train --out``, or a ``run`` job's ``checkpoint/``)."""
        return cls(_rs.Model.load(str(path)))

    def save(self, path: PathLike) -> None:
        """Writes the checkpoint directory ``alphanet train --out`` writes; ``alphanet predict``
        reads it. Refuses an existing path."""
        self._m.save(str(path))

    _FILES = ("model.safetensors", "config.json")

    def __getstate__(self):
        """Pickles as the checkpoint's two files (qlib saves models with pickle)."""
        with tempfile.TemporaryDirectory(prefix="alphanet-pickle-") as d:
            ck = Path(d) / "checkpoint"
            self._m.save(str(ck))
            return {"checkpoint": {n: (ck / n).read_bytes() for n in self._FILES}}

    def __setstate__(self, state):
        with tempfile.TemporaryDirectory(prefix="alphanet-pickle-") as d:
            ck = Path(d) / "checkpoint"
            ck.mkdir()
            for n, b in state["checkpoint"].items():
                (ck / n).write_bytes(b)
            self._m = _rs.Model.load(str(ck))

    @property
    def config(self) -> Dict[str, Any]:
        """The checkpoint's config.json: model, loss, feature names, training report."""
        return json.loads(self._m.config_json())

    @property
    def history(self) -> pd.DataFrame:
        """One row per training epoch: train/validation loss, validation RankIC, samples/s."""
        report = self.config.get("train") or {"epochs": []}
        return pd.DataFrame(report["epochs"]).set_index("epoch") if report["epochs"] else pd.DataFrame()

    def predict_array(self, panel: PanelLike, start=None, end=None, device: str = "auto"):
        """(factor ``[dates, stocks]`` float32 NaN where none, dates, codes) over ``start ..= end``."""
        p = _panel(panel)
        d = p.meta["dates"]
        s = _date(start) or d[min(PICTURE_DAYS - 1, len(d) - 1)]
        e = _date(end) or d[-1]
        values, dates, codes = self._m.predict(str(p.path), s, e, device)
        return values, dates, [p._code_names.get(c, c) for c in codes]

    def predict(self, panel: PanelLike, start=None, end=None, device: str = "auto") -> pd.Series:
        """The factor over ``start ..= end`` (default: every date the panel can predict) as a
        Series indexed by (date, code), finite values only: the rows of ``alphanet predict``'s
        factor.csv."""
        values, dates, codes = self.predict_array(panel, start, end, device)
        return _factor_series(values, dates, codes)

    def __repr__(self) -> str:
        c = self.config
        r = c.get("train") or {}
        best = f", best epoch {r['best_epoch']}" if r else ""
        return f"Model({c['model'].get('arch', '?')}, {len(c['feature_names'])} features{best})"


def train(
    panel: PanelLike,
    *,
    variant: str = "v2",
    model: Optional[str] = None,
    pair_sample: Optional[int] = None,
    neutralize_loss: bool = False,
    long_weight: Optional[float] = None,
    ops: str = DEFAULT_OPS,
    dropout: float = 0.0,
    hidden: int = 30,
    input_norm: str = "none",
    activation: str = "relu",
    epochs: int = 100,
    patience: int = 10,
    select_by: str = "rankic",
    label: Optional[str] = None,
    batch: int = 1000,
    lr: float = 1e-4,
    seed: int = 0,
    start=None,
    end=None,
    sample_every: int = 1,
    split: str = "4:1",
    device: str = "auto",
    progress: bool = True,
) -> Model:
    """``alphanet train``: one model on the in-sample dates ``start ..= end`` of ``panel``
    (default: every date with a full picture and a label), split ``split`` chronologically with the
    purge gap, early stopping on ``select_by``. The keywords are the CLI's flags. Releases the GIL
    while it trains; ``progress=False`` silences the progress display."""
    _whole(pair_sample=pair_sample, hidden=hidden, epochs=epochs, patience=patience, batch=batch, seed=seed,
           sample_every=sample_every)
    p = _panel(panel)
    terminal = progress and _terminal()
    bar = _EpochBar("train") if progress and not terminal else None
    try:
        inner = _rs.train(
            str(p.path),
            variant=variant, model=model, pair_sample=pair_sample, neutralize_loss=neutralize_loss,
            long_weight=long_weight, ops=ops, dropout=dropout, hidden=hidden,
            input_norm=input_norm, activation=activation, epochs=epochs,
            patience=patience, select_by=select_by, **_label(label), batch=batch, lr=lr, seed=seed,
            start=_date(start), end=_date(end), sample_every=sample_every, split=split,
            device=device, progress=terminal, on_epoch=bar,
        )
    finally:
        if bar is not None:
            bar.close()
    return Model(inner)


# --------------------------------------------------------------------------------------------
# The rolling protocol
# --------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """What :func:`run` produced: the run folder, the job counts, and one ensemble factor per
    variant (Series indexed by (date, code); empty for a sharded run, which ``merge`` finishes)."""

    path: Path
    summary: Dict[str, int]
    factors: Dict[str, pd.Series] = field(default_factory=dict)


def _read_factor_csv(path: Path, code_names: Mapping[str, str]) -> pd.Series:
    df = pd.read_csv(path, dtype={"code": str})
    df["date"] = pd.to_datetime(df["date"])
    df["code"] = df["code"].map(lambda c: code_names.get(c, c))
    return df.set_index(["date", "code"])["factor"]


def _label(label: Optional[str]) -> Dict[str, str]:
    """The engine's default training target (``--label``) unless one is named."""
    return {} if label is None else {"label": label}


def run(
    panel: PanelLike,
    out: PathLike,
    *,
    start,
    end=None,
    variants: Union[str, Sequence[str]] = ("v2", "v2.1", "v2.2", "v2.3"),
    seeds: int = 10,
    retrain_every: str = "6M",
    insample_days: int = 1500,
    sample_every: int = 2,
    split: str = "4:1",
    shard: str = "0/1",
    device: str = "auto",
    ops: str = DEFAULT_OPS,
    dropout: float = 0.0,
    hidden: int = 30,
    input_norm: str = "none",
    activation: str = "relu",
    epochs: int = 100,
    patience: int = 10,
    select_by: str = "rankic",
    label: Optional[str] = None,
    batch: int = 1000,
    lr: float = 1e-4,
    seed: int = 0,
    progress: bool = True,
) -> RunResult:
    """``alphanet run``: the rolling protocol (docs/protocol.md) into the run folder ``out``
    (created, or resumed), predicting from ``start`` to ``end`` (default: the panel's end).
    Returns the seed-ensemble factor of each variant. ``progress=False``
    silences everything the engine prints."""
    _whole(seeds=seeds, insample_days=insample_days, sample_every=sample_every, hidden=hidden, epochs=epochs,
           patience=patience, batch=batch, seed=seed)
    p = _panel(panel)
    if not isinstance(variants, str):
        variants = ",".join(variants)
    with _quiet(not progress):
        summary = json.loads(
            _rs.run(
                str(p.path), str(out), start=_date(start),
                end=None if end is None else _date(end), variants=variants, seeds=seeds,
                retrain_every=retrain_every, insample_days=insample_days, sample_every=sample_every,
                split=split, shard=shard, device=device, ops=ops, dropout=dropout, hidden=hidden,
                input_norm=input_norm, activation=activation, epochs=epochs, patience=patience, select_by=select_by, **_label(label), batch=batch, lr=lr, seed=seed,
            )
        )
    out = Path(out)
    factors = {}
    for v in variants.split(","):
        v = v.strip()
        f = out / "factors" / v / "factor.csv"
        if v and f.is_file():
            factors[v] = _read_factor_csv(f, p._code_names).rename(v)
    return RunResult(path=out, summary=summary, factors=factors)


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


@dataclass
class Evaluation:
    """The metrics of ``alphanet eval`` as DataFrames.

    - ``summary``: one row per factor: neutralized RankIC (mean, std, IR, share positive, dates),
      the raw RankIC, the layered backtest's long-short return and Sharpe, top group IR, win rate,
      max drawdown, turnover, and each group's annualized excess return (``G1`` lowest).
    - ``ic``: neutralized RankIC per signal date (rows) and factor (columns).
    - ``groups``: per factor, daily returns after costs of each group and the benchmark.
    - ``report``: the report folder (report.md, metrics.json, PNG charts).
    """

    summary: pd.DataFrame
    ic: pd.DataFrame
    groups: Dict[str, pd.DataFrame]
    report: Path


def _write_factor(name: str, f, p: Panel, folder: Path) -> Path:
    """A factor given as Series / DataFrame / array / path, as a file `alphanet eval` reads."""
    if isinstance(f, (str, os.PathLike)):
        return Path(f)
    back = {v: k for k, v in p._code_names.items()}
    if isinstance(f, pd.DataFrame):
        if f.shape[1] != 1:
            raise ConfigError(f"factor {name}: a DataFrame needs exactly one column, it has {f.shape[1]}")
        f = f.iloc[:, 0]
    if isinstance(f, pd.Series):
        if not isinstance(f.index, pd.MultiIndex) or f.index.nlevels != 2:
            raise ConfigError(f"factor {name}: a Series must be indexed by (date, code)")
        lv0, lv1 = f.index.get_level_values(0), f.index.get_level_values(1)
        if pd.api.types.is_datetime64_any_dtype(lv1) and not pd.api.types.is_datetime64_any_dtype(lv0):
            lv0, lv1 = lv1, lv0  # qlib's (instrument, datetime)
        df = pd.DataFrame({
            "date": pd.to_datetime(lv0).strftime("%Y-%m-%d"),
            "code": [back.get(str(c), str(c).upper()) for c in lv1],
            "factor": np.asarray(f.values, dtype=np.float64),
        })
        df = df[np.isfinite(df["factor"])]
        if df.empty:
            raise DataError(f"factor {name}: no finite value")
        path = folder / f"{len(os.listdir(folder))}.csv"
        df.to_csv(path, index=False)
        return path
    a = np.asarray(f, dtype=np.float32)
    if a.ndim != 2 or a.shape != (p.n_dates, p.n_stocks):
        raise ConfigError(
            f"factor {name}: an array must be [dates, stocks] over the whole panel = "
            f"({p.n_dates}, {p.n_stocks}), got {a.shape}; pass a Series indexed by (date, code) instead"
        )
    path = folder / f"{len(os.listdir(folder))}.npy"
    np.save(path, a)
    return path


def evaluate(
    panel: PanelLike,
    factors: Union[Mapping[str, Any], pd.Series],
    out: Optional[PathLike] = None,
    *,
    every: int = 10,
    groups: int = 5,
    cost: float = 0.002,
    baselines: Union[None, bool, str, Sequence[str]] = None,
    progress: bool = True,
) -> Evaluation:
    """``alphanet eval``: neutralized RankIC every ``every`` days and the ``groups``-group layered
    backtest of each factor (a Series indexed by (date, code), a ``[dates, stocks]`` array over the
    panel, or a factor.csv / .npy path), side by side. ``baselines=True`` (or a list) adds the
    classic one-line factors. The report folder is ``out`` (default: a temporary folder)."""
    _whole(every=every, groups=groups)
    p = _panel(panel)
    if isinstance(factors, pd.Series):
        factors = {factors.name or "factor": factors}
    if not isinstance(factors, Mapping):
        raise ConfigError(
            f"evaluate: factors must be a Series or a dict of name -> factor, got {type(factors).__name__}"
        )
    if not factors:
        raise ConfigError("evaluate: factors is empty; give at least one, e.g. {'mine': series}")
    if baselines is True:
        baselines = "all"
    elif baselines is False:
        baselines = None
    elif baselines is not None and not isinstance(baselines, str):
        baselines = ",".join(baselines)
    report = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="alphanet-eval-")) / "report"
    with tempfile.TemporaryDirectory(prefix="alphanet-factors-") as folder:
        files = [(str(name), str(_write_factor(str(name), f, p, Path(folder)))) for name, f in factors.items()]
        try:
            with _quiet(not progress):
                res = json.loads(_rs.evaluate(str(p.path), files, str(report), every, groups, cost, baselines))
        except AlphaNetError as e:
            # Name the factors written to this temporary folder by their keys: the files are
            # gone when the message is read.
            msg = str(e)
            for name, path in files:
                if path.startswith(folder):
                    # "PATH:LINE:" of the CSV written from a Series: its (LINE − 1)-th finite value.
                    msg = re.sub(re.escape(path) + r":(\d+)",
                                 lambda m: f"factor {name!r}, finite value {int(m.group(1)) - 1}", msg)
                    msg = msg.replace(path, f"factor {name!r}")
            raise type(e)(msg) from None
    dates = pd.to_datetime(res["dates"])
    rows, ics, grp = {}, {}, {}
    for entry in res["factors"]:
        name, e = entry["name"], entry["eval"]
        s = e["summary"]
        row = {
            "rank_ic": e["ic"]["mean"], "rank_ic_std": e["ic"]["std"], "rank_ic_ir": e["ic"]["ir"],
            "rank_ic_positive": e["ic"]["positive"], "ic_dates": e["ic"]["dates"],
            "raw_rank_ic": e["raw_ic"]["mean"],
            "long_short_return": s["long_short_return"], "long_short_sharpe": s["long_short_sharpe"],
            "top_ir": s["top_ir"], "top_win_rate": s["top_win_rate"],
            "top_excess_max_drawdown": s["top_excess_max_drawdown"], "top_turnover": s["top_turnover"],
            "degenerate_dates": e["degenerate_dates"],
        }
        for g, x in enumerate(s["group_excess"]):
            row[f"G{g + 1}_excess"] = x
        for k, x in zip(res["style_names"], e["style_exposure"]):
            row[f"{k}_exposure"] = np.nan if x is None else x
        rows[name] = row
        ics[name] = pd.Series({dates[t]: ic for t, ic in e["ic_series"]}, dtype=np.float64)
        lay = e["layers"]
        gdf = pd.DataFrame({f"G{g + 1}": r for g, r in enumerate(lay["groups"])}, index=dates[lay["days"]])
        gdf["benchmark"] = lay["benchmark"]
        gdf.index.name = "date"
        grp[name] = gdf
    summary = pd.DataFrame.from_dict(rows, orient="index")
    summary.index.name = "factor"
    ic = pd.DataFrame(ics)
    ic.index.name = "date"
    return Evaluation(summary=summary, ic=ic, groups=grp, report=report)


__all__ = [
    "AlphaNetError", "AlphaNetIOError", "CheckpointError", "ConfigError", "CudaError", "DataError",
    "OutputExistsError", "PanelError", "Panel", "Model", "RunResult", "Evaluation", "open_panel",
    "synth", "import_qlib", "from_arrays", "from_frame", "train", "run", "evaluate", "set_threads",
    "parse_device", "PICTURE_DAYS", "LABEL_DAYS", "DEFAULT_OPS",
]
