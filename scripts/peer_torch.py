"""Peer benchmark: a plain PyTorch implementation of AlphaNet v2 (docs/models.md), eager and
torch.compile, for GPU comparisons with `alphanet bench --device cuda` (runs on CPU too).

Same model as the engine's v2: feature layer (window 10, stride 10; the 6-op set of the public
`alphanet` package by default, `--ops all` adds ts_mean) -> BatchNorm -> LSTM(30, last hidden
state) -> BatchNorm -> Dropout(0) -> Dense(1), MSE + 1e-3·L2 on the output kernel, Adam(1e-4,
eps 1e-7). Times forward + backward + Adam on random pictures and prints, per mode, a line in
the TensorFlow peer's format:

  torch-alphanet v2 eager train batch=1000 median_step_s=0.01234 samples_per_s=81037

Usage: python scripts/peer_torch.py [--batch 1000] [--steps 30] [--device cuda|cpu]
       [--mode eager|compile|both] [--ops peer6|all] [--threads N]
"""
import argparse
import statistics
import time

import torch
from torch import nn

p = argparse.ArgumentParser()
p.add_argument("--batch", type=int, default=1000)
p.add_argument("--steps", type=int, default=30)
p.add_argument("--warmup", type=int, default=5)
p.add_argument("--features", type=int, default=15)
p.add_argument("--days", type=int, default=30)
p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
p.add_argument("--mode", default="both", choices=["eager", "compile", "both"])
p.add_argument("--ops", default="peer6", choices=["peer6", "all"])
p.add_argument("--threads", type=int, default=0)
a = p.parse_args()
if a.threads:
    torch.set_num_threads(a.threads)

WINDOW = STRIDE = 10
DEGENERATE_VAR = 1e-12


class Features(nn.Module):
    """[B, F, D] pictures -> [B, S, C]; channels: corr pairs, cov pairs (i < j, lexicographic),
    stddev, zscore, return, decaylinear, [mean] — the engine's order (docs/features.md)."""

    def __init__(self, n_features, with_mean):
        super().__init__()
        i, j = torch.triu_indices(n_features, n_features, offset=1)
        self.register_buffer("pi", i)
        self.register_buffer("pj", j)
        w = torch.arange(1, WINDOW + 1, dtype=torch.float32)
        self.register_buffer("decay", w / w.sum())
        self.with_mean = with_mean

    def forward(self, x):
        w = x.unfold(2, WINDOW, STRIDE)  # [B, F, S, d]
        d = WINDOW
        mean = w.mean(-1)
        c = w - mean.unsqueeze(-1)
        sxx = (c * c).sum(-1)  # [B, F, S]
        flat = sxx / d < DEGENERATE_VAR * (1 + mean * mean)
        norm = sxx.sqrt()
        sxy = torch.einsum("bfsk,bgsk->bsfg", c, c)[:, :, self.pi, self.pj]  # [B, S, P]
        inv = torch.where(flat, torch.zeros_like(norm), 1 / norm).transpose(1, 2)  # [B, S, F]
        corr = sxy * inv[:, :, self.pi] * inv[:, :, self.pj]
        cov = sxy / (d - 1)
        sd = (norm / d**0.5).transpose(1, 2)
        m = mean.transpose(1, 2)
        zscore = torch.where(flat.transpose(1, 2), torch.zeros_like(m), m / sd)
        first, last = w[..., 0].transpose(1, 2), w[..., -1].transpose(1, 2)
        ret = torch.where(first == 0, torch.zeros_like(first), last / first - 1)
        decay = (w * self.decay).sum(-1).transpose(1, 2)
        out = [corr, cov, sd, zscore, ret, decay] + ([m] if self.with_mean else [])
        return torch.cat(out, dim=2)


class AlphaNetV2(nn.Module):
    def __init__(self, n_features, with_mean, hidden=30, dropout=0.0):
        super().__init__()
        self.features = Features(n_features, with_mean)
        pairs = n_features * (n_features - 1) // 2
        channels = 2 * pairs + (5 if with_mean else 4) * n_features
        # Keras BatchNormalization: momentum 0.99 on the moving average = PyTorch momentum 0.01.
        self.bn1 = nn.BatchNorm1d(channels, eps=1e-3, momentum=0.01)
        self.lstm = nn.LSTM(channels, hidden, batch_first=True)
        self.bn2 = nn.BatchNorm1d(hidden, eps=1e-3, momentum=0.01)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, 1)

    def forward(self, x):
        f = self.features(x)  # [B, S, C]
        b, s, ch = f.shape
        f = self.bn1(f.reshape(b * s, ch)).reshape(b, s, ch)
        _, (h, _) = self.lstm(f)
        return self.out(self.dropout(self.bn2(h[-1])))


def bench(compiled):
    torch.manual_seed(0)
    dev = torch.device(a.device)
    model = AlphaNetV2(a.features, a.ops == "all").to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-7)
    x = torch.randn(a.batch, a.features, a.days, device=dev) + 3.0
    y = torch.randn(a.batch, 1, device=dev)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(model(x), y) + 1e-3 * model.out.weight.pow(2).sum()
        loss.backward()
        opt.step()
        return loss

    run = torch.compile(step) if compiled else step
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for _ in range(a.warmup):
        run()
    sync()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    mode = "compile" if compiled else "eager"
    print(
        f"torch-alphanet v2 {mode} train batch={a.batch} median_step_s={med:.5f} "
        f"samples_per_s={a.batch / med:.0f} (device {a.device}, ops {a.ops}, torch {torch.__version__})"
    )


for compiled in {"eager": [False], "compile": [True], "both": [False, True]}[a.mode]:
    bench(compiled)
