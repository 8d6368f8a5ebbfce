"""AlphaNet as a qlib model: ``alphanet_rs.qlib.AlphaNetModel``.

A ``qlib.model.base.Model`` whose ``fit(dataset)`` / ``predict(dataset)`` take a qlib
``DatasetH``, so a workflow config can name it beside LightGBM::

    task:
      model:
        class: AlphaNetModel
        module_path: alphanet_rs.qlib
        kwargs: {variant: v2, epochs: 20, seed: 0}
      dataset: {class: DatasetH, module_path: qlib.data.dataset, kwargs: {handler: ..., segments: ...}}

AlphaNet does not read the handler's processed features or label: it learns from "data
pictures" of 15 raw daily series over 30 days and trains on its own label (the 10-day VWAP
return of docs/data.md). From the dataset it takes the universe (the handler's
``instruments``, point in time) and the segments' dates, and reads the raw daily fields
``$open $high $low $close $volume $factor`` through qlib's own data API (``qlib.data.D``), with
``lookback`` trading days of history before each segment. Those become an engine panel through
:func:`alphanet_rs.from_frame` (the qlib importer's features and proxies). Predictions come
back as a Series indexed by (datetime, instrument), on the days each instrument is in the
universe, which is what ``SignalRecord``, ``SigAnaRecord`` and ``qlib.contrib.eva.alpha.calc_ic``
expect.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

try:
    from qlib.data import D
    from qlib.model.base import Model as _QlibModel
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "alphanet_rs.qlib needs qlib: pip install pyqlib (or pip install 'alphanet_rs[qlib]')"
    ) from e

from . import LABEL_DAYS, DataError, Model, from_frame, train
from .errors import ConfigError

#: The raw daily fields the panel is built from (qlib names).
FIELDS = ["$open", "$high", "$low", "$close", "$volume", "$factor"]


def qlib_provider(src: os.PathLike, cache: Optional[os.PathLike] = None) -> str:
    """A ``provider_uri`` for the qlib ``dump_bin`` directory ``src`` that qlib can read.

    qlib looks for ``features/<instrument in lower case>/``. A dump whose feature folders are
    upper case (``features/SH600000``, as in ``../shared/data/ashare-qlib``) is read by qlib as
    empty on a case-sensitive file system; for such a dump this returns a mirror of symbolic
    links with lower-case names (made once, under ``cache``, default
    ``~/.cache/alphanet/qlib-providers``). A dump that is already lower case is returned as is."""
    src = Path(src).resolve()
    feats = src / "features"
    if not feats.is_dir():
        raise ConfigError(f"{src}: no features/ folder: not a qlib dump_bin directory")
    names = sorted(os.listdir(feats))
    if all(n == n.lower() for n in names):
        return str(src)
    root = Path(cache) if cache else Path.home() / ".cache" / "alphanet" / "qlib-providers"
    key = hashlib.sha1(f"{src}:{len(names)}".encode()).hexdigest()[:12]
    dst = root / f"{src.name}-{key}"
    if not (dst / ".complete").is_file():
        tmp = root / f".{dst.name}.tmp-{os.getpid()}"
        (tmp / "features").mkdir(parents=True, exist_ok=True)
        for sub in ("calendars", "instruments"):
            if not (tmp / sub).exists():
                (tmp / sub).symlink_to(src / sub, target_is_directory=True)
        for n in names:
            link = tmp / "features" / n.lower()
            if not link.exists():
                link.symlink_to(feats / n, target_is_directory=True)
        (tmp / ".complete").write_text(str(src) + "\n")
        if dst.exists():  # another process finished first
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.replace(tmp, dst)
    return str(dst)


def _ts(x) -> pd.Timestamp:
    return pd.Timestamp(x)


class AlphaNetModel(_QlibModel):
    """AlphaNet trained by the alphanet engine, as a qlib model.

    Parameters are those of :func:`alphanet_rs.train` (``variant``, ``epochs``, ``patience``,
    ``seed``, ``lr``, ``batch``, ``sample_every``, ``select_by``, ``device``, ``progress``, …),
    plus ``lookback``: trading days of raw history read before a segment (pictures need 29, the
    turnover and size proxies up to 250)."""

    def __init__(self, lookback: int = 300, **train_kwargs):
        if lookback < 29:
            raise ConfigError(f"lookback {lookback}: at least 29 trading days are needed for a 30-day picture")
        self.lookback = int(lookback)
        self.train_kwargs = dict(train_kwargs)
        self.train_kwargs.setdefault("epochs", 20)
        self.train_kwargs.setdefault("patience", 5)
        for k in ("start", "end", "split"):
            if k in self.train_kwargs:
                raise ConfigError(f"AlphaNetModel: {k} comes from the dataset's segments, do not pass it")
        self.model: Optional[Model] = None

    # -- data ------------------------------------------------------------------------------

    @staticmethod
    def _segment(dataset, name: str) -> Tuple[pd.Timestamp, pd.Timestamp]:
        seg = dataset.segments.get(name) if hasattr(dataset, "segments") else None
        if seg is None:
            raise ConfigError(f"the dataset has no {name!r} segment (segments: {list(getattr(dataset, 'segments', {}))})")
        if isinstance(seg, slice):
            return _ts(seg.start), _ts(seg.stop)
        return _ts(seg[0]), _ts(seg[1])

    @staticmethod
    def _spans(dataset, start, end) -> Dict[str, List[Tuple[pd.Timestamp, pd.Timestamp]]]:
        """Instrument -> membership intervals within [start, end], from the handler's universe."""
        inst = getattr(getattr(dataset, "handler", None), "instruments", None)
        if inst is None:
            inst = "all"
        if isinstance(inst, str):
            inst = D.instruments(inst)
        if isinstance(inst, dict):
            spans = D.list_instruments(inst, start_time=start, end_time=end, as_list=False)
            return {c: [(_ts(a), _ts(b)) for a, b in s] for c, s in spans.items() if s}
        return {str(c): [(start, end)] for c in inst}

    def _frame(self, dataset, start, end):
        """(raw daily frame indexed (datetime, instrument) with a membership column, spans)."""
        spans = self._spans(dataset, start, end)
        if not spans:
            raise DataError(f"the dataset's universe has no instrument between {start.date()} and {end.date()}")
        cal = D.calendar(end_time=start)
        first = cal[max(0, len(cal) - self.lookback)] if len(cal) else start
        df = D.features(sorted(spans), FIELDS, start_time=first, end_time=end, freq="day")
        if df is None or df.empty:
            raise DataError(
                f"qlib returned no {FIELDS} data for {len(spans)} instruments between {first.date()} and "
                f"{end.date()}: is the provider_uri a dump_bin directory qlib can read "
                "(lower-case features/ folders; see alphanet_rs.qlib.qlib_provider)?"
            )
        df = df.swaplevel(0, 1).sort_index()  # (datetime, instrument)
        dates = df.index.get_level_values(0)
        codes = df.index.get_level_values(1)
        member = np.zeros(len(df), dtype=bool)
        for code, s in spans.items():
            rows = codes == code
            for a, b in s:
                member |= rows & (dates >= a) & (dates <= b)
        df = df.assign(member=member)
        return df, spans

    def _panel(self, dataset, start, end):
        df, spans = self._frame(dataset, start, end)
        return from_frame(df, universe="member"), spans

    # -- the qlib Model interface ----------------------------------------------------------

    def fit(self, dataset, reweighter=None, **kwargs):
        if reweighter is not None:
            raise ConfigError("AlphaNetModel does not support a reweighter")
        t0, t1 = self._segment(dataset, "train")
        has_valid = "valid" in getattr(dataset, "segments", {})
        v0, v1 = self._segment(dataset, "valid") if has_valid else (t0, t1)
        end = max(t1, v1)
        panel, _ = self._panel(dataset, t0, end)
        dates = panel.dates
        inside = dates[(dates >= t0) & (dates <= end)]
        if len(inside) == 0:
            raise DataError(f"no trading date between {t0.date()} and {end.date()}")
        if has_valid:
            n_train = int(((dates >= t0) & (dates <= t1)).sum())
            n_valid = int(((dates >= v0) & (dates <= v1)).sum())
            split = f"{max(n_train, 1)}:{max(n_valid, 1)}"
        else:
            split = "4:1"
        # The segment's last LABEL_DAYS dates have no label inside this panel: they give no
        # sample either way, so end there rather than be warned about them.
        last = inside[-1] if len(dates) <= LABEL_DAYS else min(inside[-1], dates[-1 - LABEL_DAYS])
        self.model = train(panel, start=inside[0], end=last, split=split, **self.train_kwargs)
        return self

    def predict(self, dataset, segment="test"):
        if self.model is None:
            raise ValueError("AlphaNetModel is not fitted: call fit(dataset) first")
        s0, s1 = self._segment(dataset, segment) if isinstance(segment, str) else (_ts(segment.start), _ts(segment.stop))
        panel, spans = self._panel(dataset, s0, s1)
        dates = panel.dates
        inside = dates[(dates >= s0) & (dates <= s1)]
        if len(inside) == 0:
            raise DataError(f"no trading date in the {segment} segment {s0.date()} .. {s1.date()}")
        pred = self.model.predict(panel, start=inside[0], end=inside[-1])
        pred.index = pred.index.set_names(["datetime", "instrument"])
        # The days each instrument is in the universe, as qlib's own datasets have.
        d = pred.index.get_level_values(0)
        c = pred.index.get_level_values(1)
        keep = np.zeros(len(pred), dtype=bool)
        for code, s in spans.items():
            rows = c == code
            for a, b in s:
                keep |= rows & (d >= a) & (d <= b)
        return pred[keep].rename("score")
