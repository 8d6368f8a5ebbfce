//! The synthetic market: determinism, magnitudes, flags, the planted alpha, and the sample
//! builders run on it.

use std::sync::OnceLock;

use alphanet::data::panel::{flags, write_panel, PanelArrays, PanelMeta, PanelView};
use alphanet::data::samples::{
    gather_pictures, gather_styles, raw_labels, spearman, SampleIndex, Universe, HORIZON,
    N_FEATURES, PICTURE_DAYS, PICTURE_LEN,
};
use alphanet::data::synth::{synth_arrays, write_synth, SynthConfig};
use rand::Rng;

/// The default market, generated once for all tests of this file.
fn default_market() -> &'static (PanelMeta, PanelArrays) {
    static M: OnceLock<(PanelMeta, PanelArrays)> = OnceLock::new();
    M.get_or_init(|| synth_arrays(&SynthConfig::default()).unwrap())
}

fn view() -> PanelView<'static> {
    let (meta, a) = default_market();
    a.view(meta)
}

const OPEN: usize = 0;
const HIGH: usize = 1;
const LOW: usize = 2;
const CLOSE: usize = 3;
const VWAP: usize = 4;

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SynthConfig {
        stocks: 30,
        days: 90,
        seed: 11,
    };
    write_synth(&cfg, &dir.path().join("a")).unwrap();
    write_synth(&cfg, &dir.path().join("b")).unwrap();
    write_synth(&SynthConfig { seed: 12, ..cfg }, &dir.path().join("c")).unwrap();
    let files = [
        "meta.json",
        "features.npy",
        "price.npy",
        "tradable.npy",
        "styles.npy",
        "industry.npy",
        "size.npy",
        "oracle.npy",
    ];
    for f in files {
        let a = std::fs::read(dir.path().join("a").join(f)).unwrap();
        let b = std::fs::read(dir.path().join("b").join(f)).unwrap();
        assert!(a == b, "{f} differs between two runs with the same seed");
    }
    for f in ["features.npy", "price.npy", "oracle.npy"] {
        let a = std::fs::read(dir.path().join("a").join(f)).unwrap();
        let c = std::fs::read(dir.path().join("c").join(f)).unwrap();
        assert!(a != c, "{f} is the same under another seed");
    }
}

#[test]
fn rejects_bad_configs() {
    for cfg in [
        SynthConfig {
            stocks: 3,
            ..Default::default()
        },
        SynthConfig {
            days: 20,
            ..Default::default()
        },
    ] {
        let err = synth_arrays(&cfg).unwrap_err().to_string();
        assert!(err.contains("--stocks") || err.contains("--days"), "{err}");
    }
}

#[test]
fn magnitudes_are_sane() {
    let (meta, a) = default_market();
    let (t_len, n) = (meta.n_dates(), meta.n_stocks());
    assert_eq!(meta.dates[0], "2016-01-04");
    assert!(meta.codes.iter().any(|c| c.starts_with("SH60")));
    assert!(meta.codes.iter().any(|c| c.starts_with("SZ000")));
    assert!(meta.codes.iter().any(|c| c.starts_with("SZ300")));
    for cell in 0..t_len * n {
        let p = &a.price[cell * 6..cell * 6 + 6];
        let f = &a.features[cell * N_FEATURES..(cell + 1) * N_FEATURES];
        let fl = a.tradable[cell];
        if fl & flags::LISTED == 0 {
            assert!(p.iter().all(|x| x.is_nan()) && f.iter().all(|x| x.is_nan()));
            assert_eq!(a.industry[cell], -1);
            continue;
        }
        // Prices may dip a little under 1 CNY on an unlucky path; anything outside this is a bug.
        assert!(p.iter().all(|&x| (0.5..1000.0).contains(&x)), "price {p:?}");
        assert!(
            p[HIGH] >= p[OPEN].max(p[CLOSE]) && p[LOW] <= p[OPEN].min(p[CLOSE]),
            "{p:?}"
        );
        assert!(p[LOW] <= p[VWAP] && p[VWAP] <= p[HIGH], "{p:?}");
        assert_eq!(
            p[5], p[CLOSE],
            "raw close = adjusted close in the synthetic market"
        );
        assert!((0..10).contains(&a.industry[cell]));
        assert!(
            a.size[cell].is_finite()
                && a.styles[cell * 3..cell * 3 + 3]
                    .iter()
                    .all(|x| x.is_finite())
        );
        if fl & flags::SUSPENDED != 0 {
            assert!(f.iter().all(|x| x.is_nan()));
            assert!(p.iter().all(|&x| x == p[0]), "suspended prices are flat");
            continue;
        }
        let (ret1, turn, free_turn) = (f[0], f[7], f[8]);
        if turn.is_finite() {
            assert!(turn > 0.0 && turn <= 100.0, "turn {turn}");
        }
        if free_turn.is_finite() && turn.is_finite() {
            assert!(
                free_turn > 0.0 && free_turn <= 100.0 && free_turn >= turn,
                "free_turn {free_turn}"
            );
        }
        if ret1.is_finite() {
            // Limit plus one tick of rounding at a price of at least 0.5.
            let limit = if fl & flags::ST != 0 { 0.05 } else { 0.10 };
            assert!(
                ret1.abs() <= limit + 0.02,
                "return {ret1} beyond the ±{limit} limit"
            );
        }
    }
}

#[test]
fn realism_flags_are_present() {
    let (meta, a) = default_market();
    let count = |bit: u8| a.tradable.iter().filter(|&&f| f & bit != 0).count();
    let cells = a.tradable.len();
    assert!(
        count(flags::SUSPENDED) > cells / 200,
        "suspended {}",
        count(flags::SUSPENDED)
    );
    assert!(count(flags::ST) > 0);
    assert!(count(flags::LIMIT_UP_OPEN) > 10);
    assert!(count(flags::LIMIT_DOWN_OPEN) > 10);
    let n = meta.n_stocks();
    let late = (0..n).filter(|&i| a.tradable[i] == 0).count();
    assert!(late > n / 30 && late < n / 5, "{late} stocks list late");
    // A limit-up open sits exactly at round(prev close × 1.1) (or 1.05 while ST).
    for t in 1..meta.n_dates() {
        for i in 0..n {
            let fl = a.tradable[t * n + i];
            if fl & flags::LIMIT_UP_OPEN != 0 && a.tradable[(t - 1) * n + i] & flags::LISTED != 0 {
                let prev = a.price[((t - 1) * n + i) * 6 + 5] as f64;
                let ratio = if fl & flags::ST != 0 { 0.05 } else { 0.10 };
                let up = alphanet::data::limits::limit_prices(prev, ratio).1;
                assert!(
                    (a.price[(t * n + i) * 6] as f64 - up).abs() < 0.006,
                    "t {t} i {i} prev {prev} open {} up {up} fl {fl}",
                    a.price[(t * n + i) * 6]
                );
            }
        }
    }
}

#[test]
fn oracle_rank_ic_is_in_the_planted_range() {
    let (meta, a) = default_market();
    let oracle = a.oracle.as_ref().unwrap();
    let idx = SampleIndex::build_for(view(), 0..meta.n_dates(), 1, Universe::Eval).unwrap();
    let n = meta.n_stocks();
    let ics: Vec<f64> = idx
        .dates
        .iter()
        .zip(&idx.per_date)
        .zip(&idx.labels_raw)
        .map(|((&t, s), y)| {
            let o: Vec<f32> = s
                .iter()
                .map(|&i| oracle[t as usize * n + i as usize])
                .collect();
            spearman(&o, y)
        })
        .collect();
    let mean = ics.iter().sum::<f64>() / ics.len() as f64;
    let reported = meta.oracle.as_ref().unwrap().rank_ic_mean;
    assert!((mean - reported).abs() < 1e-12, "{mean} vs meta {reported}");
    assert!((0.1..=0.35).contains(&mean), "oracle RankIC {mean}");
    // The oracle is NaN exactly where the label is unknown.
    let labels = raw_labels(view());
    assert!(labels
        .iter()
        .zip(oracle)
        .all(|(l, o)| l.is_finite() == o.is_finite()));
}

#[test]
fn labels_are_vwap_returns_and_z_scored_per_date() {
    let v = view();
    let idx = SampleIndex::build(v, 0..v.n_dates, 1).unwrap();
    assert!(idx.n_samples() > 100_000);
    for ((&t, s), (raw, z)) in idx
        .dates
        .iter()
        .zip(&idx.per_date)
        .zip(idx.labels_raw.iter().zip(&idx.labels_z))
    {
        let t = t as usize;
        for (k, &i) in s.iter().enumerate() {
            let i = i as usize;
            let want = v.vwap(t + HORIZON, i) as f64 / v.vwap(t + 1, i) as f64 - 1.0;
            assert!((raw[k] as f64 - want).abs() < 1e-6);
        }
        let m = z.iter().map(|&x| x as f64).sum::<f64>() / z.len() as f64;
        let sd = (z.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / z.len() as f64).sqrt();
        assert!(
            m.abs() < 1e-5 && (sd - 1.0).abs() < 1e-5,
            "date {t}: mean {m}, std {sd}"
        );
    }
}

#[test]
fn universe_rules_hold_and_nonfinite_pictures_are_counted() {
    let v = view();
    let idx = SampleIndex::build(v, 0..v.n_dates, 1).unwrap();
    let ex = &idx.excluded;
    assert!(ex.suspended > 0 && ex.limit_up_next > 0 && ex.st > 0 && ex.short_history > 0);
    assert_eq!(ex.limit_down_next, 0, "training keeps limit-down stocks");
    assert!(idx.dropped_nonfinite > 0 && idx.dropped_nonfinite == ex.nonfinite);
    let mut pic = vec![0.0f32; PICTURE_LEN];
    for (t, i) in idx.pairs() {
        let (t, i) = (t as usize, i as usize);
        let bad = flags::ST | flags::SUSPENDED;
        assert!(v.flags(t, i) & bad == 0 && v.flags(t, i) & flags::LISTED != 0);
        assert!(v.flags(t + 1, i) & (flags::SUSPENDED | flags::LIMIT_UP_OPEN) == 0);
        gather_pictures(v, &[(t as u32, i as u32)], &mut pic);
        assert!(pic.iter().all(|x| x.is_finite()));
    }
    let eval = SampleIndex::build_for(v, 0..v.n_dates, 1, Universe::Eval).unwrap();
    assert!(eval.excluded.limit_down_next > 0);
    let train: std::collections::HashSet<_> = idx.pairs().into_iter().collect();
    let kept: std::collections::HashSet<_> = eval.pairs().into_iter().collect();
    assert!(kept.is_subset(&train));
    for &(t, i) in train.difference(&kept) {
        assert!(v.flags(t as usize + 1, i as usize) & flags::LIMIT_DOWN_OPEN != 0);
    }
}

#[test]
fn flipping_a_next_day_flag_removes_exactly_that_stock() {
    let (meta, a) = default_market();
    let n = meta.n_stocks();
    let base = SampleIndex::build(a.view(meta), 100..101, 1).unwrap();
    let (t, victims) = (base.dates[0] as usize, &base.per_date[0]);
    for bit in [flags::SUSPENDED, flags::LIMIT_UP_OPEN] {
        let mut b = a.clone();
        let i = victims[3] as usize;
        b.tradable[(t + 1) * n + i] |= bit;
        let idx = SampleIndex::build(b.view(meta), 100..101, 1).unwrap();
        let mut want = victims.clone();
        want.remove(3);
        assert_eq!(idx.per_date[0], want, "flag {bit} at t+1");
    }
}

#[test]
fn gather_matches_direct_indexing() {
    let v = view();
    let mut rng = alphanet::util::rng::stream(1, "test/gather");
    let samples: Vec<(u32, u32)> = (0..64)
        .map(|_| {
            (
                rng.gen_range(29..v.n_dates) as u32,
                rng.gen_range(0..v.n_stocks) as u32,
            )
        })
        .collect();
    let mut pics = vec![0.0f32; samples.len() * PICTURE_LEN];
    gather_pictures(v, &samples, &mut pics);
    let mut styles = vec![0.0f32; samples.len() * v.n_styles];
    gather_styles(v, &samples, &mut styles);
    for (b, &(t, i)) in samples.iter().enumerate() {
        let (t, i) = (t as usize, i as usize);
        for f in 0..N_FEATURES {
            for k in 0..PICTURE_DAYS {
                let direct =
                    v.features[((t + k + 1 - PICTURE_DAYS) * v.n_stocks + i) * N_FEATURES + f];
                let got = pics[b * PICTURE_LEN + f * PICTURE_DAYS + k];
                assert_eq!(got.to_bits(), direct.to_bits(), "sample {b} f {f} k {k}");
            }
        }
        for k in 0..v.n_styles {
            assert_eq!(
                styles[b * v.n_styles + k].to_bits(),
                v.styles[(t * v.n_stocks + i) * v.n_styles + k].to_bits()
            );
        }
    }
}

#[test]
fn spearman_matches_hand_computation() {
    // Ranks a: [1, 2.5, 2.5, 4], b: [1, 3, 2, 4]; centred at 2.5:
    // Σxy = 2.25 + 0 + 0 + 2.25 = 4.5, Σx² = 4.5, Σy² = 5 → ρ = 4.5 / √22.5.
    let a = [1.0, 2.0, 2.0, 3.0];
    let b = [10.0, 30.0, 20.0, 40.0];
    assert!((spearman(&a, &b) - 4.5 / 22.5f64.sqrt()).abs() < 1e-12);
    // Non-finite pairs are left out; a constant side is undefined.
    let a2 = [1.0, f32::NAN, 2.0, 2.0, 3.0];
    let b2 = [10.0, 0.0, 30.0, 20.0, 40.0];
    assert!((spearman(&a2, &b2) - 4.5 / 22.5f64.sqrt()).abs() < 1e-12);
    assert!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_nan());
    assert!((spearman(&[3.0, 1.0, 2.0], &[30.0, 10.0, 20.0]) - 1.0).abs() < 1e-12);
    assert!((spearman(&[3.0, 1.0, 2.0], &[-30.0, -10.0, -20.0]) + 1.0).abs() < 1e-12);
}

#[test]
fn empty_sample_range_names_the_dates_and_why() {
    let v = view();
    let err = SampleIndex::build(v, 0..20, 1).unwrap_err().to_string();
    assert!(
        err.contains("2016-01-04") && err.contains("under 30 days of history"),
        "{err}"
    );
    let err = SampleIndex::build(v, 0..v.n_dates + 1, 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("outside the panel"), "{err}");
    assert!(SampleIndex::build(v, 0..10, 0).is_err());
}

#[test]
fn write_synth_refuses_existing_output() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, a) = synth_arrays(&SynthConfig {
        stocks: 10,
        days: 60,
        seed: 1,
    })
    .unwrap();
    let out = dir.path().join("p");
    write_panel(&out, &meta, &a).unwrap();
    let err = write_synth(&SynthConfig::default(), &out)
        .unwrap_err()
        .to_string();
    assert!(err.contains("already exists"), "{err}");
}
