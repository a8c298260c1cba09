//! Durations as users write them in flags: `500ms`, `2s`, `1m`, `1h`, each
//! flag with a documented range (README, `--help`).

use std::time::Duration;

/// The accepted range of one duration flag. A value outside it is a usage
/// error naming the flag and the range: `--interval 1ms` would poll DNS back to
/// back, `--interval 99999999999999999999s` used to overflow into a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub flag: &'static str,
    pub min: Duration,
    pub max: Duration,
}

/// `--interval`: 100ms..1h. Below 100 ms the reporter would keep the DNS
/// server and the VM busy; above an hour a left peer would go unnoticed for
/// most of a day with `--leave-after 3`.
pub const INTERVAL: Bounds = Bounds {
    flag: "--interval",
    min: Duration::from_millis(100),
    max: Duration::from_secs(3600),
};

/// `--dns-timeout`: 10ms..60s (one attempt; a loopback server answers in
/// well under a millisecond, resolv.conf's own `timeout:` caps at 30 s).
pub const DNS_TIMEOUT: Bounds = Bounds {
    flag: "--dns-timeout",
    min: Duration::from_millis(10),
    max: Duration::from_secs(60),
};

/// `--metadata-timeout`: 10ms..60s (a metadata API is link-local; a minute
/// of waiting per request already delays the boot a lot).
pub const METADATA_TIMEOUT: Bounds = Bounds {
    flag: "--metadata-timeout",
    min: Duration::from_millis(10),
    max: Duration::from_secs(60),
};

impl Bounds {
    /// [`parse`], then the range check; the message names the flag.
    pub fn parse(&self, input: &str) -> Result<Duration, String> {
        let flag = self.flag;
        let range = format!("{}..{}", show(self.min), show(self.max));
        let secs = parse_secs(input).map_err(|e| format!("{flag}: {e} ({range})"))?;
        if secs < self.min.as_secs_f64() || secs > self.max.as_secs_f64() {
            return Err(format!(
                "{flag} `{}` is out of range: give a duration from {range}",
                input.trim()
            ));
        }
        // In range, so finite and far from Duration's limits.
        Ok(Duration::from_secs_f64(secs))
    }
}

/// Parses `500ms`, `2s`, `1.5s`, `1m`, `1h`; a bare number is seconds. Any
/// positive value that fits a `Duration`; a flag uses [`Bounds::parse`].
pub fn parse(input: &str) -> Result<Duration, String> {
    let secs = parse_secs(input)?;
    match Duration::try_from_secs_f64(secs) {
        // A positive value below a nanosecond rounds to zero (fuzz/flag_values
        // checks that a parsed duration never is).
        Ok(d) if d.is_zero() => Err(format!("`{input}` must be a positive duration")),
        Ok(d) => Ok(d),
        Err(_) => Err(format!("`{input}` is too long a duration")),
    }
}

/// The number of seconds `input` means: positive and finite, unbounded.
fn parse_secs(input: &str) -> Result<f64, String> {
    let s = input.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{input}` is not a duration: write e.g. 500ms, 2s, 1m"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "`{input}` has an unknown unit `{unit}`: use ms, s, m or h"
            ));
        }
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("`{input}` must be a positive duration"));
    }
    Ok(secs)
}

/// `100ms`, `60s`, `1h`: a bound as the user would write it.
fn show(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let ok = [
            ("500ms", 500),
            ("2s", 2000),
            ("1.5s", 1500),
            ("1m", 60_000),
            ("3", 3000),
            ("1h", 3_600_000),
        ];
        for (input, ms) in ok {
            assert_eq!(parse(input).unwrap(), Duration::from_millis(ms), "{input}");
        }
        for bad in [
            "",
            "s",
            "2x",
            "-1s",
            "0s",
            "abc",
            "1e9s",
            ".",
            "1..2s",
            "0.0000000001s",
        ] {
            assert!(parse(bad).is_err(), "{bad} should fail");
        }
        // Far past Duration::MAX: an error, not a panic.
        let e = parse("99999999999999999999999h").unwrap_err();
        assert!(e.contains("too long"), "{e}");
    }

    #[test]
    fn each_flag_has_a_range() {
        // (bounds, input, Ok(ms) or Err(substring))
        let table: [(Bounds, &str, Result<u64, &str>); 12] = [
            (INTERVAL, "100ms", Ok(100)),
            (INTERVAL, "1h", Ok(3_600_000)),
            (INTERVAL, "5s", Ok(5000)),
            (
                INTERVAL,
                "99ms",
                Err("--interval `99ms` is out of range: give a duration from 100ms..1h"),
            ),
            (INTERVAL, "1ms", Err("out of range")),
            (INTERVAL, "61m", Err("out of range")),
            (INTERVAL, "99999999999999999999s", Err("out of range")),
            (
                INTERVAL,
                "1e400",
                Err("--interval: `1e400` has an unknown unit"),
            ),
            (DNS_TIMEOUT, "10ms", Ok(10)),
            (
                DNS_TIMEOUT,
                "61s",
                Err("--dns-timeout `61s` is out of range: give a duration from 10ms..60s"),
            ),
            (METADATA_TIMEOUT, "60s", Ok(60_000)),
            (
                METADATA_TIMEOUT,
                "9ms",
                Err("--metadata-timeout `9ms` is out of range"),
            ),
        ];
        for (bounds, input, want) in table {
            match (bounds.parse(input), want) {
                (Ok(got), Ok(ms)) => assert_eq!(got, Duration::from_millis(ms), "{input}"),
                (Err(e), Err(needle)) => assert!(e.contains(needle), "{input}: {e}"),
                (got, want) => panic!("{} {input}: got {got:?}, want {want:?}", bounds.flag),
            }
        }
    }
}
