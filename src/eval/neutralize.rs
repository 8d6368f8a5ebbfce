//! Cross-sectional neutralization of a factor (docs/evaluation.md): the OLS residual of the factor on
//! industry dummies and size, one date at a time.
//!
//! Regressing on a full set of industry dummies plus size equals (Frisch–Waugh–Lovell)
//! demeaning both the factor f and size s within each industry and then regressing the
//! demeaned f̃ on the demeaned s̃ without intercept:
//!
//! `e_i = f̃_i − β s̃_i`, `β = Σ f̃ s̃ / Σ s̃²` (β = 0 when Σ s̃² vanishes against Σ s²),
//!
//! which needs no matrix solve and is exact. The residual is orthogonal to every dummy and to
//! size, which the tests check directly.

/// Residuals of `f` on industry dummies + `size` over the stocks of one date. Entries whose
/// factor or size is not finite, or whose industry is unknown (`< 0`), are NaN and take no
/// part in the fit.
pub fn neutralize(f: &[f64], industry: &[i16], size: &[f64]) -> Vec<f64> {
    assert!(
        f.len() == industry.len() && f.len() == size.len(),
        "neutralize: length mismatch"
    );
    let ok: Vec<bool> = (0..f.len())
        .map(|i| f[i].is_finite() && size[i].is_finite() && industry[i] >= 0)
        .collect();
    let groups = industry
        .iter()
        .map(|&k| k.max(0) as usize + 1)
        .max()
        .unwrap_or(0);
    let (mut sum_f, mut sum_s, mut count) =
        (vec![0.0; groups], vec![0.0; groups], vec![0usize; groups]);
    for i in (0..f.len()).filter(|&i| ok[i]) {
        let k = industry[i] as usize;
        sum_f[k] += f[i];
        sum_s[k] += size[i];
        count[k] += 1;
    }
    let demeaned = |i: usize| {
        let k = industry[i] as usize;
        let c = count[k] as f64;
        (f[i] - sum_f[k] / c, size[i] - sum_s[k] / c)
    };
    let (mut fs, mut ss, mut s2) = (0.0, 0.0, 0.0);
    for i in (0..f.len()).filter(|&i| ok[i]) {
        let (fd, sd) = demeaned(i);
        fs += fd * sd;
        ss += sd * sd;
        s2 += size[i] * size[i];
    }
    // Size constant within every industry leaves only rounding noise in ss: no size direction.
    let beta = if ss > 1e-12 * s2 { fs / ss } else { 0.0 };
    (0..f.len())
        .map(|i| {
            if ok[i] {
                let (fd, sd) = demeaned(i);
                fd - beta * sd
            } else {
                f64::NAN
            }
        })
        .collect()
}
