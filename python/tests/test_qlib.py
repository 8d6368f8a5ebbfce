"""A qlib workflow on the shared A-share data: AlphaNetModel fits and predicts a DatasetH, and
qlib's own records and analysis compute its IC."""

import numpy as np
import pandas as pd
import pytest

qlib = pytest.importorskip("qlib")

from qlib.contrib.eva.alpha import calc_ic  # noqa: E402
from qlib.data.dataset.handler import DataHandlerLP  # noqa: E402
from qlib.utils import init_instance_by_config  # noqa: E402
from qlib.workflow import R  # noqa: E402
from qlib.workflow.record_temp import SigAnaRecord, SignalRecord  # noqa: E402

from alphanet_rs.qlib import AlphaNetModel, qlib_provider  # noqa: E402


@pytest.fixture(scope="module")
def provider(shared_qlib, tmp_path_factory):
    uri = qlib_provider(shared_qlib, cache=tmp_path_factory.mktemp("qlib-cache"))
    qlib.init(provider_uri=uri, region="cn", kernels=1)
    return uri


DATASET = {
    "class": "DatasetH",
    "module_path": "qlib.data.dataset",
    "kwargs": {
        "handler": {
            "class": "DataHandlerLP",
            "module_path": "qlib.data.dataset.handler",
            "kwargs": {
                "instruments": "csi300",
                "start_time": "2018-01-01",
                "end_time": "2020-06-30",
                "data_loader": {
                    "class": "QlibDataLoader",
                    "kwargs": {"config": {
                        "feature": (["$close/Ref($close,1)-1"], ["RET1"]),
                        "label": (["Ref($close, -2)/Ref($close, -1) - 1"], ["LABEL0"]),
                    }},
                },
            },
        },
        "segments": {
            "train": ("2018-01-01", "2019-06-30"),
            "valid": ("2019-07-01", "2019-12-31"),
            "test": ("2020-01-01", "2020-06-30"),
        },
    },
}


def test_qlib_workflow_fits_predicts_and_qlib_computes_ic(provider, tmp_path, monkeypatch):
    # Recent mlflow refuses qlib's default file-store recorder unless told otherwise.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    # qlib puts the recorder's lock file at the uri's path made relative to the working directory.
    monkeypatch.chdir(tmp_path)
    dataset = init_instance_by_config(DATASET)
    model = init_instance_by_config({
        "class": "AlphaNetModel",
        "module_path": "alphanet_rs.qlib",
        "kwargs": {"epochs": 2, "seed": 0, "progress": False},
    })
    assert isinstance(model, AlphaNetModel)
    with R.start(experiment_name="alphanet", uri=f"file:{tmp_path / 'mlruns'}"):
        model.fit(dataset)
        rec = R.get_recorder()
        SignalRecord(model, dataset, rec).generate()
        SigAnaRecord(rec).generate()
        # As qlib's task_train does: the fitted model is pickled into the recorder.
        rec.save_objects(**{"params.pkl": model})
        pred = rec.load_object("pred.pkl")
        reloaded = rec.load_object("params.pkl")
        ic = rec.load_object("sig_analysis/ic.pkl")
        ric = rec.load_object("sig_analysis/ric.pkl")

    score = pred.iloc[:, 0]
    assert list(pred.index.names) == ["datetime", "instrument"]
    assert pred.index.get_level_values(0).min() >= pd.Timestamp("2020-01-01")
    assert pred.index.get_level_values(0).max() <= pd.Timestamp("2020-06-30")
    assert np.isfinite(score).mean() > 0.95 and len(score) > 10_000
    # Point-in-time CSI300 members only: about 300 instruments a day.
    per_day = score.groupby(level=0).size()
    assert 200 <= per_day.median() <= 300
    assert len(ic) > 100 and np.isfinite(ic.mean()) and np.isfinite(ric.mean())
    assert abs(ic.mean()) < 0.5

    # The pickled model predicts the same.
    assert reloaded.predict(dataset).equals(pred.iloc[:, 0].rename("score"))

    # The same IC from qlib's analysis function directly.
    label = dataset.prepare("test", col_set="label", data_key=DataHandlerLP.DK_R).iloc[:, 0]
    ic2, _ = calc_ic(score, label)
    assert np.isclose(ic2.mean(), ic.mean())


def test_lower_case_provider_is_needed_for_the_shared_data(shared_qlib, provider):
    # The shared dump has upper-case features/SH600000 folders; qlib reads features/sh600000.
    assert provider != str(shared_qlib)
    assert (shared_qlib / "features" / "SH600000").is_dir()
    from pathlib import Path

    assert (Path(provider) / "features" / "sh600000" / "close.day.bin").is_file()
