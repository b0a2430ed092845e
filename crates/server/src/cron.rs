//! Cron expressions in a time zone, for schedules: 5 fields (`minute hour day month
//! weekday`) or 6 (seconds first), parsed and walked by `croner` (POSIX/Vixie syntax: `*`,
//! values, ranges, steps, lists, English month and weekday names, weekday 7 = Sunday; when
//! both day and weekday are restricted, a time matching either fires). Times are matched in
//! the schedule's time zone: a local time skipped by a DST change does not fire, and a
//! repeated one fires once.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};

/// A parsed cron expression.
#[derive(Debug, Clone)]
pub(crate) struct Cron(croner::Cron);

/// The names of the fields of a 5-field expression, then of a 6-field one.
const FIELDS: [&str; 5] = ["minute", "hour", "day", "month", "weekday"];
const FIELDS_WITH_SECONDS: [&str; 6] = ["second", "minute", "hour", "day", "month", "weekday"];

/// How far ahead a tick is looked for before an expression is said never to fire.
const HORIZON_DAYS: i64 = 5 * 366;

fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
}

impl Cron {
    /// Parses an expression; the error says which field is wrong and why.
    pub(crate) fn parse(expression: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = expression.split_whitespace().collect();
        let names: &[&str] = match fields.len() {
            5 => &FIELDS,
            6 => &FIELDS_WITH_SECONDS,
            n => {
                return Err(format!(
                    "a cron expression has 5 fields (minute hour day month weekday) or 6 \
                     (seconds first), got {n}"
                ));
            }
        };
        parser()
            .parse(&fields.join(" "))
            .map(Cron)
            .map_err(|error| {
                // croner's message does not name the field: the field that, replaced by `*`,
                // makes the expression parse is the wrong one.
                let wrong = (0..fields.len()).find(|&i| {
                    let mut fixed = fields.clone();
                    fixed[i] = "*";
                    parser().parse(&fixed.join(" ")).is_ok()
                });
                match wrong {
                    Some(i) => format!("{} field '{}': {error}", names[i], fields[i]),
                    None => format!("'{expression}': {error}"),
                }
            })
    }

    /// The first tick strictly after `after`, in `zone`; `None` if there is none within
    /// about five years (e.g. February 30th).
    pub(crate) fn next_after(&self, after: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        let limit = after + chrono::Duration::days(HORIZON_DAYS);
        let mut from = after.with_timezone(&zone);
        loop {
            let next = self.0.find_next_occurrence(&from, false).ok()?;
            if next.with_timezone(&Utc) > limit {
                return None;
            }
            // croner runs a time skipped by a DST change at the first instant after the gap
            // (Vixie cron's rule); a schedule here fires only at the wall-clock times it names.
            if self.0.is_time_matching(&next).ok()? {
                return Some(next.with_timezone(&Utc));
            }
            from = next;
        }
    }
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
        assert!(
            Cron::parse("60 * * * *")
                .unwrap_err()
                .contains("minute field '60'")
        );
        assert!(
            Cron::parse("0 0 * * * sat-xyz")
                .unwrap_err()
                .contains("weekday field")
        );
        assert!(Cron::parse("* * * * mon-sun/0").is_err());
        assert!(
            Cron::parse("5-1 * * * *")
                .unwrap_err()
                .contains("minute field '5-1'")
        );
        assert!(parse_zone("Mars/Olympus").is_err());
        assert!(
            Cron::parse("0 0 30 feb *")
                .unwrap()
                .next_after(Utc::now(), Tz::UTC)
                .is_none()
        );
    }
}
