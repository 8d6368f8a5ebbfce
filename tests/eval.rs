//! Evaluation: statistics on hand-computed cases, execution timing (no look-ahead), cost
//! accounting, neutralization, the optimizer's constraints, and the `eval` / `enhance` commands
//! end to end on a small synthetic panel.

use alphanet::app::{enhance as enhance_app, eval as eval_app};
use alphanet::data::calendar::{format_date, parse_date};
use alphanet::data::features::FEATURE_NAMES;
use alphanet::data::panel::{flags, Panel, PanelArrays, PanelMeta, FORMAT_VERSION, PRICE_FIELDS};
use alphanet::data::samples::spearman;
use alphanet::data::synth::{write_synth, SynthConfig, BENCHMARK_NAME};
use alphanet::eval::baselines::{restrict, Baseline};
use alphanet::eval::book::run_book;
use alphanet::eval::enhance::EnhanceConfig;
use alphanet::eval::factor::FactorSpec;
use alphanet::eval::layered::{evaluate, evaluate_on, factor_span, quantile_groups, LayerConfig};
use alphanet::eval::neutralize::neutralize;
use alphanet::eval::optimize::{Instance, SolveError, TOLERANCE};
use alphanet::eval::stats::*;
use rand::Rng;

mod common;
use common::alphanet;

/// |a − b| ≤ tol: an absolute tolerance.
fn close_abs(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn spearman_with_ties() {
    // Ranks of a: [1, 2.5, 2.5, 4]; of b: [1, 3, 2, 4]. Centred at 2.5:
    // Σxy = 2.25 + 0 + 0 + 2.25 = 4.5, Σx² = 4.5, Σy² = 5 → 4.5 / √22.5.
    let rho = spearman(&[1.0, 2.0, 2.0, 3.0], &[10.0, 30.0, 20.0, 40.0]);
    assert!(close_abs(rho, 4.5 / 22.5f64.sqrt(), 1e-12), "{rho}");
    assert!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_nan());
}

#[test]
fn annualization_sharpe_ir_drawdown() {
    // 121 days of +1%: NAV 1.01^121 over half a year → 1.01^242 − 1 a year.
    let r = vec![0.01; 121];
    assert!(close_abs(
        annualized_return(&r),
        1.01f64.powi(242) - 1.0,
        1e-9
    ));
    assert!(close_abs(
        annualized_return(&[0.001; 242]),
        1.001f64.powi(242) - 1.0,
        1e-12
    ));
    // mean 0.005, sample std √(5e-4 / 3).
    let r = [0.01, -0.01, 0.02, 0.0];
    let want = 0.005 / (5e-4f64 / 3.0).sqrt() * 242f64.sqrt();
    assert!(
        close_abs(sharpe(&r), want, 1e-9),
        "{} vs {want}",
        sharpe(&r)
    );
    // IR is the Sharpe of the excess series.
    let b = [0.005, 0.0, 0.01, -0.01];
    let e = excess(&r, &b);
    assert_eq!(e, vec![0.005, -0.01, 0.01, 0.01]);
    let (m, s) = mean_std(&e);
    assert!(close_abs(sharpe(&e), m / s * 242f64.sqrt(), 1e-12));
    // NAV 1.1, 0.55, 0.66, 1.32, 1.188: worst fall 1.1 → 0.55.
    assert!(close_abs(
        max_drawdown(&[0.1, -0.5, 0.2, 1.0, -0.1]),
        0.5,
        1e-12
    ));
    // The start counts as a peak.
    assert!(close_abs(max_drawdown(&[-0.2, 0.1]), 0.2, 1e-12));
    assert_eq!(max_drawdown(&[0.01, 0.02]), 0.0);
}

#[test]
fn monthly_win_rate_and_per_year() {
    let dates: Vec<String> = [
        "2020-01-30",
        "2020-01-31",
        "2020-02-03",
        "2020-02-04",
        "2020-03-02",
        "2021-01-04",
    ]
    .map(String::from)
    .to_vec();
    let r = [0.01, 0.01, -0.02, 0.0, 0.03, 0.05];
    let b = [0.0, 0.0, 0.01, -0.01, 0.04, 0.01];
    // Jan 2020: 1.01² − 1 > 0 (win); Feb: −2% < 1.01·0.99 − 1 (loss); Mar: 3% < 4% (loss);
    // Jan 2021: win → 2 of 4.
    assert!(close_abs(monthly_win_rate(&dates, &r, &b), 0.5, 1e-12));
    let years = period_returns(&dates, &r, 4);
    assert_eq!(years.len(), 2);
    assert!(close_abs(
        years[0].1,
        1.01 * 1.01 * 0.98 * 1.03 - 1.0,
        1e-12
    ));
    assert!(close_abs(years[1].1, 0.05, 1e-12));
}

#[test]
fn neutralization_by_hand_and_orthogonal() {
    // Industry 0: f̃ = [−.5, .5], s̃ = [−.5, .5]; industry 1: f̃ = [−.5, .5], s̃ = [−1, 1].
    // β = Σf̃s̃ / Σs̃² = 1.5 / 2.5 = 0.6.
    let e = neutralize(&[1.0, 2.0, 3.0, 4.0], &[0, 0, 1, 1], &[1.0, 2.0, 1.0, 3.0]);
    for (a, b) in e.iter().zip([-0.2, 0.2, 0.1, -0.1]) {
        assert!(close_abs(*a, b, 1e-12), "{e:?}");
    }
    // Random case: residual orthogonal to every dummy and to size; unknowns NaN.
    let mut rng = alphanet::util::rng::stream(3, "test/neutralize");
    let n = 50;
    let f: Vec<f64> = (0..n).map(|_| rng.gen::<f64>()).collect();
    let ind: Vec<i16> = (0..n)
        .map(|i| if i == 7 { -1 } else { rng.gen_range(0..4) })
        .collect();
    let size: Vec<f64> = (0..n).map(|_| 20.0 + 3.0 * rng.gen::<f64>()).collect();
    let e = neutralize(&f, &ind, &size);
    assert!(e[7].is_nan());
    for k in 0..4 {
        let s: f64 = (0..n).filter(|&i| ind[i] == k).map(|i| e[i]).sum();
        assert!(s.abs() < 1e-10, "industry {k}: {s}");
    }
    let s: f64 = (0..n).filter(|&i| i != 7).map(|i| e[i] * size[i]).sum();
    assert!(s.abs() < 1e-9, "size: {s}");
}

#[test]
fn quantile_groups_are_equal_and_ordered() {
    let v = [5.0, 1.0, 3.0, 3.0, 9.0, 0.0, 7.0, 2.0, 8.0, 6.0];
    let g = quantile_groups(&v, 5);
    // Ascending: 0(5) 1(1) 2(7) 3(2) 3(3) 5(0) 6(9) 7(6) 8(8) 9(4).
    assert_eq!(g, vec![2, 0, 1, 2, 4, 0, 3, 1, 4, 3]);
}

/// A toy panel: every stock listed with finite features, one industry, constant size, and the
/// given VWAP (all prices equal to it); calendar dates from 2020-01-01.
fn toy(t_len: usize, n: usize, vwap: impl Fn(usize, usize) -> f32) -> (PanelMeta, PanelArrays) {
    let d0 = parse_date("2020-01-01").unwrap();
    let np = PRICE_FIELDS.len();
    let mut price = vec![0.0; t_len * n * np];
    for t in 0..t_len {
        for i in 0..n {
            price[(t * n + i) * np..][..np].fill(vwap(t, i));
        }
    }
    let meta = PanelMeta {
        format_version: FORMAT_VERSION,
        source: "test".into(),
        dates: (0..t_len as i64).map(|k| format_date(d0 + k)).collect(),
        codes: (0..n).map(|i| format!("SH{:06}", 600_000 + i)).collect(),
        feature_names: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
        price_fields: PRICE_FIELDS.iter().map(|s| s.to_string()).collect(),
        style_names: vec![],
        industry_names: vec!["all".into()],
        proxies: vec![],
        missing_styles: vec![],
        oracle: None,
        benchmarks: vec![],
        provenance: serde_json::Value::Null,
    };
    let arrays = PanelArrays {
        features: vec![1.0; t_len * n * 15],
        price,
        tradable: vec![flags::LISTED; t_len * n],
        styles: vec![],
        industry: vec![0; t_len * n],
        size: vec![1.0; t_len * n],
        oracle: None,
        index: None,
    };
    (meta, arrays)
}

fn random_walk(t_len: usize, n: usize, seed: u64) -> Vec<f32> {
    let mut rng = alphanet::util::rng::stream(seed, "test/walk");
    let mut v = vec![0.0f32; t_len * n];
    for i in 0..n {
        let mut p = 10.0f64;
        for t in 0..t_len {
            p *= 1.0 + 0.03 * (rng.gen::<f64>() - 0.5);
            v[t * n + i] = p as f32;
        }
    }
    v
}

#[test]
fn costs_are_turnover_times_rate_and_positions_earn_the_label() {
    // Stock 0 doubles its VWAP from day 2 to day 3, stock 1 is flat.
    let (meta, a) = toy(6, 2, |t, i| if i == 0 && t >= 3 { 20.0 } else { 10.0 });
    let p = a.view(&meta);
    let targets = [vec![1.0, 0.0], vec![0.0, 1.0]];
    let run = run_book(p, &[1, 4], 5, 0.002, |k, _| Ok(targets[k].clone())).unwrap();
    // Day 1: build from cash, τ = 1 → −0.2%. Day 3: +100%. Day 4: sell all of 0, buy 1: τ = 2.
    assert_eq!(run.turnover, vec![1.0, 2.0]);
    let want = [-0.002, 0.0, 1.0, -0.004, 0.0];
    for (r, w) in run.returns.iter().zip(want) {
        assert!(close_abs(*r, w, 1e-12), "{:?}", run.returns);
    }
    // Half in each, rebalanced back to half after stock 0 doubles: drifted 2/3, 1/3 → τ = 1/3.
    let half = vec![0.5, 0.5];
    let run = run_book(p, &[1, 4], 5, 0.002, |_, _| Ok(half.clone())).unwrap();
    assert!(close_abs(run.turnover[1], 1.0 / 3.0, 1e-12));
    assert!(close_abs(run.returns[3], -0.002 * run.turnover[1], 1e-12));
}

#[test]
fn the_backtest_trades_at_next_day_vwap() {
    // A position decided at t is entered at vwap(t+1) and left at vwap(t+11): its compounded
    // return over days t+2..t+11 is the label exactly.
    let (t_len, n) = (40, 3);
    let v = random_walk(t_len, n, 1);
    let (meta, a) = toy(t_len, n, |t, i| v[t * n + i]);
    let p = a.view(&meta);
    let t = 5;
    let run = run_book(p, &[t + 1, t + 11], t + 11, 0.0, |_, _| {
        Ok(vec![0.0, 1.0, 0.0])
    })
    .unwrap();
    let growth: f64 = run.returns.iter().map(|r| 1.0 + r).product();
    let label = v[(t + 11) * n + 1] as f64 / v[(t + 1) * n + 1] as f64;
    assert!(close_abs(growth, label, 1e-6), "{growth} vs {label}");
}

#[test]
fn only_the_label_itself_scores_perfectly() {
    let (t_len, n) = (160, 40);
    let v = random_walk(t_len, n, 2);
    let (meta, a) = toy(t_len, n, |t, i| v[t * n + i]);
    let p = a.view(&meta);
    let ret = |from: usize, to: usize, i: usize| v[to * n + i] / v[from * n + i] - 1.0;
    // shift 0: vwap(t+11)/vwap(t+1), the traded return. ±1 day: one day off.
    let factor = |shift: isize| {
        let mut f = vec![f32::NAN; t_len * n];
        for t in 30..t_len - 13 {
            let from = (t as isize + 1 + shift) as usize;
            for i in 0..n {
                f[t * n + i] = ret(from, from + 10, i);
            }
        }
        f
    };
    let cfg = LayerConfig {
        cost: 0.0,
        ..LayerConfig::default()
    };
    let perfect = evaluate(p, &factor(0), &cfg).unwrap();
    assert!(close_abs(perfect.ic.mean, 1.0, 1e-9) && perfect.ic.positive == 1.0);
    let g = &perfect.summary.group_excess;
    assert!(g.windows(2).all(|w| w[0] < w[1]), "{g:?}");
    // With the label as factor the top group beats every other group over every holding period.
    let l = &perfect.layers;
    let period = |series: &[f64], k: usize| -> f64 {
        series[k * 10 + 1..=(k + 1) * 10]
            .iter()
            .map(|r| 1.0 + r)
            .product()
    };
    for k in 0..l.signal_dates.len() - 1 {
        for grp in 0..4 {
            assert!(period(&l.groups[4], k) > period(&l.groups[grp], k));
        }
    }
    for shift in [-1, 1] {
        let off = evaluate(p, &factor(shift), &cfg).unwrap();
        assert!(off.ic.mean < 0.95, "shift {shift}: IC {}", off.ic.mean);
        assert!(off.summary.long_short_return < perfect.summary.long_short_return);
    }
}

#[test]
fn ties_are_not_ranked_into_groups() {
    let (t_len, n) = (160, 40);
    let v = random_walk(t_len, n, 3);
    let (meta, a) = toy(t_len, n, |t, i| v[t * n + i]);
    let p = a.view(&meta);
    let cfg = LayerConfig::default();
    // The same value for every stock on every date (1.0, or 1e30): refused, naming the cause.
    for value in [1.0f32, 1e30] {
        let mut f = vec![f32::NAN; t_len * n];
        f[30 * n..(t_len - 13) * n].fill(value);
        let err = evaluate(p, &f, &cfg).unwrap_err().to_string();
        assert!(err.contains("constant factor"), "{err}");
    }
    // A real factor with some dates that take only 3 distinct values: those dates are left out
    // of the layered backtest and counted; the others are evaluated.
    let mut f = vec![f32::NAN; t_len * n];
    for t in 30..t_len - 13 {
        for i in 0..n {
            f[t * n + i] = if t < 60 { (i % 3) as f32 } else { v[t * n + i] };
        }
    }
    let e = evaluate(p, &f, &cfg).unwrap();
    let signal = |t: usize| t >= 30 && (t - 30).is_multiple_of(10) && t < t_len - 13;
    let ties = (30..60).filter(|&t| signal(t)).count();
    assert_eq!(e.degenerate_dates, ties);
    assert!(e.layers.signal_dates.iter().all(|&t| t >= 60));
}

/// A random feasible instance built around a known feasible point `w*`.
fn feasible_instance(
    seed: u64,
    n: usize,
    groups: usize,
    with_turnover: bool,
) -> (Instance, Vec<f64>) {
    let mut rng = alphanet::util::rng::stream(seed, "test/optimizer");
    let raw: Vec<f64> = (0..n).map(|_| rng.gen::<f64>() + 0.05).collect();
    let total: f64 = raw.iter().sum();
    let w_star: Vec<f64> = raw.iter().map(|x| x / total).collect();
    let group: Vec<usize> = (0..n).map(|i| i % groups).collect();
    let mut group_target = vec![0.0; groups];
    for i in 0..n {
        group_target[group[i]] += w_star[i];
    }
    let size: Vec<f64> = (0..n).map(|_| rng.gen::<f64>() * 2.0 - 1.0).collect();
    let size_target = size.iter().zip(&w_star).map(|(s, w)| s * w).sum();
    let dev = 0.5 / n as f64;
    let turnover = with_turnover.then(|| {
        let w0: Vec<f64> = {
            let r: Vec<f64> = w_star
                .iter()
                .map(|w| w * (0.8 + 0.4 * rng.gen::<f64>()))
                .collect();
            let t: f64 = r.iter().sum();
            r.iter().map(|x| x / t).collect()
        };
        let needed: f64 = w0.iter().zip(&w_star).map(|(a, b)| (a - b).abs()).sum();
        (w0, needed * 1.2)
    });
    let inst = Instance {
        alpha: (0..n).map(|_| rng.gen::<f64>() * 2.0 - 1.0).collect(),
        lower: w_star.iter().map(|w| (w - dev).max(0.0)).collect(),
        upper: w_star.iter().map(|w| w + dev).collect(),
        group,
        group_target,
        size,
        size_target,
        turnover,
    };
    (inst, w_star)
}

#[test]
fn optimizer_meets_every_constraint_on_random_instances() {
    for seed in 0..12 {
        let (inst, w_star) = feasible_instance(
            seed,
            30 + 10 * seed as usize,
            1 + seed as usize % 5,
            seed % 2 == 0,
        );
        let w = inst.solve().unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let res = inst.residuals(&w);
        assert!(res.max() <= TOLERANCE, "seed {seed}: {res:?}");
        assert!(
            (w.iter().sum::<f64>() - 1.0).abs() <= 1e-6,
            "fully invested"
        );
        assert!(w.iter().all(|&x| x >= 0.0), "long-only");
        let obj = |x: &[f64]| inst.alpha.iter().zip(x).map(|(a, b)| a * b).sum::<f64>();
        assert!(obj(&w) >= obj(&w_star) - 1e-6, "seed {seed}: not optimal");
    }
}

#[test]
fn infeasible_instances_are_clear_errors() {
    // A group whose bounds cannot reach its target: caught before the solver, named.
    let (mut inst, _) = feasible_instance(1, 20, 2, false);
    inst.group_target = vec![0.9, 0.1];
    inst.lower.fill(0.0);
    inst.upper.fill(0.05);
    match inst.solve() {
        Err(SolveError::Infeasible(m)) => assert!(m.contains("group 0"), "{m}"),
        other => panic!("{other:?}"),
    }
    // A size exposure out of reach: the solver's certificate.
    let (mut inst, _) = feasible_instance(2, 20, 2, false);
    inst.size_target = 5.0;
    assert!(matches!(inst.solve(), Err(SolveError::Infeasible(_))));
    // A turnover cap too tight to move the book to the required exposures.
    let (mut inst, _) = feasible_instance(3, 20, 2, true);
    let w0 = inst.turnover.as_ref().unwrap().0.clone();
    inst.turnover = Some((w0, 1e-4));
    let e = inst.solve().unwrap_err();
    assert!(matches!(e, SolveError::Infeasible(_)), "{e}");
    assert!(e.to_string().contains("turnover"), "{e}");
}

#[test]
fn eval_and_enhance_commands_on_a_synthetic_panel() {
    let dir = tempfile::tempdir().unwrap();
    let panel_dir = dir.path().join("panel");
    write_synth(
        &SynthConfig {
            stocks: 120,
            days: 180,
            seed: 5,
        },
        &panel_dir,
    )
    .unwrap();
    let panel = Panel::open(&panel_dir).unwrap();
    let (t_len, n) = (panel.n_dates(), panel.n_stocks());
    // The synthetic benchmark: weights sum to 1 every date, an unknown name is a clear error.
    let b = panel.benchmark_weights(BENCHMARK_NAME).unwrap();
    for t in 0..t_len {
        let s: f64 = b[t * n..(t + 1) * n].iter().map(|&x| x as f64).sum();
        assert!(close_abs(s, 1.0, 1e-5), "date {t}: {s}");
    }
    let err = panel.benchmark_weights("csi300").unwrap_err().to_string();
    assert!(err.contains(BENCHMARK_NAME), "{err}");

    // The oracle as a factor, given three ways that must agree: whole-panel npy, a span npy
    // with its first date, and the long CSV.
    let oracle = panel.oracle().unwrap().to_vec();
    let (from, to) = (40, 150);
    let mut span = oracle.clone();
    span[..from * n].fill(f32::NAN);
    span[to * n..].fill(f32::NAN);
    let full_path = dir.path().join("full.npy");
    alphanet::data::npy::write_npy(&full_path, &[t_len, n], &span).unwrap();
    let part_path = dir.path().join("part.npy");
    alphanet::data::npy::write_npy(&part_path, &[to - from, n], &span[from * n..to * n]).unwrap();
    let csv_path = dir.path().join("f.csv");
    let mut csv = String::from("code,date,factor\n");
    for t in from..to {
        for i in 0..n {
            if span[t * n + i].is_finite() {
                csv += &format!(
                    "{},{},{}\n",
                    panel.meta().codes[i],
                    panel.meta().dates[t],
                    span[t * n + i]
                );
            }
        }
    }
    std::fs::write(&csv_path, csv).unwrap();
    let specs = [
        format!("full={}", full_path.display()),
        format!("part={}@{}", part_path.display(), panel.meta().dates[from]),
        format!("csv={}", csv_path.display()),
    ];
    let loaded: Vec<Vec<f32>> = specs
        .iter()
        .map(|s| FactorSpec::parse(s).unwrap().load(&panel).unwrap())
        .collect();
    let same = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
    };
    assert!(same(&loaded[0], &span) && same(&loaded[1], &span) && same(&loaded[2], &span));
    let no_date = FactorSpec::parse(&format!("p={}", part_path.display())).unwrap();
    assert!(no_date
        .load(&panel)
        .unwrap_err()
        .to_string()
        .contains("@YYYY-MM-DD"));

    let out = dir.path().join("report");
    let evals = eval_app::run(&eval_app::EvalOptions {
        panel: panel_dir.clone(),
        factors: specs[..2]
            .iter()
            .map(|s| FactorSpec::parse(s).unwrap())
            .collect(),
        out: out.clone(),
        layers: LayerConfig::default(),
        baselines: vec![],
    })
    .unwrap();
    assert_eq!(evals[0].1.ic.mean, evals[1].1.ic.mean);
    assert!(
        evals[0].1.ic.mean > 0.05,
        "the oracle predicts: {}",
        evals[0].1.ic.mean
    );
    for f in [
        "report.md",
        "metrics.json",
        "ic_cumulative.png",
        "long_short.png",
        "groups_full.png",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("| full |") && report.contains("| part |"));
    assert!(report.contains("## Style exposure"), "{report}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let exposure = &metrics["factors"][0]["style_exposure"];
    for name in &panel.meta().style_names {
        assert!(exposure[name].as_f64().unwrap().is_finite(), "{exposure}");
    }

    // A style itself, as a factor, is fully exposed to it (Spearman 1); its negative, −1.
    let k = panel.n_styles();
    let style = |s: usize, sign: f32| -> Vec<f32> {
        (0..t_len * n)
            .map(|c| sign * panel.styles()[c * k + s])
            .collect()
    };
    let cfg = LayerConfig::default();
    let e = evaluate(panel.view(), &style(0, 1.0), &cfg).unwrap();
    assert!(e.style_exposure[0] > 0.999, "{:?}", e.style_exposure);
    let e = evaluate(panel.view(), &style(1, -1.0), &cfg).unwrap();
    assert!(e.style_exposure[1] < -0.999, "{:?}", e.style_exposure);
    assert!(e.style_exposure[0].abs() < 0.999, "{:?}", e.style_exposure);

    let out = dir.path().join("enhance");
    let r = enhance_app::run(&enhance_app::EnhanceOptions {
        panel: panel_dir,
        factor: FactorSpec::parse(&specs[0]).unwrap(),
        benchmark: None,
        out: out.clone(),
        config: EnhanceConfig::default(),
    })
    .unwrap();
    assert!(r.signal_dates.len() > 10);
    // Every rebalance after the first respects the cap unless it is listed as uncapped.
    for (k, tau) in r.turnover.iter().enumerate().skip(1) {
        assert!(
            *tau <= 0.30 + 1e-6 || r.uncapped.contains(&r.signal_dates[k]),
            "{tau}"
        );
    }
    for f in ["report.md", "metrics.json", "nav.png"] {
        assert!(out.join(f).is_file(), "{f}");
    }
}

/// The baselines straight from `features.npy` with naive formulas, for one cell (NaN when
/// undefined): what `Baseline::compute` must reproduce.
fn direct_baseline(p: &Panel, b: Baseline, t: usize, i: usize) -> f64 {
    let n = p.n_stocks();
    let f = |u: usize, k: usize| p.features()[(u * n + i) * 15 + k] as f64;
    let series = |k: usize, days: usize| -> Option<Vec<f64>> {
        if t + 1 < days {
            return None;
        }
        let v: Vec<f64> = (t + 1 - days..=t).map(|u| f(u, k)).collect();
        v.iter().all(|x| x.is_finite()).then_some(v)
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let value = match b {
        Baseline::Reversal5 | Baseline::Reversal20 => {
            let k = if b == Baseline::Reversal5 { 5 } else { 20 };
            // Only the two closes: a suspension in between does not matter.
            let (now, then) = (f(t, 2), if t >= k { f(t - k, 2) } else { f64::NAN });
            (now.is_finite() && then > 0.0).then(|| 1.0 - now / then)
        }
        Baseline::CorrCloseVolume10 => series(2, 10).zip(series(5, 10)).map(|(c, v)| {
            let (mc, mv) = (mean(&c), mean(&v));
            let cov: f64 = c.iter().zip(&v).map(|(a, b)| (a - mc) * (b - mv)).sum();
            let sc: f64 = c.iter().map(|a| (a - mc).powi(2)).sum();
            let sv: f64 = v.iter().map(|b| (b - mv).powi(2)).sum();
            -cov / (sc * sv).sqrt()
        }),
        Baseline::Turnover20 => series(7, 20).map(|u| -mean(&u)),
        Baseline::Volatility20 => series(0, 20).map(|r| {
            let m = mean(&r);
            -(r.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 20.0).sqrt()
        }),
    };
    value.unwrap_or(f64::NAN)
}

#[test]
fn baselines_equal_a_direct_computation_from_the_panel() {
    let dir = tempfile::tempdir().unwrap();
    let panel_dir = dir.path().join("panel");
    write_synth(
        &SynthConfig {
            stocks: 60,
            days: 90,
            seed: 11,
        },
        &panel_dir,
    )
    .unwrap();
    let panel = Panel::open(&panel_dir).unwrap();
    let (t_len, n) = (panel.n_dates(), panel.n_stocks());
    // The reversal reads the same adjusted close as price.npy wherever the stock traded.
    let close_field = panel.price_field("close").unwrap();
    let np = panel.meta().price_fields.len();
    for cell in 0..t_len * n {
        let c = panel.features()[cell * 15 + 2];
        if c.is_finite() {
            assert_eq!(c, panel.price()[cell * np + close_field]);
        }
    }
    for b in Baseline::ALL {
        let got = b.compute(panel.view());
        assert_eq!(got.len(), t_len * n);
        let mut defined = 0;
        for t in 0..t_len {
            for i in 0..n {
                let (g, want) = (got[t * n + i] as f64, direct_baseline(&panel, b, t, i));
                if want.is_nan() {
                    assert!(g.is_nan(), "{} at ({t}, {i}): {g}, want NaN", b.name());
                } else {
                    defined += 1;
                    assert!(
                        close_abs(g, want, 1e-5 * (1.0 + want.abs())),
                        "{} at ({t}, {i}): {g} vs {want}",
                        b.name()
                    );
                }
            }
        }
        // Most cells after the window are defined (suspensions and late listings aside).
        assert!(
            defined > (t_len - b.window()) * n / 2,
            "{}: {defined}",
            b.name()
        );
    }
    // Restriction keeps exactly the model's cells where the baseline is defined.
    let base = Baseline::Reversal5.compute(panel.view());
    let mut model = vec![f32::NAN; t_len * n];
    for (k, m) in model.iter_mut().enumerate().skip(30 * n) {
        if k % 3 != 0 {
            *m = 1.0;
        }
    }
    let (r, coverage) = restrict(&base, &model);
    for k in 0..t_len * n {
        let keep = model[k].is_finite() && base[k].is_finite();
        assert!(if keep { r[k] == base[k] } else { r[k].is_nan() });
    }
    let have = model.iter().filter(|m| m.is_finite()).count();
    let both = r.iter().filter(|x| x.is_finite()).count();
    assert!(close_abs(coverage, both as f64 / have as f64, 1e-12) && coverage > 0.8);
}

#[test]
fn eval_with_baselines_scores_them_on_the_first_factors_cells() {
    let dir = tempfile::tempdir().unwrap();
    let panel_dir = dir.path().join("panel");
    write_synth(
        &SynthConfig {
            stocks: 100,
            days: 160,
            seed: 5,
        },
        &panel_dir,
    )
    .unwrap();
    let panel = Panel::open(&panel_dir).unwrap();
    let (t_len, n) = (panel.n_dates(), panel.n_stocks());
    // The oracle from the first date (before any baseline is defined) to date 140, on two
    // thirds of the stocks.
    let mut model = panel.oracle().unwrap().to_vec();
    for (k, m) in model.iter_mut().enumerate() {
        if k >= 140 * n || k % n % 3 == 0 {
            *m = f32::NAN;
        }
    }
    let path = dir.path().join("oracle.npy");
    alphanet::data::npy::write_npy(&path, &[t_len, n], &model).unwrap();
    let spec = FactorSpec::parse(&format!("oracle={}", path.display())).unwrap();
    let opts =
        |out: &str, baselines: Vec<Baseline>, factors: Vec<FactorSpec>| eval_app::EvalOptions {
            panel: panel_dir.clone(),
            factors,
            out: dir.path().join(out),
            layers: LayerConfig::default(),
            baselines,
        };
    let evals = eval_app::run(&opts("report", Baseline::ALL.to_vec(), vec![spec.clone()])).unwrap();
    let names: Vec<&str> = evals.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "oracle",
            "reversal5",
            "reversal20",
            "corr_cv10",
            "turnover20",
            "volatility20"
        ]
    );
    // Same signal dates as the model (its span, every 10 days), and each baseline equals
    // evaluating the restricted array by hand.
    for (name, e) in &evals[1..] {
        assert_eq!(
            e.layers.signal_dates, evals[0].1.layers.signal_dates,
            "{name}"
        );
        let b = Baseline::parse(name).unwrap();
        let (restricted, _) = restrict(&b.compute(panel.view()), &model);
        let span = factor_span(&model, n).unwrap();
        let direct = evaluate_on(panel.view(), &restricted, &LayerConfig::default(), span).unwrap();
        assert_eq!(direct.ic_series, e.ic_series, "{name}");
        assert_eq!(
            direct.summary.long_short_return,
            e.summary.long_short_return
        );
    }
    let out = dir.path().join("report");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let factors = metrics["factors"].as_array().unwrap();
    assert_eq!(factors.len(), 6);
    assert_eq!(factors[0]["kind"], "factor");
    for f in &factors[1..] {
        assert_eq!(f["kind"], "baseline", "{f}");
        assert_eq!(f["restricted_to"], "oracle");
        // Below 1: the oracle has values before the baselines' windows fill.
        let cov = f["coverage"].as_f64().unwrap();
        assert!(cov > 0.7 && cov < 1.0, "{f}");
        assert!(f["formula"].as_str().unwrap().starts_with('−'));
        assert!(f["rank_ic"]["mean"].is_number());
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("## Baselines"));
    assert!(report.contains("restricted to the dates and stocks where `oracle` has a value"));
    for b in Baseline::ALL {
        assert!(
            report.contains(&format!("| {} |", b.name())),
            "{}",
            b.name()
        );
        assert!(out.join(format!("groups_{}.png", b.name())).is_file());
    }
    assert!(out.join("long_short.png").is_file() && out.join("ic_cumulative.png").is_file());

    // A subset, and the errors.
    let two = Baseline::parse_list("reversal20,volatility20").unwrap();
    assert_eq!(two, [Baseline::Reversal20, Baseline::Volatility20]);
    assert_eq!(Baseline::parse_list("all").unwrap(), Baseline::ALL);
    for (bad, says) in [
        ("rev5", "unknown baseline \"rev5\""),
        ("reversal5,reversal5", "listed twice"),
        ("", "empty list"),
    ] {
        let e = Baseline::parse_list(bad).unwrap_err().to_string();
        assert!(
            e.contains(says) && (bad == "reversal5,reversal5" || e.contains("corr_cv10")),
            "{e}"
        );
    }
    let e = eval_app::run(&opts("r2", vec![Baseline::Reversal5], vec![]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("first --factor"), "{e}");
    let clash = FactorSpec::parse(&format!("reversal5={}", path.display())).unwrap();
    let e = eval_app::run(&opts("r3", vec![Baseline::Reversal5], vec![clash]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("also a baseline"), "{e}");
    // On the command line: a bad list stops before any work, naming the valid ones.
    let o = alphanet()
        .args(["eval", "--panel"])
        .arg(&panel_dir)
        .arg("--factor")
        .arg(format!("oracle={}", path.display()))
        .arg("--out")
        .arg(dir.path().join("r4"))
        .args(["--baselines", "reversal5,momentum"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unknown baseline \"momentum\""), "{stderr}");
    assert!(!dir.path().join("r4").exists());
}
