//! Rate profiles and the open-loop schedule of intended send times.
//!
//! A [`Profile`] is a rate over time: constant, a ramp (from → to over a
//! duration), steps (a list of rate:duration) or bursts (a base rate with a
//! peak of some length every period). [`Schedule`] turns it into the
//! *intended* send time of every record: record `i` is due when the
//! integral of the rate reaches `i`, whatever happened to record `i − 1`.
//! That is what makes the producer open-loop: a slow send does not push the
//! next one back, it shows up as send delay (wrk2's correction for
//! coordinated omission).
//!
//! After a ramp or steps end, the last rate holds; bursts repeat. Within a
//! linear segment the inverse of the integral is solved exactly (a
//! quadratic), so a ramp does not drift over millions of records.
//!
//! Boundary: pure arithmetic on seconds as `f64` (exact to well under a
//! nanosecond for runs of days); the sender adds them to its start
//! `Instant`. Cost: a few nanoseconds per record.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Why a profile spec or rate does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProfileError(String);

/// A linear piece of a profile: the rate goes from `from` to `to` (records
/// per second) over `secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// The rate at the start, records per second.
    pub from: f64,
    /// The rate at the end, records per second.
    pub to: f64,
    /// The length, seconds (positive).
    pub secs: f64,
}

impl Segment {
    /// Records the segment holds.
    fn count(&self) -> f64 {
        (self.from + self.to) / 2.0 * self.secs
    }

    /// Records due in the first `t` seconds of the segment.
    fn cumulative(&self, t: f64) -> f64 {
        let slope = (self.to - self.from) / self.secs;
        self.from * t + slope * t * t / 2.0
    }

    /// Seconds into the segment at which `k` records are due (k ≤ count).
    fn inverse(&self, k: f64) -> f64 {
        let a = (self.to - self.from) / self.secs / 2.0;
        let b = self.from;
        if k <= 0.0 {
            return 0.0;
        }
        if a.abs() < 1e-12 {
            return k / b;
        }
        // Root of a·t² + b·t − k = 0 in a form that stays exact when a is small.
        2.0 * k / (b + (b * b + 4.0 * a * k).max(0.0).sqrt())
    }
}

/// A target rate over time.
#[derive(Debug, Clone, PartialEq)]
pub enum Profile {
    /// As fast as the sender can go: intended time = actual time.
    Max,
    /// Pieces one after another; after the last, `repeat` decides.
    Segments {
        /// The pieces, in order (at least one).
        segments: Vec<Segment>,
        /// Start over after the last piece (bursts); otherwise the last
        /// piece's end rate holds.
        repeat: bool,
    },
}

impl Profile {
    /// A constant rate (records per second).
    pub fn constant(rate: f64) -> Profile {
        Profile::Segments { segments: vec![Segment { from: rate, to: rate, secs: 1.0 }], repeat: true }
    }

    /// The profile `mskbench produce --rate R --profile SPEC` asks for: the
    /// spec (bursts over `rate`), else a constant `rate`, or [`Profile::Max`]
    /// for an infinite rate (`max`).
    pub fn from_flags(rate: Option<f64>, spec: Option<&str>) -> Result<Profile, ProfileError> {
        if rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
            return Err(ProfileError("the rate must be positive (or max)".into()));
        }
        match (spec, rate) {
            (Some(spec), rate) => Profile::parse(spec, rate.filter(|r| r.is_finite())),
            (None, Some(r)) if r.is_infinite() => Ok(Profile::Max),
            (None, Some(r)) => Ok(Profile::constant(r)),
            (None, None) => Err(ProfileError("give a rate (--rate N or max) or a profile".into())),
        }
    }

    /// Parses `--profile`:
    /// `ramp:FROM:TO:DUR`, `steps:RATE:DUR,RATE:DUR,…` (a step may ramp:
    /// `FROM..TO:DUR`), or
    /// `burst:PEAK:LEN:EVERY` (bursts over `base`, the `--rate`).
    /// Durations take `ms`, `s`, `m` or `h` suffixes.
    pub fn parse(spec: &str, base: Option<f64>) -> Result<Profile, ProfileError> {
        let err = |msg: &str| ProfileError(format!("--profile {spec:?}: {msg}"));
        let (kind, rest) = spec.split_once(':').ok_or_else(|| err("expected ramp:…, steps:… or burst:…"))?;
        let rate = |s: &str| parse_rate(s).map_err(|e| err(&e.0));
        let secs = |s: &str| parse_duration(s).map(|d| d.as_secs_f64()).map_err(|e| err(&e.0));
        let profile = match kind {
            "ramp" => {
                let parts: Vec<&str> = rest.split(':').collect();
                let [from, to, dur] = parts[..] else { return Err(err("expected ramp:FROM:TO:DURATION")) };
                let seg = Segment { from: rate(from)?, to: rate(to)?, secs: secs(dur)? };
                let hold = Segment { from: seg.to, to: seg.to, secs: 1.0 };
                Profile::Segments { segments: vec![seg, hold], repeat: false }
            }
            "steps" => {
                // Each step holds a rate, or ramps linearly with FROM..TO.
                let mut segments = Vec::new();
                for step in rest.split(',') {
                    let (r, d) = step.split_once(':').ok_or_else(|| err("expected steps:RATE:DURATION,…"))?;
                    let (from, to) = match r.split_once("..") {
                        Some((from, to)) => (rate(from)?, rate(to)?),
                        None => (rate(r)?, rate(r)?),
                    };
                    segments.push(Segment { from, to, secs: secs(d)? });
                }
                let last = segments.last().map_or(0.0, |s| s.to);
                segments.push(Segment { from: last, to: last, secs: 1.0 });
                Profile::Segments { segments, repeat: false }
            }
            "burst" => {
                let parts: Vec<&str> = rest.split(':').collect();
                let [peak, len, every] = parts[..] else { return Err(err("expected burst:PEAK:LENGTH:EVERY")) };
                let base = base.ok_or_else(|| err("bursts need --rate as the base rate"))?;
                let (peak, len, every) = (rate(peak)?, secs(len)?, secs(every)?);
                if len >= every {
                    return Err(err("the burst must be shorter than its period"));
                }
                Profile::Segments {
                    segments: vec![
                        Segment { from: base, to: base, secs: every - len },
                        Segment { from: peak, to: peak, secs: len },
                    ],
                    repeat: true,
                }
            }
            _ => return Err(err("unknown profile kind (ramp, steps or burst)")),
        };
        if let Profile::Segments { segments, .. } = &profile
            && (segments.iter().all(|s| s.count() <= 0.0) || segments.iter().any(|s| s.secs <= 0.0))
        {
            return Err(err("the profile never sends (all rates zero, or a zero duration)"));
        }
        Ok(profile)
    }

    /// Records due in the first `t` seconds.
    pub fn cumulative(&self, t: f64) -> f64 {
        let Profile::Segments { segments, repeat } = self else { return 0.0 };
        let (mut start, mut done) = (0.0, 0.0);
        let mut i = 0;
        loop {
            let seg = &segments[i];
            let last = i + 1 == segments.len();
            if t < start + seg.secs || (last && !repeat) {
                return done + seg.cumulative(t - start);
            }
            start += seg.secs;
            done += seg.count();
            i = if last { 0 } else { i + 1 };
        }
    }

    /// The records the profile ever sends, when its rate falls to zero and
    /// stays there (a ramp or steps ending at 0): record `i` is due when
    /// the integral of the rate reaches `i`, so those are records 0 to the
    /// whole part of the integral. `None` when it sends forever (its last
    /// rate holds above zero, it repeats, or `max`).
    pub fn total_records(&self) -> Option<u64> {
        let Profile::Segments { segments, repeat: false } = self else { return None };
        let last = segments.last()?;
        let integral: f64 = segments.iter().map(Segment::count).sum();
        // Saturates for integrals beyond u64 (a count cannot exceed it anyway).
        (last.from <= 0.0 && last.to <= 0.0).then(|| (integral.floor() as u64).saturating_add(1))
    }

    /// The profile with every rate multiplied by `factor` (positive):
    /// a worker's share of a fleet's profile. `max` stays `max`.
    pub fn scaled(&self, factor: f64) -> Profile {
        match self {
            Profile::Max => Profile::Max,
            Profile::Segments { segments, repeat } => Profile::Segments {
                segments: segments
                    .iter()
                    .map(|s| Segment { from: s.from * factor, to: s.to * factor, secs: s.secs })
                    .collect(),
                repeat: *repeat,
            },
        }
    }

    /// The average target rate between `t0` and `t1` seconds.
    pub fn average_rate(&self, t0: f64, t1: f64) -> f64 {
        if t1 <= t0 { 0.0 } else { (self.cumulative(t1) - self.cumulative(t0)) / (t1 - t0) }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Profile::Max => f.write_str("max"),
            Profile::Segments { segments, repeat } => {
                for (i, s) in segments.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if s.from == s.to {
                        write!(f, "{}/s for {}s", s.from, s.secs)?;
                    } else {
                        write!(f, "{}→{}/s over {}s", s.from, s.to, s.secs)?;
                    }
                }
                f.write_str(if *repeat { " (repeating)" } else { " (last rate holds)" })
            }
        }
    }
}

/// Intended send times, record after record.
#[derive(Debug, Clone)]
pub struct Schedule {
    profile: Profile,
    segment: usize,
    /// Start of the current segment, seconds.
    seg_start: f64,
    /// Records due before the current segment.
    seg_done: f64,
    next: u64,
}

impl Schedule {
    /// The schedule of `profile`, from its time zero.
    pub fn new(profile: Profile) -> Schedule {
        Schedule { profile, segment: 0, seg_start: 0.0, seg_done: 0.0, next: 0 }
    }

    /// The profile it follows.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// When the next record is due ([`Due`]).
    pub fn next_due(&mut self) -> Due {
        let Profile::Segments { segments, repeat } = &self.profile else { return Due::Now };
        let k = self.next as f64;
        self.next += 1;
        loop {
            let seg = &segments[self.segment];
            let last = self.segment + 1 == segments.len();
            if k < self.seg_done + seg.count() || (last && !repeat) {
                // Past the end of a last piece whose rate is 0, the integral
                // never reaches `k`: the root is infinite.
                let at = self.seg_start + seg.inverse(k - self.seg_done);
                return if at.is_finite() { Due::At(at) } else { Due::Never };
            }
            self.seg_start += seg.secs;
            self.seg_done += seg.count();
            self.segment = if last { 0 } else { self.segment + 1 };
        }
    }
}

/// When a record of a [`Schedule`] is due.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Due {
    /// As soon as it can be sent: [`Profile::Max`].
    Now,
    /// This many seconds after the start (finite, not negative).
    At(f64),
    /// Never: a profile whose rate fell to 0 has sent all it ever sends
    /// ([`Profile::total_records`]).
    Never,
}

impl Due {
    /// The time it is due, when it is due at a time.
    pub fn at(self) -> Option<f64> {
        match self {
            Due::At(t) => Some(t),
            Due::Now | Due::Never => None,
        }
    }
}

/// Parses a rate: a number of records per second, or `max`.
pub fn parse_rate(text: &str) -> Result<f64, ProfileError> {
    if text == "max" {
        return Ok(f64::INFINITY);
    }
    mskbench_core::quota::parse_records_per_sec(text)
        .ok_or_else(|| ProfileError(format!("{text:?} is not a rate (records per second, e.g. 5000, 20k or max)")))
}

/// Parses a duration: a number with `ms`, `s`, `m` or `h` (seconds without).
pub fn parse_duration(text: &str) -> Result<Duration, ProfileError> {
    let bad = || ProfileError(format!("{text:?} is not a duration (e.g. 500ms, 30s, 5m, 1h)"));
    let (num, unit) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = text.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (text, 1.0)
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    Duration::try_from_secs_f64(v * unit).map_err(|_| bad())
}

/// A `--duration`/`--warmup` value for clap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = ProfileError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(HumanDuration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(profile: Profile, n: usize) -> Vec<f64> {
        let mut s = Schedule::new(profile);
        (0..n).map(|_| s.next_due().at().unwrap()).collect()
    }

    #[test]
    fn a_profile_falling_to_zero_has_a_total_and_then_no_due_time() {
        let p = Profile::parse("ramp:10:0:1s", None).unwrap();
        assert_eq!(p.total_records(), Some(6), "records 0..=5: the integral reaches 5 at t = 1 s");
        let mut s = Schedule::new(p);
        let due: Vec<Due> = (0..8).map(|_| s.next_due()).collect();
        assert!(due[..6].iter().all(|d| d.at().is_some_and(|t| t <= 1.0)), "{due:?}");
        assert_eq!(due[6..], [Due::Never, Due::Never], "after the sixth record none is ever due");
        assert_eq!(Schedule::new(Profile::Max).next_due(), Due::Now);
        assert_eq!(Profile::parse("steps:100:1s,0:1s", None).unwrap().total_records(), Some(101));
        assert_eq!(Profile::parse("ramp:0:10:1s", None).unwrap().total_records(), None);
        assert_eq!(Profile::constant(5.0).total_records(), None);
        assert_eq!(Profile::Max.total_records(), None);
    }

    #[test]
    fn constant_rate_spaces_records_evenly() {
        let t = times(Profile::constant(1000.0), 5001);
        assert_eq!(t[0], 0.0);
        assert!((t[1000] - 1.0).abs() < 1e-9);
        assert!((t[5000] - 5.0).abs() < 1e-9);
    }

    #[test]
    fn ramp_integrates_exactly() {
        // 0 → 1000/s over 10 s holds 5000 records; then 1000/s.
        let p = Profile::parse("ramp:0:1000:10s", None).unwrap();
        let t = times(p.clone(), 7001);
        assert!((t[5000] - 10.0).abs() < 1e-6, "{}", t[5000]);
        assert!((t[7000] - 12.0).abs() < 1e-6, "{}", t[7000]);
        // Halfway in time, a quarter of the records.
        assert!((t[1250] - 5.0).abs() < 1e-6, "{}", t[1250]);
        assert!((p.cumulative(5.0) - 1250.0).abs() < 1e-6);
        for w in t.windows(2) {
            assert!(w[1] > w[0]);
        }
    }

    #[test]
    fn steps_and_bursts() {
        let p = Profile::parse("steps:100:1s,1000:2s", None).unwrap();
        let t = times(p.clone(), 2200);
        assert!((t[100] - 1.0).abs() < 1e-9);
        assert!((t[2100] - 3.0).abs() < 1e-9);
        assert!((t[2199] - 3.099).abs() < 1e-9, "last rate holds: {}", t[2199]);
        assert!((p.average_rate(0.0, 3.0) - 700.0).abs() < 1e-9);

        // A step may ramp: 500/s for 2 s, then 1,000 → 3,000/s over 2 s.
        let r = Profile::parse("steps:500:2s,1000..3000:2s", None).unwrap();
        assert!((r.cumulative(2.0) - 1000.0).abs() < 1e-6);
        assert!((r.cumulative(4.0) - 5000.0).abs() < 1e-6);
        assert!(Profile::parse("steps:0..10:1s", None).is_ok(), "a ramp may start from zero");
        assert!(Profile::parse("steps:0..0:1s", None).is_err());

        let b = Profile::parse("burst:10000:1s:10s", Some(100.0)).unwrap();
        // Each 10 s period: 900 at base then 10,000 in the burst.
        assert!((b.cumulative(10.0) - 10_900.0).abs() < 1e-6);
        assert!((b.cumulative(20.0) - 21_800.0).abs() < 1e-6);
        let t = times(b, 11_000);
        assert!((t[900] - 9.0).abs() < 1e-9);
        assert!((t[10_900] - 10.0).abs() < 1e-9);
    }

    #[test]
    fn flags_make_a_profile() {
        assert_eq!(Profile::from_flags(Some(500.0), None), Ok(Profile::constant(500.0)));
        assert_eq!(Profile::from_flags(Some(f64::INFINITY), None), Ok(Profile::Max));
        let burst = Profile::from_flags(Some(100.0), Some("burst:10000:1s:10s")).unwrap();
        assert_eq!(burst, Profile::parse("burst:10000:1s:10s", Some(100.0)).unwrap(), "the rate is the base");
        assert!(Profile::from_flags(Some(f64::INFINITY), Some("burst:10:1s:10s")).is_err(), "max is no base");
        assert!(Profile::from_flags(Some(0.0), None).unwrap_err().to_string().contains("positive"));
        assert!(Profile::from_flags(None, None).is_err());
    }

    #[test]
    fn bad_specs_are_refused() {
        assert!(Profile::parse("ramp:1:2", None).is_err());
        assert!(Profile::parse("burst:10:1s:10s", None).is_err());
        assert!(Profile::parse("burst:10:10s:1s", Some(1.0)).is_err());
        assert!(Profile::parse("steps:0:1s", None).is_err());
        assert!(Profile::parse("wave:1", None).is_err());
        assert_eq!(parse_rate("20k").unwrap(), 20_000.0);
        assert!(parse_rate("-1").is_err());
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    }
}
