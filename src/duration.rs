//! Durations as users write them in flags: `500ms`, `2s`, `1m`, `1h`.

use std::time::Duration;

/// Parses `500ms`, `2s`, `1.5s`, `1m`, `1h`; a bare number is seconds.
pub fn parse(input: &str) -> Result<Duration, String> {
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
    // from_secs_f64 panics past u64::MAX seconds (issue 9), and a positive
    // value below a nanosecond rounds to zero; fuzz/flag_values checks both.
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if d.is_zero() => Err(format!("`{input}` must be a positive duration")),
        Ok(d) => Ok(d),
        Err(_) => Err(format!(
            "`{input}` is too long a duration: write e.g. 500ms, 2s, 1m"
        )),
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
            "99999999999999999999s",
            "0.0000000001s",
        ] {
            assert!(parse(bad).is_err(), "{bad} should fail");
        }
    }
}
