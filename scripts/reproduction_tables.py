#!/usr/bin/env python3
"""Writes reproduction.md of scripts/reproduce.sh: our figures beside the report's, row by row.

Reads OUT/run (run.json, manifest.json), OUT/report/metrics.json (alphanet eval) and, for the
market, OUT/enhance-<variant>/metrics.json and the CSI500 proxy's check in the enhancement
panel's meta.json. Standard library only.
"""
import argparse
import json
import os
import platform
from pathlib import Path

VARIANTS = ["v2", "v2.1", "v2.2", "v2.3"]

# The report (Huatai 2021, full A-share market, 2011-01-31 .. 2021-06-30, 10 seeds): its
# headline IC and layered tables per variant.
REPORT = {
    "v2": dict(ic=11.25, std=9.87, ir=1.14, pos=88.51, top=15.03, ls=52.19, ls_sharpe=6.18, top_ir=3.45, top_win=82.40),
    "v2.1": dict(ic=11.45, std=10.44, ir=1.10, pos=88.89, top=15.79, ls=54.29, ls_sharpe=6.14, top_ir=3.42, top_win=79.20),
    "v2.2": dict(ic=7.99, std=6.96, ir=1.15, pos=89.66, top=10.79, ls=37.72, ls_sharpe=6.05, top_ir=3.55, top_win=76.00),
    "v2.3": dict(ic=11.70, std=10.78, ir=1.09, pos=86.97, top=16.90, ls=56.05, ls_sharpe=6.03, top_ir=3.79, top_win=81.60),
}
# The report's CSI500 enhancement, as far as this project has its figures (v2 only).
REPORT_ENHANCE = {"v2": dict(excess=20.1, ir=3.19)}


def pct(x, digits=2):
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def num(x):
    return "–" if x is None else f"{x:.2f}"


def load(path):
    with open(path) as f:
        return json.load(f)


def machine():
    model = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model} ({platform.system()})"


def budget_lines(run_dir):
    spec = load(run_dir / "run.json")["spec"]
    man = load(run_dir / "manifest.json")
    s, t = spec["schedule"], spec["train"]
    every = s["every"]
    every = f"{every['Months']} months" if "Months" in every else f"{every['TradingDays']} trading days"
    lines = [
        f"- Settings (`{run_dir}/run.json`): {spec['seeds']} seeds per variant and window, retrained every "
        f"{every}, {s['insample_days']} in-sample trading days (every {spec['sample_every']}th date, split "
        f"{s['split'][0]}:{s['split'][1]}), at most {t['epochs']} epochs (patience {t['patience']}, best epoch by "
        f"validation {t['select_by']}), batch {t['batch_size']}, lr {t['adam']['lr']:g}, labels "
        f"`{t.get('label', 'zscore')}`, input `{spec.get('input_norm', 'none')}`, hidden {spec['hidden']}.",
    ]
    wins = man["windows"]
    shrunk = [w for w in wins if w.get("shrunk_to")]
    lines.append(
        f"- {len(wins)} windows predicting {wins[0]['predict'][0]} .. {wins[-1]['predict'][1]}; "
        + (
            "the data starts in 2010, so the first windows train on less history: "
            + ", ".join(f"{w['predict'][0][:4]}: {w['shrunk_to']} dates" for w in shrunk)
            if shrunk
            else "every window has its full in-sample history"
        )
        + "."
    )
    jobs = man["jobs"]
    samples = [j["losses"]["train_samples"] for j in jobs]
    spe = [j["s_per_epoch"] for j in jobs if j.get("s_per_epoch")]
    peak = [j["peak_rss_mib"] for j in jobs if j.get("peak_rss_mib")]
    tot = man["totals"]
    line = (
        f"- {len(jobs)} jobs, {tot['train_s'] / 3600:.2f} h of training and {tot['predict_s'] / 60:.1f} min of "
        f"prediction in all (summed over jobs); training samples per epoch {min(samples):,} .. {max(samples):,} "
        f"(mean {sum(samples) / len(samples):,.0f})"
    )
    if spe:
        line += f"; {sum(spe) / len(spe):.1f} s per epoch on average (max {max(spe):.1f})"
    if peak:
        line += f"; peak memory per job up to {max(peak):,.0f} MiB"
    lines.append(line + " (`manifest.json`).")
    return lines


def ic_tables(evals, rows):
    out = ["## RankIC (the report's Tables 9, 17, 25)", "",
           "Neutralized (industry + size) RankIC every 10 trading days; ours is each variant's seed "
           "ensemble; the baselines are scored on the same dates and stocks.", "",
           "| factor | source | RankIC mean | RankIC std | IC_IR | IC>0 |", "|---|---|---|---|---|---|"]
    for name in rows:
        e = evals[name]
        ic = e["rank_ic"]
        out.append(f"| {name} | ours | {pct(ic['mean'])} | {pct(ic['std'])} | {num(ic['ir'])} | {pct(ic['positive'])} |")
        if name in REPORT:
            r = REPORT[name]
            out.append(f"| {name} | report | {r['ic']:.2f}% | {r['std']:.2f}% | {r['ir']:.2f} | {r['pos']:.2f}% |")
    out += ["", "## Layered backtest (the report's Tables 11, 19, 27)", "",
            "Five groups every 10 trading days, bought at the next day's VWAP, 0.2% one way; excess over "
            "the equal-weighted universe.", "",
            "| factor | source | TOP ann. excess | long-short ann. | LS Sharpe | TOP IR | TOP monthly win |",
            "|---|---|---|---|---|---|---|"]
    for name in rows:
        l = evals[name]["layers"]
        out.append(f"| {name} | ours | {pct(l['group_excess'][-1])} | {pct(l['long_short_return'])} | "
                   f"{num(l['long_short_sharpe'])} | {num(l['top_ir'])} | {pct(l['top_win_rate'])} |")
        if name in REPORT:
            r = REPORT[name]
            out.append(f"| {name} | report | {r['top']:.2f}% | {r['ls']:.2f}% | {r['ls_sharpe']:.2f} | "
                       f"{r['top_ir']:.2f} | {r['top_win']:.2f}% |")
    years = sorted({y for name in rows for y in evals[name].get("rank_ic_by_year", {})})
    out += ["", "## RankIC by year", "", "| factor | " + " | ".join(years) + " |",
            "|---|" + "---|" * len(years)]
    for name in rows:
        by = evals[name].get("rank_ic_by_year", {})
        out.append(f"| {name} | " + " | ".join(pct(by[y]["mean"], 1) if y in by else "–" for y in years) + " |")
    styles = sorted({k for name in rows for k in evals[name].get("style_exposure", {})})
    if styles:
        out += ["", "## Style exposure", "",
                "Mean rank correlation of the factor as given (before neutralization) with each style.", "",
                "| factor | " + " | ".join(styles) + " |", "|---|" + "---|" * len(styles)]
        for name in rows:
            ex = evals[name]["style_exposure"]
            out.append(f"| {name} | " + " | ".join("–" if ex.get(k) is None else f"{ex[k]:+.3f}" for k in styles) + " |")
    return out


def enhance_tables(out_dir, names, panel_meta):
    out = ["", "## CSI500 enhancement (the report's Tables 14, 22, 30)", "",
           "Weekly, long only, industry and size exposures of the benchmark, ±1% per stock, two-way "
           "turnover ≤ 30%, 0.2% one way; against the CSI500 proxy (below).", "",
           "| factor | source | annual return | excess return | tracking error | IR | excess max DD | monthly win | turnover / rebalance |",
           "|---|---|---|---|---|---|---|---|---|"]
    per_year = {}
    for name in names:
        path = out_dir / f"enhance-{name}" / "metrics.json"
        if not path.is_file():
            continue
        m = load(path)
        p = m["performance"]
        out.append(f"| {name} | ours | {pct(p['annual_return'])} | {pct(p['excess_return'])} | {pct(p['tracking_error'])} | "
                   f"{num(p['information_ratio'])} | {pct(p['excess_max_drawdown'])} | {pct(p['monthly_win_rate'])} | "
                   f"{pct(m['mean_turnover'])} |")
        if name in REPORT_ENHANCE:
            r = REPORT_ENHANCE[name]
            out.append(f"| {name} | report | – | {r['excess']:.1f}% | – | {r['ir']:.2f} | – | – | – |")
        per_year[name] = {y["year"]: y for y in p["per_year"]}
    out.append("")
    out.append("Report cells marked – are figures this project does not have from the report.")
    if per_year:
        years = sorted({y for v in per_year.values() for y in v})
        out += ["", "### Excess return by year (the report's Tables 15, 23, 31)", "",
                "| factor | " + " | ".join(years) + " |", "|---|" + "---|" * len(years)]
        for name, by in per_year.items():
            out.append(f"| {name} | " + " | ".join(pct(by[y]["excess"], 1) if y in by else "–" for y in years) + " |")
        first = next(iter(per_year.values()))
        out.append("| benchmark (proxy) return | " + " | ".join(pct(first[y]["benchmark"], 1) if y in first else "–" for y in years) + " |")
    check = panel_meta.get("provenance", {}).get("benchmark_check")
    if check:
        out += ["", "### The CSI500 proxy against SH000905", "",
                f"Daily returns {check['first_date']} .. {check['last_date']} ({check['days']} days): correlation "
                f"{check['correlation']:.3f}, tracking error {pct(check['tracking_error'], 1)} a year, annual return "
                f"{pct(check['proxy_annual_return'], 1)} (proxy) vs {pct(check['index_annual_return'], 1)} (index).", "",
                "| year | " + " | ".join(y for y, _, _ in check["per_year"]) + " |",
                "|---|" + "---|" * len(check["per_year"]),
                "| proxy | " + " | ".join(pct(p, 1) for _, p, _ in check["per_year"]) + " |",
                "| SH000905 | " + " | ".join(pct(x, 1) for _, _, x in check["per_year"]) + " |"]
    return out


def directions(evals, out_dir):
    def ic(n):
        return evals[n]["rank_ic"]

    def lay(n):
        return evals[n]["layers"]

    def enh(n):
        p = out_dir / f"enhance-{n}" / "metrics.json"
        return load(p)["performance"] if p.is_file() else None

    rows = [
        ("v2.1 ≈ v2 (RankIC)", "11.45% vs 11.25%", f"{pct(ic('v2.1')['mean'])} vs {pct(ic('v2')['mean'])}"),
        ("v2.2: lower RankIC than v2", "7.99% vs 11.25%", f"{pct(ic('v2.2')['mean'])} vs {pct(ic('v2')['mean'])}"),
        ("v2.2: higher IC_IR than v2", "1.15 vs 1.14", f"{num(ic('v2.2')['ir'])} vs {num(ic('v2')['ir'])}"),
        ("v2.3: higher TOP-group excess than v2", "16.90% vs 15.03%", f"{pct(lay('v2.3')['group_excess'][-1])} vs {pct(lay('v2')['group_excess'][-1])}"),
        ("v2.3: higher TOP IR than v2", "3.79 vs 3.45", f"{num(lay('v2.3')['top_ir'])} vs {num(lay('v2')['top_ir'])}"),
    ]
    e2, e22 = enh("v2"), enh("v2.2")
    if e2 and e22:
        rows.append(("v2.2: smaller enhancement excess drawdown than v2", "(report: smaller)",
                     f"{pct(e22['excess_max_drawdown'])} vs {pct(e2['excess_max_drawdown'])}"))
    out = ["", "## The variants against v2", "", "| claim | report | ours |", "|---|---|---|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--universe", choices=["csi300", "market"], required=True)
    ap.add_argument("--budget", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--wall-s", type=int, required=True)
    ap.add_argument("--train-s", type=int, required=True)
    a = ap.parse_args()
    metrics = load(a.out / "report" / "metrics.json")
    evals = {f["name"]: f for f in metrics["factors"]}
    names = [v for v in VARIANTS if v in evals]
    rows = names + [n for n in evals if n not in names]
    wins = load(a.out / "run" / "manifest.json")["windows"]
    span = f"predictions {wins[0]['predict'][0]} .. {wins[-1]['predict'][1]}"
    what = ("the whole A-share market of the shared qlib data (ashare-qlib-market), " + span
            if a.universe == "market" else "CSI300 members of the shared qlib data, " + span)
    flag = "--market " if a.universe == "market" else ""
    flag += {"cpu": "", "gpu": "--gpu ", "smoke": "--smoke "}.get(a.budget, "")
    out = [f"# Reproduction on {what} ({a.budget} budget)", "",
           f"Made by `bash scripts/reproduce.sh {flag}{a.out}` in {a.wall_s / 60:.0f} min wall time "
           f"({a.train_s / 60:.0f} min to import and train, the rest to evaluate) on {machine()}.", ""]
    out += budget_lines(a.out / "run")
    out.append("")
    out += ic_tables(evals, rows)
    if a.universe == "market":
        meta_path = a.out / "panel-market-csi500" / "meta.json"
        out += enhance_tables(a.out, names, load(meta_path) if meta_path.is_file() else {})
    if all(v in evals for v in VARIANTS):
        out += directions(evals, a.out)
    out += ["", f"Charts: `{a.out}/report/ic_cumulative.png` (cumulative RankIC), `{a.out}/report/groups_*.png`, "
            f"`{a.out}/run/learning_curves_*.png`" + (f", `{a.out}/enhance-*/nav.png`." if a.universe == "market" else ".")]
    print("\n".join(out))


if __name__ == "__main__":
    main()
