"""Writes the TensorFlow parity fixtures under tests/fixtures/ (committed; rerun only to refresh).

Run with the peer venv (the public `alphanet` package on TensorFlow CPU):
    bash ../shared/peers/setup_tf_peer.sh /tmp/alphanet-tf-peer
    TF_USE_LEGACY_KERAS=1 /tmp/alphanet-tf-peer/bin/python scripts/make_fixtures.py

tests/fixtures/tf_feature_expansion.json (read by tests/parity_tf.rs):
    input_shape   [8, 30, 15], the package's layout (batch, time, feature)
    input         flat row-major float32 values: standard normal clipped to +-2.5, plus 3
                  (seed 20210729), so every value is in [0.5, 5.5]: far from 0, where the
                  package's return gives -1 and ours 0, and where returns blow up
    stride        10 (FeatureExpansion(stride=10): windows of 10 days, stride 10)
    output_shape  [8, 3, 240]
    output        flat row-major float32 output of the package's own FeatureExpansion
    channels      the package's channel order as names "op(a)" / "op(a,b)" with the package's
                  op names (std, zscore, decaylinear, return, cov, corr) and, for pairs, its
                  (row, column) of the lower-triangular mask it selects (row > column).
                  The order is derived from the package (its mask, and each sub-layer's output
                  located in the concatenation), not written down by hand.
    versions      tensorflow, tf_keras, alphanet, numpy

tests/fixtures/tf_adam_golden.json (read by the Adam golden test):
    optimizer     "tf.keras.optimizers.Adam" (tf_keras 2.x, i.e. TF_USE_LEGACY_KERAS=1), with
                  learning_rate 1e-2, beta_1 0.9, beta_2 0.999, epsilon 1e-7 (all float32 in TF).
                  Its dense update per step t = 1, 2, ...:
                      m += (g - m)(1 - beta_1);  v += (g^2 - v)(1 - beta_2)
                      alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)
                      var -= alpha m / (sqrt(v) + epsilon)   (epsilon not bias-corrected)
    initial       the variable's 5 starting values (float32)
    grads         10 lists of 5: the gradient applied at steps 1..10 (float32)
    trajectory    10 lists of 5: the variable after steps 1..10 (float32)
    versions      as above
Floats are written as the shortest decimal that round-trips to the same float32.
"""
import json
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import alphanet  # noqa: E402
from importlib.metadata import version  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
VERSIONS = {p: version(p) for p in ("tensorflow-cpu", "tf_keras", "alphanet", "numpy")}


def f32_list(a):
    """Shortest decimal per float32 (numpy's repr), parsed back so json writes it as a number."""
    return [float(np.format_float_positional(v, unique=True, trim="-")) for v in np.asarray(a, np.float32).ravel()]


def write(name, obj):
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def feature_expansion():
    batch, days, features, stride = 8, 30, 15, 10
    rng = np.random.default_rng(20210729)
    x = (np.clip(rng.standard_normal((batch, days, features)), -2.5, 2.5) + 3.0).astype(np.float32)
    xt = tf.constant(x)
    out = alphanet.FeatureExpansion(stride=stride)(xt).numpy()

    # Pair order: the (row, column) positions the package's own mask selects, in its order.
    mask = alphanet._LowerNoDiagonalMask()((features, features)).numpy()
    pairs = [(int(r), int(c)) for r, c in np.argwhere(mask)]
    singles = [(a,) for a in range(features)]
    layers = [
        ("std", alphanet.Std, singles),
        ("zscore", alphanet.ZScore, singles),
        ("decaylinear", alphanet.LinearDecay, singles),
        ("return", alphanet.Return, singles),
        ("cov", alphanet.Covariance, pairs),
        ("corr", alphanet.Correlation, pairs),
    ]
    # Locate each sub-layer's output in the concatenation, so the group order is the package's.
    # (Close, not bit-equal: inside FeatureExpansion the layers run as tf.functions, whose graph
    # may fuse differently from the eager call; 1e-5 still singles out one offset.)
    placed = []
    for name, layer, args in layers:
        part = layer(stride=stride)(xt).numpy()
        starts = [s for s in range(out.shape[2] - part.shape[2] + 1) if np.allclose(out[:, :, s : s + part.shape[2]], part, rtol=1e-5, atol=1e-6)]
        assert len(starts) == 1, f"{name}: found at {starts}"
        assert part.shape[2] == len(args), f"{name}: {part.shape[2]} channels, expected {len(args)}"
        placed.append((starts[0], name, args))
    placed.sort()
    channels = []
    for start, name, args in placed:
        assert start == len(channels), f"{name} starts at {start}, expected {len(channels)}"
        channels += [f"{name}({','.join(map(str, a))})" for a in args]
    assert len(channels) == out.shape[2]

    write(
        "tf_feature_expansion.json",
        {
            "input_shape": list(x.shape),
            "input": f32_list(x),
            "stride": stride,
            "output_shape": list(out.shape),
            "output": f32_list(out),
            "channels": channels,
            "versions": VERSIONS,
        },
    )


def adam_golden():
    rng = np.random.default_rng(7)
    initial = rng.standard_normal(5).astype(np.float32)
    grads = rng.standard_normal((10, 5)).astype(np.float32)
    var = tf.Variable(initial)
    opt = tf.keras.optimizers.Adam(learning_rate=1e-2, beta_1=0.9, beta_2=0.999, epsilon=1e-7)
    trajectory = []
    for g in grads:
        opt.apply_gradients([(tf.constant(g), var)])
        trajectory.append(var.numpy().copy())
    write(
        "tf_adam_golden.json",
        {
            "optimizer": f"tf.keras.optimizers.Adam ({type(opt).__module__}.{type(opt).__name__})",
            "learning_rate": 1e-2,
            "beta_1": 0.9,
            "beta_2": 0.999,
            "epsilon": 1e-7,
            "initial": f32_list(initial),
            "grads": [f32_list(g) for g in grads],
            "trajectory": [f32_list(t) for t in trajectory],
            "versions": VERSIONS,
        },
    )


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    feature_expansion()
    adam_golden()
