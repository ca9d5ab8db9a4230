//! Small vector arithmetic every embedder shares: L2 normalisation and the
//! dot product that, on normalised vectors, is the cosine similarity.
//!
//! Owns only arithmetic on `f32` slices. Must never allocate more than the
//! output, nor know where vectors come from.

/// Scales `v` to unit L2 norm in place. Returns `false`, leaving `v`
/// untouched, when it cannot be normalised (zero, or not finite): such a
/// vector has no direction and must not be stored as if it had one.
pub fn l2_normalize(v: &mut [f32]) -> bool {
    // Summing in f64: 3072 squares in f32 lose digits the 1e-5 checks notice.
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if !norm.is_finite() || norm <= f64::EPSILON {
        return false;
    }
    for x in v.iter_mut() {
        *x = (f64::from(*x) / norm) as f32;
    }
    true
}

/// Dot product; the cosine similarity of two normalised vectors. Vectors of
/// different lengths are compared on their common prefix, which only a
/// caller mixing vector spaces (a bug) ever sees.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum::<f64>() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_to_unit_length() {
        let mut v = vec![3.0, 4.0];
        assert!(l2_normalize(&mut v));
        assert!((v[0] - 0.6).abs() < 1e-7 && (v[1] - 0.8).abs() < 1e-7);
        assert!((cosine(&v, &v) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn refuses_directionless_vectors() {
        let mut zero = vec![0.0; 4];
        assert!(!l2_normalize(&mut zero));
        let mut nan = vec![f32::NAN, 1.0];
        assert!(!l2_normalize(&mut nan));
    }
}
