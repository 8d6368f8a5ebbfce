//! The equal-weight seed ensemble.

/// Element-wise mean of the members' predictions, accumulated in f64 in member order (seed
/// index order), so the same members give the same bits however the jobs were scheduled.
/// A value that is NaN in any member (a stock with no prediction that date) stays NaN.
pub fn ensemble_mean(members: &[&[f32]]) -> Vec<f32> {
    assert!(!members.is_empty(), "ensemble_mean: no members");
    let len = members[0].len();
    assert!(
        members.iter().all(|m| m.len() == len),
        "ensemble_mean: members differ in length"
    );
    let mut sum = vec![0.0f64; len];
    for m in members {
        for (s, &v) in sum.iter_mut().zip(m.iter()) {
            *s += v as f64;
        }
    }
    let k = members.len() as f64;
    sum.into_iter().map(|s| (s / k) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_of_members_with_nan_holes() {
        let a = [1.0f32, f32::NAN, 3.0];
        let b = [2.0f32, 5.0, -3.0];
        let m = ensemble_mean(&[&a, &b]);
        assert_eq!(m[0], 1.5);
        assert!(m[1].is_nan());
        assert_eq!(m[2], 0.0);
    }
}
