//! Cron expressions in a time zone, for schedules: 5 fields (`minute hour day month
//! weekday`) or 6 (seconds first). Each field is `*`, a value, a range `a-b`, a step `*/n` or
//! `a-b/n`, or a comma-separated list of those; months and weekdays also take English
//! three-letter names, and weekday 7 is Sunday like 0. When both day and weekday are
//! restricted, a time matching either fires (as in Vixie cron). Times are matched in the
//! schedule's time zone: a local time skipped by a DST change does not fire, and a repeated
//! one fires once.

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;

/// A parsed cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cron {
    seconds: Vec<bool>,
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    weekdays: Vec<bool>,
    days_restricted: bool,
    weekdays_restricted: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl Cron {
    /// Parses an expression; the error says which field is wrong and why.
    pub(crate) fn parse(expression: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = expression.split_whitespace().collect();
        let (seconds, rest) = match fields.len() {
            5 => ("0", &fields[..]),
            6 => (fields[0], &fields[1..]),
            n => {
                return Err(format!(
                    "a cron expression has 5 fields (minute hour day month weekday) or 6 \
                     (seconds first), got {n}"
                ));
            }
        };
        let mut weekdays = field("weekday", rest[4], 0, 7, &WEEKDAYS)?;
        if weekdays[7] {
            weekdays[0] = true;
        }
        weekdays.truncate(7);
        Ok(Cron {
            seconds: field("second", seconds, 0, 59, &[])?,
            minutes: field("minute", rest[0], 0, 59, &[])?,
            hours: field("hour", rest[1], 0, 23, &[])?,
            days: field("day", rest[2], 1, 31, &[])?,
            months: field("month", rest[3], 1, 12, &MONTHS)?,
            weekdays,
            days_restricted: rest[2] != "*",
            weekdays_restricted: rest[4] != "*",
        })
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let day = self.days[date.day() as usize];
        let weekday = self.weekdays[date.weekday().num_days_from_sunday() as usize];
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => day || weekday,
            (true, false) => day,
            (false, true) => weekday,
            (false, false) => true,
        }
    }

    /// The first tick strictly after `after`, in `zone`; `None` if there is none within
    /// about five years (e.g. February 30th).
    pub(crate) fn next_after(&self, after: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&zone).naive_local();
        let mut t = local.with_nanosecond(0)? + Duration::seconds(1);
        let limit = local + Duration::days(5 * 366);
        while t <= limit {
            if !self.months[t.month() as usize] {
                let (year, month) = if t.month() == 12 {
                    (t.year() + 1, 1)
                } else {
                    (t.year(), t.month() + 1)
                };
                t = NaiveDate::from_ymd_opt(year, month, 1)?.and_hms_opt(0, 0, 0)?;
                continue;
            }
            if !self.day_matches(t.date()) {
                t = start_of_day(t.date().succ_opt()?)?;
                continue;
            }
            if !self.hours[t.hour() as usize] {
                t = t.with_minute(0)?.with_second(0)? + Duration::hours(1);
                continue;
            }
            if !self.minutes[t.minute() as usize] {
                t = t.with_second(0)? + Duration::minutes(1);
                continue;
            }
            if !self.seconds[t.second() as usize] {
                t += Duration::seconds(1);
                continue;
            }
            match zone.from_local_datetime(&t) {
                LocalResult::Single(time) | LocalResult::Ambiguous(time, _) => {
                    let time = time.with_timezone(&Utc);
                    if time > after {
                        return Some(time);
                    }
                }
                // Skipped by a DST change: no tick.
                LocalResult::None => {}
            }
            t += Duration::seconds(1);
        }
        None
    }
}

fn start_of_day(date: NaiveDate) -> Option<NaiveDateTime> {
    date.and_hms_opt(0, 0, 0)
}

/// Parses one field into a table of allowed values (`min..=max`, indexed by value).
fn field(name: &str, text: &str, min: u32, max: u32, names: &[&str]) -> Result<Vec<bool>, String> {
    let mut allowed = vec![false; max as usize + 1];
    let value = |part: &str| -> Result<u32, String> {
        let lower = part.to_ascii_lowercase();
        let offset = if name == "month" { 1 } else { 0 };
        if let Some(index) = names.iter().position(|n| *n == lower) {
            return Ok(index as u32 + offset);
        }
        let number: u32 = part
            .parse()
            .map_err(|_| format!("{name} field: '{part}' is not a number"))?;
        if !(min..=max).contains(&number) {
            return Err(format!("{name} field: {number} is outside {min}-{max}"));
        }
        Ok(number)
    };
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                    format!("{name} field: step '{step}' must be a positive number")
                })?;
                (range, step)
            }
            None => (item, 1),
        };
        let (start, end) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let single = value(range)?;
            // `5/15` means from 5 to the end, every 15.
            (single, if item.contains('/') { max } else { single })
        };
        if start > end {
            return Err(format!("{name} field: range {start}-{end} is reversed"));
        }
        let mut v = start;
        while v <= end {
            allowed[v as usize] = true;
            v += step;
        }
    }
    Ok(allowed)
}

/// Parses an IANA time zone name.
pub(crate) fn parse_zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        format!("unknown time zone '{name}'; use an IANA name such as UTC or Europe/Paris")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn next(cron: &str, zone: &str, after: &str) -> String {
        Cron::parse(cron)
            .unwrap()
            .next_after(utc(after), parse_zone(zone).unwrap())
            .unwrap()
            .to_rfc3339()
    }

    #[test]
    fn the_next_tick_follows_each_field() {
        assert_eq!(
            next("*/15 * * * *", "UTC", "2026-03-01T10:07:30Z"),
            "2026-03-01T10:15:00+00:00"
        );
        assert_eq!(
            next("* * * * * *", "UTC", "2026-03-01T10:07:30Z"),
            "2026-03-01T10:07:31+00:00"
        );
        assert_eq!(
            next("0 9 * * MON-FRI", "UTC", "2026-11-27T09:00:00Z"),
            "2026-11-30T09:00:00+00:00"
        );
        assert_eq!(
            next("30 2 1 jan *", "UTC", "2026-05-05T00:00:00Z"),
            "2027-01-01T02:30:00+00:00"
        );
        assert_eq!(
            next("0 0 * * 7", "UTC", "2026-11-28T12:00:00Z"),
            "2026-11-29T00:00:00+00:00"
        );
        // Day or weekday when both are restricted: the 1st, or any Monday.
        assert_eq!(
            next("0 0 1 * mon", "UTC", "2026-11-28T00:00:00Z"),
            "2026-11-30T00:00:00+00:00"
        );
    }

    #[test]
    fn ticks_are_local_to_the_zone_across_dst() {
        // 09:00 in Paris is 08:00 UTC in winter and 07:00 UTC in summer.
        assert_eq!(
            next("0 9 * * *", "Europe/Paris", "2026-01-10T12:00:00Z"),
            "2026-01-11T08:00:00+00:00"
        );
        assert_eq!(
            next("0 9 * * *", "Europe/Paris", "2026-07-10T12:00:00Z"),
            "2026-07-11T07:00:00+00:00"
        );
        // 02:30 does not exist in Paris on 2026-03-29: that day has no tick.
        assert_eq!(
            next("30 2 * * *", "Europe/Paris", "2026-03-28T12:00:00Z"),
            "2026-03-30T00:30:00+00:00"
        );
        // 02:30 happens twice on 2026-10-25: it fires once, at the first.
        assert_eq!(
            next("30 2 * * *", "Europe/Paris", "2026-10-24T12:00:00Z"),
            "2026-10-25T00:30:00+00:00"
        );
        assert_eq!(
            next("30 2 * * *", "Europe/Paris", "2026-10-25T00:30:00Z"),
            "2026-10-26T01:30:00+00:00"
        );
    }

    #[test]
    fn bad_expressions_and_zones_are_explained() {
        assert!(Cron::parse("* * *").unwrap_err().contains("5 fields"));
        assert!(Cron::parse("60 * * * *").unwrap_err().contains("minute"));
        assert!(Cron::parse("* * * * mon-sun/0").is_err());
        assert!(Cron::parse("5-1 * * * *").unwrap_err().contains("reversed"));
        assert!(parse_zone("Mars/Olympus").is_err());
        assert!(
            Cron::parse("0 0 30 feb *")
                .unwrap()
                .next_after(Utc::now(), Tz::UTC)
                .is_none()
        );
    }
}
