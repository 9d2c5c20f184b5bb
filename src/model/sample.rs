//! Row sampling and splitting, seeded: the one place where rows are drawn, split into
//! fit and test sets or dealt into folds, for the models and for training's validation.

use arrow::array::{RecordBatch, UInt32Array};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;

use super::error::ModelError;

/// A seeded sample of at most `max` of `0..rows`, ascending; `None` when every row fits.
pub fn sample_rows(rows: usize, max: usize, seed: u64) -> Option<Vec<usize>> {
    (rows > max).then(|| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut r = sample(&mut rng, rows, max).into_vec();
        r.sort_unstable();
        r
    })
}

/// Splits row positions into (fit, test) with `test_share` of each class in test,
/// deterministically for a seed; both ascending.
pub fn stratified_split(labels: &[bool], test_share: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut fit, mut test) = (Vec::new(), Vec::new());
    for class in [false, true] {
        let mut rows: Vec<usize> = (0..labels.len()).filter(|&r| labels[r] == class).collect();
        rows.shuffle(&mut rng);
        let n_test = (rows.len() as f64 * test_share).round() as usize;
        test.extend_from_slice(&rows[..n_test]);
        fit.extend_from_slice(&rows[n_test..]);
    }
    fit.sort_unstable();
    test.sort_unstable();
    (fit, test)
}

/// The fold (`0..k`) of every row: each class shuffled with `seed` and dealt
/// round-robin, so every fold holds its share of churners.
pub fn stratified_folds(labels: &[bool], k: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut fold = vec![0usize; labels.len()];
    for class in [true, false] {
        let mut rows: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        rows.shuffle(&mut rng);
        for (j, &i) in rows.iter().enumerate() {
            fold[i] = j % k.max(1);
        }
    }
    fold
}

/// Stratified, seeded hold-out for calibration: (train rows, held-out rows), each
/// ascending. Keeps at least one row of each class for training; holds out nothing when
/// a class is too small to give one to each side.
pub fn calibration_holdout(labels: &[bool], fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_CA1B);
    let mut train = Vec::new();
    let mut held = Vec::new();
    let classes: Vec<Vec<usize>> = [true, false]
        .iter()
        .map(|&c| (0..labels.len()).filter(|&i| labels[i] == c).collect())
        .collect();
    let take: Vec<usize> = classes
        .iter()
        .map(|rows| {
            ((rows.len() as f64 * fraction).round() as usize).min(rows.len().saturating_sub(1))
        })
        .collect();
    if take.contains(&0) {
        return ((0..labels.len()).collect(), Vec::new());
    }
    for (mut rows, k) in classes.into_iter().zip(take) {
        rows.shuffle(&mut rng);
        held.extend_from_slice(&rows[..k]);
        train.extend_from_slice(&rows[k..]);
    }
    train.sort_unstable();
    held.sort_unstable();
    (train, held)
}

/// The rows at `positions` of a batch.
pub fn take_rows(batch: &RecordBatch, positions: &[usize]) -> Result<RecordBatch, ModelError> {
    let indices = UInt32Array::from_iter_values(positions.iter().map(|&p| p as u32));
    arrow::compute::take_record_batch(batch, &indices).map_err(|e| ModelError::Data(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_split_keeps_class_shares() {
        let labels: Vec<bool> = (0..1000).map(|i| i % 10 == 0).collect();
        let (fit, test) = stratified_split(&labels, 0.2, 42);
        assert_eq!(fit.len() + test.len(), 1000);
        assert_eq!(test.iter().filter(|&&r| labels[r]).count(), 20);
        assert_eq!(stratified_split(&labels, 0.2, 42), (fit, test));
    }

    #[test]
    fn folds_share_the_churners() {
        let labels: Vec<bool> = (0..1000).map(|i| i % 10 == 0).collect();
        let folds = stratified_folds(&labels, 5, 3);
        for k in 0..5 {
            let rows = (0..1000).filter(|&i| folds[i] == k);
            let churners = rows.clone().filter(|&i| labels[i]).count();
            assert_eq!((rows.count(), churners), (200, 20));
        }
    }
}
