//! Calendars as data: weekends, public holidays, and working-day swaps, year by year.
//!
//! Built-in calendars ship as TOML in `libs/sla/calendars/` (England & Wales, Scotland,
//! Northern Ireland, US federal, Australia national, mainland China; 2025-2027). Operators
//! add or override calendars with TOML files of the same form (see [`Calendars::merge_toml`]):
//! a year given in an operator file replaces that year of the built-in calendar.
//!
//! A date in a year the calendar does not list, or lists as not yet published, is an
//! [`SlaError::OutOfRange`]: never silently a plain working day.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use jiff::civil::{Date, Weekday};
use serde::Deserialize;

use crate::error::{Result, SlaError};

/// Whether a year's schedule can be relied on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum YearStatus {
    /// Published by the authority.
    Official,
    /// Expected dates, not yet confirmed; used, and named in explanations.
    Provisional,
    /// Not published: dates in this year are refused.
    NotPublished,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Year {
    status: YearStatus,
    holidays: BTreeSet<Date>,
    working_days: BTreeSet<Date>,
}

/// One calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    pub id: String,
    pub name: String,
    /// Weekend days, by `Weekday::to_monday_zero_offset`.
    weekend: BTreeSet<i8>,
    years: BTreeMap<i16, Year>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarFile {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    weekend: Option<Vec<String>>,
    #[serde(default)]
    years: Vec<YearFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YearFile {
    year: i16,
    status: YearStatus,
    #[serde(default)]
    holidays: Vec<String>,
    #[serde(default)]
    working_days: Vec<String>,
    #[serde(default)]
    #[allow(dead_code)]
    source: String,
    #[serde(default)]
    #[allow(dead_code)]
    note: String,
}

fn weekday(name: &str) -> Option<Weekday> {
    Some(match name {
        "mon" => Weekday::Monday,
        "tue" => Weekday::Tuesday,
        "wed" => Weekday::Wednesday,
        "thu" => Weekday::Thursday,
        "fri" => Weekday::Friday,
        "sat" => Weekday::Saturday,
        "sun" => Weekday::Sunday,
        _ => return None,
    })
}

impl Calendar {
    fn from_file(file: CalendarFile, origin: &str) -> Result<(Self, bool)> {
        let invalid = |reason: String| SlaError::Invalid {
            what: format!("calendar {} ({origin})", file.id),
            reason,
        };
        let mut problems = Vec::new();
        let weekend_given = file.weekend.is_some();
        let mut weekend = BTreeSet::new();
        for day in file.weekend.unwrap_or_default() {
            match weekday(&day) {
                Some(d) => {
                    weekend.insert(d.to_monday_zero_offset());
                }
                None => problems.push(format!("weekend day {day:?} is not mon..sun")),
            }
        }
        let mut years = BTreeMap::new();
        for y in file.years {
            let mut parse = |list: &[String], what: &str| {
                let mut set = BTreeSet::new();
                for text in list {
                    match text.parse::<Date>() {
                        Ok(d) if d.year() == y.year => {
                            set.insert(d);
                        }
                        Ok(d) => problems.push(format!("{what} {d} is listed under {}", y.year)),
                        Err(e) => problems.push(format!("{what} {text:?}: {e}")),
                    }
                }
                set
            };
            let holidays = parse(&y.holidays, "holiday");
            let working_days = parse(&y.working_days, "working day");
            if y.status == YearStatus::NotPublished
                && !(holidays.is_empty() && working_days.is_empty())
            {
                problems.push(format!("{} is not published yet lists dates", y.year));
            }
            if years
                .insert(
                    y.year,
                    Year {
                        status: y.status,
                        holidays,
                        working_days,
                    },
                )
                .is_some()
            {
                problems.push(format!("year {} is listed twice", y.year));
            }
        }
        if !problems.is_empty() {
            return Err(invalid(problems.join("; ")));
        }
        Ok((
            Calendar {
                name: if file.name.is_empty() {
                    file.id.clone()
                } else {
                    file.name
                },
                id: file.id,
                weekend,
                years,
            },
            weekend_given,
        ))
    }

    fn year(&self, date: Date) -> Result<&Year> {
        let out = |reason: &str| SlaError::OutOfRange {
            calendar: self.id.clone(),
            date,
            reason: reason.to_owned(),
        };
        match self.years.get(&date.year()) {
            None => Err(out("the year is not in the calendar")),
            Some(y) if y.status == YearStatus::NotPublished => {
                Err(out("the year's schedule is not published yet"))
            }
            Some(y) => Ok(y),
        }
    }

    /// Whether `date` is a working day.
    pub fn is_working_day(&self, date: Date) -> Result<bool> {
        let year = self.year(date)?;
        if year.working_days.contains(&date) {
            return Ok(true);
        }
        Ok(!year.holidays.contains(&date)
            && !self
                .weekend
                .contains(&date.weekday().to_monday_zero_offset()))
    }

    /// Whether `date` falls in a year marked provisional.
    pub fn is_provisional(&self, date: Date) -> bool {
        self.years
            .get(&date.year())
            .is_some_and(|y| y.status == YearStatus::Provisional)
    }

    /// The `n`-th working day after `start` (`start` itself not counted); `start` for 0.
    pub fn nth_working_day_after(&self, start: Date, n: u32) -> Result<Date> {
        let mut date = start;
        let mut counted = 0;
        while counted < n {
            date = date.tomorrow().map_err(|e| SlaError::OutOfRange {
                calendar: self.id.clone(),
                date,
                reason: e.to_string(),
            })?;
            if self.is_working_day(date)? {
                counted += 1;
            }
        }
        Ok(date)
    }

    /// Working days in `(from, to]`; negative when `to` is before `from`.
    pub fn working_days_between(&self, from: Date, to: Date) -> Result<i64> {
        let (a, b, sign) = if to >= from {
            (from, to, 1)
        } else {
            (to, from, -1)
        };
        let mut date = a;
        let mut count = 0;
        while date < b {
            date = date.tomorrow().map_err(|e| SlaError::Invalid {
                what: "date".into(),
                reason: e.to_string(),
            })?;
            if self.is_working_day(date)? {
                count += 1;
            }
        }
        Ok(sign * count)
    }

    /// The years the calendar can answer for, with their status.
    pub fn coverage(&self) -> Vec<(i16, YearStatus)> {
        self.years.iter().map(|(y, v)| (*y, v.status)).collect()
    }
}

/// A set of calendars by id.
#[derive(Debug, Clone, Default)]
pub struct Calendars {
    by_id: HashMap<String, Arc<Calendar>>,
}

pub(crate) const BUILT_IN: &[(&str, &str)] = &[
    ("gb-eng.toml", include_str!("../calendars/gb-eng.toml")),
    ("gb-sct.toml", include_str!("../calendars/gb-sct.toml")),
    ("gb-nir.toml", include_str!("../calendars/gb-nir.toml")),
    ("us.toml", include_str!("../calendars/us.toml")),
    ("au.toml", include_str!("../calendars/au.toml")),
    ("cn.toml", include_str!("../calendars/cn.toml")),
];

impl Calendars {
    /// The calendars shipped with the service.
    pub fn built_in() -> Self {
        let mut calendars = Calendars::default();
        for (name, text) in BUILT_IN {
            calendars
                .merge_toml(name, text)
                .unwrap_or_else(|e| panic!("built-in calendar {name} is invalid: {e}"));
        }
        calendars
    }

    /// Adds a calendar from TOML, or merges it into the one with the same id: its years
    /// replace those years, and its weekend (if given) replaces the weekend.
    pub fn merge_toml(&mut self, origin: &str, text: &str) -> Result<()> {
        let file: CalendarFile = toml::from_str(text).map_err(|e| SlaError::Invalid {
            what: format!("calendar file {origin}"),
            reason: e.to_string(),
        })?;
        let (calendar, weekend_given) = Calendar::from_file(file, origin)?;
        let merged = match self.by_id.get(&calendar.id) {
            Some(existing) => {
                let mut merged = (**existing).clone();
                if weekend_given {
                    merged.weekend = calendar.weekend;
                }
                merged.years.extend(calendar.years);
                merged
            }
            None => calendar,
        };
        self.by_id.insert(merged.id.clone(), Arc::new(merged));
        Ok(())
    }

    /// Merges every `*.toml` in `dir` (operator calendars), in name order.
    pub fn merge_dir(&mut self, dir: &std::path::Path) -> Result<()> {
        for (origin, text) in crate::files::toml_files(dir, "calendar")? {
            self.merge_toml(&origin, &text)?;
        }
        Ok(())
    }

    /// The calendar with this id.
    pub fn get(&self, id: &str) -> Result<&Arc<Calendar>> {
        self.by_id
            .get(id)
            .ok_or_else(|| SlaError::UnknownCalendar(id.to_owned()))
    }
}
