//! When a schedule fires. A schedule has a [`Timing`] — a cron expression
//! read in an IANA time zone, or one moment — and a [`CatchUp`] policy for
//! firings that were due while nothing could fire them (the server down).
//! [`plan`] says, for a schedule whose stored next fire time has come,
//! which firings to make now and when the next one is.
//!
//! Wall-clock rules across daylight-saving changes: a time the clocks skip
//! (02:30 on a spring-forward night) fires at the first moment after the
//! jump; a time that occurs twice (01:30 on a fall-back night) fires once,
//! at its first occurrence — unless the schedule's last firing came after
//! that one, when the second is the next.
//!
//! Pure: no I/O and no clock; callers pass `now`.

use chrono::{DateTime, Duration, LocalResult, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("invalid cron expression `{expr}`: {reason}")]
    Cron { expr: String, reason: String },
    #[error("unknown time zone `{0}`: use an IANA name such as `Europe/Paris` or `UTC`")]
    TimeZone(String),
    #[error("give exactly one of `cron` and `at`")]
    Shape,
    #[error("`at` ({0}) is in the past")]
    Past(DateTime<Utc>),
    #[error("cron expression `{0}` never fires")]
    Never(String),
}

/// When a schedule fires.
#[derive(Clone, Debug)]
pub enum Timing {
    /// Five fields (`min hour dom month dow`) or six with seconds first,
    /// read in `zone`.
    Cron {
        expr: String,
        cron: Box<Cron>,
        zone: Tz,
    },
    /// Once.
    At(DateTime<Utc>),
}

pub use roster_core::schedule::CatchUp;

/// Most missed firings `all` makes at once; older ones are skipped.
pub const MAX_CATCH_UP: usize = 1_000;

impl Timing {
    /// A cron timing in `zone` (UTC when `None`), or a one-off time.
    pub fn parse(
        cron: Option<&str>,
        at: Option<DateTime<Utc>>,
        zone: Option<&str>,
    ) -> Result<Self, ScheduleError> {
        match (cron, at) {
            (Some(expr), None) => {
                let zone = parse_zone(zone.unwrap_or("UTC"))?;
                let parsed = Cron::new(expr.trim())
                    .with_seconds_optional()
                    .parse()
                    .map_err(|e| ScheduleError::Cron {
                        expr: expr.to_owned(),
                        reason: e.to_string(),
                    })?;
                Ok(Timing::Cron {
                    expr: expr.trim().to_owned(),
                    cron: Box::new(parsed),
                    zone,
                })
            }
            (None, Some(at)) => {
                if let Some(zone) = zone {
                    parse_zone(zone)?;
                }
                Ok(Timing::At(at))
            }
            _ => Err(ScheduleError::Shape),
        }
    }

    /// The first fire time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Timing::At(at) => (*at > after).then_some(*at),
            Timing::Cron { cron, zone, .. } => next_cron(cron, zone, after),
        }
    }

    /// The first fire time at or after `from`.
    pub fn first_from(&self, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.next_after(from - Duration::milliseconds(1))
    }

    /// The next `count` fire times after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(count);
        let mut at = after;
        while out.len() < count {
            match self.next_after(at) {
                Some(next) => {
                    out.push(next);
                    at = next;
                }
                None => break,
            }
        }
        out
    }
}

fn parse_zone(raw: &str) -> Result<Tz, ScheduleError> {
    raw.parse::<Tz>()
        .map_err(|_| ScheduleError::TimeZone(raw.to_owned()))
}

/// Croner searches wall-clock times; an ambiguous one (a fall-back hour)
/// comes back as its earlier instant, which may not be after `after` when
/// `after` is in the repeated hour: then the later instant is the answer,
/// or the search goes on from the candidate.
fn next_cron(cron: &Cron, zone: &Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut from = after.with_timezone(zone);
    for _ in 0..8 {
        let next = cron.find_next_occurrence(&from, false).ok()?;
        let next_utc = next.with_timezone(&Utc);
        if next_utc > after {
            return Some(next_utc);
        }
        if let LocalResult::Ambiguous(_, later) = zone.from_local_datetime(&next.naive_local()) {
            let later = later.with_timezone(&Utc);
            if later > after {
                return Some(later);
            }
        }
        from = next;
    }
    None
}

/// What to do for a schedule whose stored next fire time `due` has come.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Fire times to fire now, oldest first.
    pub fire: Vec<DateTime<Utc>>,
    /// Missed fire times left unfired by the catch-up policy.
    pub skipped: usize,
    /// The next fire time after these (none: a one-off that is done).
    pub next: Option<DateTime<Utc>>,
}

/// The firings due at `now` from `due` on. Fire times no older than
/// `grace` are on time and always fired; older ones were missed, and
/// `catch_up` says which of those fire.
pub fn plan(
    timing: &Timing,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
    grace: Duration,
    catch_up: CatchUp,
) -> Plan {
    let mut times = Vec::new();
    let mut at = Some(due);
    // `due` is a fire time by construction; the rest follow it.
    while let Some(t) = at.filter(|t| *t <= now) {
        times.push(t);
        // Missed times past the cap are counted, not kept.
        if times.len() > MAX_CATCH_UP * 2 {
            times.drain(..MAX_CATCH_UP);
        }
        at = timing.next_after(t);
    }
    let next = at;
    let cutoff = now - grace;
    let (missed, on_time): (Vec<_>, Vec<_>) = times.into_iter().partition(|t| *t < cutoff);
    let mut fire = match catch_up {
        CatchUp::Skip => Vec::new(),
        CatchUp::Once => missed.last().copied().into_iter().collect(),
        CatchUp::All => missed[missed.len().saturating_sub(MAX_CATCH_UP)..].to_vec(),
    };
    let skipped = missed.len() - fire.len();
    fire.extend(on_time);
    Plan {
        fire,
        skipped,
        next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn cron(expr: &str, zone: &str) -> Timing {
        Timing::parse(Some(expr), None, Some(zone))
            .unwrap_or(Timing::At(utc("2000-01-01T00:00:00Z")))
    }

    #[test]
    fn a_morning_schedule_follows_the_zone_across_dst() {
        let nine = cron("0 9 * * *", "Europe/Paris");
        // Winter: UTC+1; summer: UTC+2. 2026-03-29 is the spring change.
        let times = nine.upcoming(utc("2026-03-27T12:00:00Z"), 3);
        assert_eq!(
            times,
            [
                utc("2026-03-28T08:00:00Z"),
                utc("2026-03-29T07:00:00Z"),
                utc("2026-03-30T07:00:00Z")
            ]
        );
    }

    #[test]
    fn a_skipped_wall_time_fires_after_the_jump_and_a_repeated_one_once() {
        let half_past_two = cron("30 2 * * *", "Europe/Paris");
        // 02:30 does not exist on 2026-03-29: 03:00 local (01:00 UTC).
        assert_eq!(
            half_past_two.next_after(utc("2026-03-28T12:00:00Z")),
            Some(utc("2026-03-29T01:00:00Z"))
        );
        let half_past_two = cron("30 2 * * *", "Europe/Paris");
        // 02:30 occurs twice on 2026-10-25: fired at the first, then the next day.
        let first = half_past_two.next_after(utc("2026-10-24T12:00:00Z"));
        assert_eq!(first, Some(utc("2026-10-25T00:30:00Z")));
        let after = half_past_two.next_after(utc("2026-10-25T00:30:00Z"));
        assert_eq!(after, Some(utc("2026-10-26T01:30:00Z")));
        // Created during the repeated hour, after the first 02:30: the second.
        let created = half_past_two.next_after(utc("2026-10-25T01:10:00Z"));
        assert_eq!(created, Some(utc("2026-10-25T01:30:00Z")));
    }

    #[test]
    fn seconds_are_optional_and_bad_input_is_named() {
        let every_second = cron("* * * * * *", "UTC");
        let t = utc("2026-01-01T00:00:00Z");
        assert_eq!(
            every_second.next_after(t),
            Some(utc("2026-01-01T00:00:01Z"))
        );
        assert!(matches!(
            Timing::parse(Some("61 * * * *"), None, None),
            Err(ScheduleError::Cron { .. })
        ));
        assert_eq!(
            Timing::parse(Some("* * * * *"), None, Some("Mars/Olympus")).err(),
            Some(ScheduleError::TimeZone("Mars/Olympus".into()))
        );
        assert_eq!(
            Timing::parse(None, None, None).err(),
            Some(ScheduleError::Shape)
        );
    }

    #[test]
    fn catch_up_policies_decide_the_missed_firings() {
        let hourly = cron("0 * * * *", "UTC");
        let due = utc("2026-01-01T00:00:00Z");
        let now = utc("2026-01-01T03:00:30Z");
        let grace = Duration::seconds(60);
        let all = plan(&hourly, due, now, grace, CatchUp::All);
        assert_eq!(all.fire.len(), 4, "00, 01, 02 missed; 03 on time");
        assert_eq!(all.next, Some(utc("2026-01-01T04:00:00Z")));
        let once = plan(&hourly, due, now, grace, CatchUp::Once);
        assert_eq!(
            once.fire,
            [utc("2026-01-01T02:00:00Z"), utc("2026-01-01T03:00:00Z")]
        );
        assert_eq!(once.skipped, 2);
        let skip = plan(&hourly, due, now, grace, CatchUp::Skip);
        assert_eq!(skip.fire, [utc("2026-01-01T03:00:00Z")]);
        assert_eq!(skip.skipped, 3);
        // A one-off is done once fired.
        let once_off = Timing::At(due);
        let p = plan(&once_off, due, now, grace, CatchUp::Skip);
        assert!(p.fire.is_empty() && p.next.is_none() && p.skipped == 1);
    }
}
