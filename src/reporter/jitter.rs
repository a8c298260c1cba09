//! ±10% jitter on the poll interval, so containers started together (a
//! deployment's replicas) do not hit the DNS server in lockstep. Not
//! cryptographic: a splitmix64 sequence seeded from the clock and the pid is
//! plenty and needs no `rand` dependency.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub struct Jitter {
    state: u64,
}

impl Jitter {
    /// Seeded from the clock and the pid: replicas started in the same
    /// nanosecond still differ by pid.
    pub fn from_entropy() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Self::with_seed(nanos ^ (u64::from(std::process::id()) << 32))
    }

    pub fn with_seed(seed: u64) -> Self {
        Jitter { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        // splitmix64 (Steele, Lea, Flood 2014).
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `interval` scaled by a factor in [0.9, 1.1].
    pub fn apply(&mut self, interval: Duration) -> Duration {
        // 2001 steps from -1000 to +1000 per mille of 10%.
        let step = (self.next_u64() % 2001) as i64 - 1000;
        let nanos = interval.as_nanos().min(u128::from(u64::MAX)) as i128;
        let delta = nanos * i128::from(step) / 10_000;
        let jittered = (nanos + delta).max(0);
        Duration::from_nanos(u64::try_from(jittered).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_ten_percent() {
        let table = [
            Duration::from_secs(5),
            Duration::from_millis(500),
            Duration::from_secs(3600),
            Duration::from_nanos(10),
            Duration::ZERO,
        ];
        for seed in [0, 1, 42, u64::MAX] {
            let mut jitter = Jitter::with_seed(seed);
            for interval in table {
                let (lo, hi) = (interval * 9 / 10, interval * 11 / 10);
                let mut seen_below = false;
                let mut seen_above = false;
                for _ in 0..2000 {
                    let d = jitter.apply(interval);
                    assert!(d >= lo && d <= hi, "{d:?} outside {lo:?}..{hi:?}");
                    seen_below |= d < interval;
                    seen_above |= d > interval;
                }
                if interval >= Duration::from_millis(1) {
                    assert!(seen_below && seen_above, "{interval:?} is not jittered");
                }
            }
        }
    }

    #[test]
    fn seeds_differ() {
        let a: Vec<_> = (0..5)
            .map({
                let mut j = Jitter::with_seed(1);
                move |_| j.apply(Duration::from_secs(5))
            })
            .collect();
        let b: Vec<_> = (0..5)
            .map({
                let mut j = Jitter::with_seed(2);
                move |_| j.apply(Duration::from_secs(5))
            })
            .collect();
        assert_ne!(a, b);
    }
}
