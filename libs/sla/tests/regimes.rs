//! The worked examples of REGIMES.md, exactly as written, and the engine's rules.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use complaints_sla::*;
use jiff::civil::{date, Date};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

/// 10:00 local time on `day` in `zone`.
fn at_ten(day: Date, zone: &str) -> Timestamp {
    day.at(10, 0, 0, 0)
        .to_zoned(TimeZone::get(zone).unwrap())
        .unwrap()
        .timestamp()
}

fn due(engine: &Engine, policy: &str, clock: &str, facts: &Facts) -> Due {
    let policy = engine.policies.latest(policy).unwrap();
    let rule = policy.clocks.iter().find(|c| c.id == clock).unwrap();
    engine
        .due(policy, rule, facts)
        .unwrap()
        .expect("the clock has started")
}

fn due_date(engine: &Engine, policy: &str, clock: &str, facts: &Facts) -> Date {
    due(engine, policy, clock, facts).due_date.unwrap()
}

#[test]
fn example_1_uk_psd_over_st_patricks_day() {
    let e = Engine::built_in();
    let received = at_ten(date(2026, 1, 30), "Europe/London");
    let england = Facts::received(received, "GB-ENG");
    assert_eq!(
        due_date(&e, "UK-FCA-PSD", "final_response", &england),
        date(2026, 2, 20)
    );
    let held = Facts {
        holding_response_at: Some(at_ten(date(2026, 2, 18), "Europe/London")),
        ..england.clone()
    };
    assert_eq!(
        due_date(&e, "UK-FCA-PSD", "final_response", &held),
        date(2026, 3, 20)
    );
    let northern_ireland = Facts {
        region: "GB-NIR".into(),
        ..held
    };
    assert_eq!(
        due_date(&e, "UK-FCA-PSD", "final_response", &northern_ireland),
        date(2026, 3, 23)
    );
}

#[test]
fn example_2_uk_psd_and_disp_over_christmas() {
    let e = Engine::built_in();
    let facts = Facts::received(at_ten(date(2026, 12, 22), "Europe/London"), "GB-ENG");
    assert_eq!(
        due_date(&e, "UK-FCA-PSD", "final_response", &facts),
        date(2027, 1, 15)
    );
    assert_eq!(
        due_date(&e, "UK-FCA-DISP", "final_response", &facts),
        date(2027, 2, 16)
    );
}

#[test]
fn example_3_uk_disp_summary_resolution_over_easter() {
    let e = Engine::built_in();
    let received = at_ten(date(2026, 4, 2), "Europe/London");
    let england = due(
        &e,
        "UK-FCA-DISP",
        "summary_resolution",
        &Facts::received(received, "GB-ENG"),
    );
    assert_eq!(england.due_date, Some(date(2026, 4, 9)));
    // Close of business: 17:00 London time (BST, UTC+1).
    assert_eq!(
        england.due_at,
        "2026-04-09T16:00:00Z".parse::<Timestamp>().unwrap()
    );
    let scotland = due(
        &e,
        "UK-FCA-DISP",
        "summary_resolution",
        &Facts::received(received, "GB-SCT"),
    );
    assert_eq!(scotland.due_date, Some(date(2026, 4, 8)));
}

#[test]
fn example_4_cn_cbirc_complex_extension_and_appraisal() {
    let e = Engine::built_in();
    let tz = "Asia/Shanghai";
    let facts = Facts::received(at_ten(date(2026, 2, 5), tz), "CN");
    assert_eq!(
        due_date(&e, "CN-CBIRC", "decision", &facts),
        date(2026, 2, 20)
    );
    let complex = Facts {
        complex: true,
        ..facts.clone()
    };
    assert_eq!(
        due_date(&e, "CN-CBIRC", "decision", &complex),
        date(2026, 3, 7)
    );
    let extended = Facts {
        extensions: vec![(30, at_ten(date(2026, 3, 1), tz))],
        ..complex
    };
    let d = due(&e, "CN-CBIRC", "decision", &extended);
    assert_eq!(d.due_date, Some(date(2026, 4, 6)));
    assert!(
        d.explanation.iter().any(|l| l.contains("+30 days")),
        "{:#?}",
        d.explanation
    );
    // Ten days of external appraisal move the due date ten days, also when the pause is
    // recorded after the fact (the lab's letter came on the 19th): the explanation says
    // which period was excluded and when it was recorded.
    let appraised = Facts {
        pauses: vec![PauseFact {
            reason: "external_appraisal".into(),
            from: at_ten(date(2026, 2, 8), tz),
            until: Some(at_ten(date(2026, 2, 18), tz)),
            recorded_from: at_ten(date(2026, 2, 19), tz),
            recorded_until: Some(at_ten(date(2026, 2, 19), tz)),
        }],
        ..facts.clone()
    };
    let explained = due(&e, "CN-CBIRC", "decision", &appraised);
    let line = explained
        .explanation
        .iter()
        .find(|l| l.contains("paused for external_appraisal"))
        .unwrap_or_else(|| panic!("{:#?}", explained.explanation));
    assert!(line.contains("2026-02-08T10:00:00+08:00[Asia/Shanghai] to 2026-02-18T10:00:00+08:00[Asia/Shanghai] (not counted)"), "{line}");
    assert!(line.contains("recorded after the fact: its start on 2026-02-19T10:00:00+08:00[Asia/Shanghai], its end on 2026-02-19"), "{line}");
    assert_eq!(
        due_date(&e, "CN-CBIRC", "decision", &appraised),
        date(2026, 3, 2)
    );
    // Waiting for the customer is not a statutory pause: the date does not move.
    let waiting = Facts {
        pauses: vec![PauseFact {
            reason: "awaiting_customer".into(),
            ..appraised.pauses[0].clone()
        }],
        ..facts
    };
    assert_eq!(
        due_date(&e, "CN-CBIRC", "decision", &waiting),
        date(2026, 2, 20)
    );
}

#[test]
fn example_5_au_rg271_by_category() {
    let e = Engine::built_in();
    let facts = Facts::received(at_ten(date(2026, 1, 30), "Australia/Sydney"), "AU");
    assert_eq!(
        due_date(&e, "AU-ASIC-RG271", "final_response", &facts),
        date(2026, 3, 1)
    );
    let superannuation = Facts {
        category: "superannuation".into(),
        ..facts.clone()
    };
    assert_eq!(
        due_date(&e, "AU-ASIC-RG271", "final_response", &superannuation),
        date(2026, 3, 16)
    );
    let default_notice = Facts {
        category: "default_notice".into(),
        ..facts.clone()
    };
    assert_eq!(
        due_date(&e, "AU-ASIC-RG271", "final_response", &default_notice),
        date(2026, 2, 20)
    );
    // A variant named explicitly decides over the category.
    let named = Facts {
        category: "default_notice".into(),
        variant: "superannuation".into(),
        ..facts
    };
    assert_eq!(
        due_date(&e, "AU-ASIC-RG271", "final_response", &named),
        date(2026, 3, 16)
    );
}

#[test]
fn example_6_us_cfpb_response_and_final() {
    let e = Engine::built_in();
    let facts = Facts::received(at_ten(date(2026, 6, 1), "America/New_York"), "US");
    assert_eq!(
        due_date(&e, "US-CFPB", "response", &facts),
        date(2026, 6, 16)
    );
    assert_eq!(
        due_date(&e, "US-CFPB", "final_response", &facts),
        date(2026, 7, 31)
    );
}

#[test]
fn new_facts_restart_the_cn_clock_from_the_new_material() {
    let e = Engine::built_in();
    let tz = "Asia/Shanghai";
    let facts = Facts {
        new_facts_at: vec![at_ten(date(2026, 2, 10), tz)],
        ..Facts::received(at_ten(date(2026, 2, 5), tz), "CN")
    };
    let d = due(&e, "CN-CBIRC", "decision", &facts);
    assert_eq!(d.due_date, Some(date(2026, 2, 25)));
    assert!(d
        .explanation
        .iter()
        .any(|l| l.contains("restarted by new facts")));
}

#[test]
fn an_explanation_names_the_policy_version_calendar_and_start() {
    let e = Engine::built_in();
    let d = due(
        &e,
        "UK-FCA-PSD",
        "final_response",
        &Facts::received(at_ten(date(2026, 1, 30), "Europe/London"), "GB-NIR"),
    );
    let text = d.explanation.join("\n");
    for needle in [
        "UK-FCA-PSD v1",
        "DISP 1.6.2AR",
        "calendar GB-NIR",
        "starts when received",
        "15 business days after 2026-01-30",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    assert_eq!(
        (d.policy_version, d.calendar.as_deref()),
        (1, Some("GB-NIR"))
    );
}

#[test]
fn china_swaps_working_days_onto_weekends() {
    let cn = Calendars::built_in().get("CN").unwrap().clone();
    assert!(
        cn.is_working_day(date(2026, 2, 14)).unwrap(),
        "Saturday 14 Feb 2026 is a working day"
    );
    assert!(
        !cn.is_working_day(date(2026, 2, 16)).unwrap(),
        "Monday 16 Feb 2026 is Spring Festival"
    );
    assert!(
        !cn.is_working_day(date(2026, 2, 21)).unwrap(),
        "Saturday 21 Feb 2026 is off"
    );
    // Five working days after Friday 13 Feb 2026: Sat 14, then Tue 24 .. Fri 27.
    assert_eq!(
        cn.nth_working_day_after(date(2026, 2, 13), 5).unwrap(),
        date(2026, 2, 27)
    );
}

#[test]
fn a_date_past_a_calendars_known_years_is_an_error_not_a_working_day() {
    let calendars = Calendars::built_in();
    let cn = calendars.get("CN").unwrap();
    match cn.is_working_day(date(2027, 1, 4)) {
        Err(SlaError::OutOfRange { reason, .. }) => {
            assert!(reason.contains("not published"), "{reason}");
        }
        other => panic!("expected OutOfRange, got {other:?}"),
    }
    assert!(matches!(
        calendars
            .get("GB-ENG")
            .unwrap()
            .is_working_day(date(2028, 1, 4)),
        Err(SlaError::OutOfRange { .. })
    ));
    // A business-day clock running into an unknown year fails rather than guesses.
    let e = Engine::built_in();
    let policy = e.policies.latest("UK-FCA-PSD").unwrap();
    let facts = Facts::received(at_ten(date(2027, 12, 20), "Europe/London"), "GB-ENG");
    assert!(matches!(
        e.due(policy, &policy.clocks[0], &facts),
        Err(SlaError::OutOfRange { .. })
    ));
}

#[test]
fn operators_add_a_year_or_a_calendar_without_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cn-2027.toml"),
        "id = \"CN\"\n[[years]]\nyear = 2027\nstatus = \"provisional\"\nholidays = [\"2027-01-01\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("firm.toml"),
        "id = \"FIRM\"\nname = \"Six-day week\"\nweekend = [\"sun\"]\n[[years]]\nyear = 2026\nstatus = \"official\"\n",
    )
    .unwrap();
    let mut calendars = Calendars::built_in();
    calendars.merge_dir(dir.path()).unwrap();
    let cn = calendars.get("CN").unwrap();
    assert!(!cn.is_working_day(date(2027, 1, 1)).unwrap());
    assert!(cn.is_working_day(date(2027, 1, 4)).unwrap());
    assert!(cn.is_provisional(date(2027, 1, 4)));
    assert!(
        !cn.is_working_day(date(2026, 2, 16)).unwrap(),
        "built-in years are kept"
    );
    assert!(
        calendars
            .get("FIRM")
            .unwrap()
            .is_working_day(date(2026, 11, 28))
            .unwrap(),
        "a Saturday"
    );

    let mut bad = Calendars::built_in();
    let err = bad.merge_toml("x", "id = \"X\"\nweekend = [\"funday\"]\n[[years]]\nyear = 2026\nstatus = \"official\"\nholidays = [\"2025-01-01\", \"nope\"]\n").unwrap_err();
    let text = err.to_string();
    for needle in ["funday", "2025-01-01", "nope"] {
        assert!(text.contains(needle), "{needle:?} missing from {text}");
    }
}

#[test]
fn operators_add_policies_and_every_problem_is_reported() {
    let mut policies = Policies::built_in();
    policies
        .add_toml(
            "internal.toml",
            r#"
[[policy]]
id = "INTERNAL-CALLBACK"
version = 1
title = "Call back within 2 business days"
time_zone = "Europe/London"
default_calendar = "GB-ENG"
[[policy.clock]]
id = "callback"
title = "Call back"
starts = "received"
stops = "acknowledged"
length = { business_days = 2 }
"#,
        )
        .unwrap();
    assert!(policies.latest("INTERNAL-CALLBACK").is_ok());
    let err = policies
        .add_toml(
            "bad.toml",
            r#"
[[policy]]
id = "BAD"
version = 1
title = "t"
time_zone = "Mars/Olympus"
[[policy.clock]]
id = "c"
title = "t"
starts = "received"
stops = "answered"
length = { calendar_days = 1 }
complex_length = { minutes = 5 }
at_risk = [90, 50]
"#,
        )
        .unwrap_err()
        .to_string();
    for needle in ["Mars/Olympus", "at_risk", "mixes day and minute"] {
        assert!(err.contains(needle), "{needle:?} missing from {err}");
    }
    assert!(
        policies.latest("BAD").is_err(),
        "nothing from a bad file is loaded"
    );
}

#[test]
fn a_hotline_first_response_breaches_in_tiers() {
    let e = Engine::built_in();
    let policy = e.policies.latest("INTERNAL-HOTLINE").unwrap();
    let rule = &policy.clocks[0];
    let received: Timestamp = "2026-03-02T02:00:00Z".parse().unwrap();
    let d = e
        .due(policy, rule, &Facts::received(received, "CN"))
        .unwrap()
        .unwrap();
    assert_eq!(
        d.due_at,
        "2026-03-02T02:15:00Z".parse::<Timestamp>().unwrap()
    );
    let at = |mins: i64| {
        received
            .checked_add(SignedDuration::from_mins(mins))
            .unwrap()
    };
    assert_eq!(e.assess(rule, &d, at(5)).state, ClockState::Running);
    assert_eq!(e.assess(rule, &d, at(12)).state, ClockState::AtRisk(75));
    assert_eq!(e.assess(rule, &d, at(14)).state, ClockState::AtRisk(90));
    let tier = |mins| match e.assess(rule, &d, at(mins)).state {
        ClockState::Breached { tier, .. } => tier.unwrap(),
        other => panic!("expected a breach at {mins} min, got {other:?}"),
    };
    assert_eq!(tier(15 + 5), "over by 1-10 minutes");
    assert_eq!(tier(15 + 25), "over by 11-30 minutes");
    assert_eq!(tier(15 + 45), "over by more than 30 minutes");
    // Answered in time: met, whatever time it is now.
    let answered = Facts {
        acknowledged_at: Some(at(9)),
        ..Facts::received(received, "CN")
    };
    let d = e.due(policy, rule, &answered).unwrap().unwrap();
    assert_eq!(e.assess(rule, &d, at(600)).state, ClockState::Met);
}

#[test]
fn an_open_pause_shows_paused_and_a_window_opens_on_the_answer() {
    let e = Engine::built_in();
    let tz = "Asia/Shanghai";
    let policy = e.policies.latest("CN-CBIRC").unwrap();
    let facts = Facts {
        pauses: vec![PauseFact {
            reason: "external_testing".into(),
            from: at_ten(date(2026, 2, 8), tz),
            until: None,
            recorded_from: at_ten(date(2026, 2, 8), tz),
            recorded_until: None,
        }],
        ..Facts::received(at_ten(date(2026, 2, 5), tz), "CN")
    };
    let d = e.due(policy, &policy.clocks[0], &facts).unwrap().unwrap();
    assert_eq!(
        e.assess(&policy.clocks[0], &d, at_ten(date(2026, 2, 9), tz))
            .state,
        ClockState::Paused
    );
    assert!(
        e.due(policy, &policy.clocks[1], &facts).unwrap().is_none(),
        "the review window starts with the answer"
    );
    let answered = Facts {
        answered_at: Some(at_ten(date(2026, 2, 18), tz)),
        ..facts
    };
    let window = e
        .due(policy, &policy.clocks[1], &answered)
        .unwrap()
        .unwrap();
    assert_eq!(window.due_date, Some(date(2026, 3, 20)));
    assert_eq!(
        e.assess(&policy.clocks[1], &window, at_ten(date(2026, 3, 1), tz))
            .state,
        ClockState::WindowOpen
    );
    assert_eq!(
        e.assess(&policy.clocks[1], &window, at_ten(date(2026, 3, 21), tz))
            .state,
        ClockState::WindowClosed
    );
}

proptest! {
    /// A due date never moves earlier because something happened that the rules count
    /// for the complainant: a holding response, an extension, a pause, new facts.
    #[test]
    fn due_dates_never_move_earlier_with_more_events(
        day in 0i64..330,
        policy in prop::sample::select(vec!["UK-FCA-PSD", "UK-FCA-DISP", "CN-CBIRC", "US-CFPB", "AU-ASIC-RG271"]),
        hold in proptest::option::of(1i64..20),
        extension in proptest::option::of(1u32..40),
        pause in proptest::option::of((1i64..10, 1i64..15)),
        complex in any::<bool>(),
    ) {
        let e = Engine::built_in();
        let p = e.policies.latest(policy).unwrap();
        let region = match policy { "UK-FCA-PSD" | "UK-FCA-DISP" => "GB-ENG", "CN-CBIRC" => "CN", "US-CFPB" => "US", _ => "AU" };
        let start = date(2026, 1, 1).checked_add(jiff::Span::new().days(day)).unwrap();
        let received = at_ten(start, &p.time_zone);
        let later = |d: i64| received.checked_add(SignedDuration::from_hours(24 * d)).unwrap();
        let base = Facts::received(received, region);
        let mut more = base.clone();
        more.complex = complex;
        more.holding_response_at = hold.map(later);
        if let Some(x) = extension { more.extensions.push((x, later(2))); }
        if let Some((from, len)) = pause {
            more.pauses.push(PauseFact { reason: "external_appraisal".into(), from: later(from), until: Some(later(from + len)), recorded_from: later(from), recorded_until: Some(later(from + len)) });
        }
        for rule in p.clocks.iter().filter(|c| c.starts == Start::Received) {
            let before = e.due(p, rule, &base).unwrap().unwrap();
            let after = e.due(p, rule, &more).unwrap().unwrap();
            prop_assert!(after.due_at >= before.due_at, "{} {}: {:?} < {:?}", policy, rule.id, after.due_at, before.due_at);
        }
    }
}

#[test]
fn rule_sources_rebuild_the_same_engine_as_the_built_in_one() {
    let sources = complaints_sla::RuleSources::built_in();
    let rebuilt = sources.engine().unwrap();
    let built_in = complaints_sla::Engine::built_in();
    let mut ids = rebuilt.policies.ids();
    ids.sort();
    let mut expected = built_in.policies.ids();
    expected.sort();
    assert_eq!(ids, expected);
    for id in ids {
        assert_eq!(
            rebuilt.policies.latest(id).unwrap(),
            built_in.policies.latest(id).unwrap()
        );
    }
    // A changed text is a different rule set.
    let mut changed = sources.clone();
    changed.policies[0].text = changed.policies[0]
        .text
        .replace("version = 1", "version = 2");
    assert_ne!(changed, sources);
    assert!(changed.engine().is_ok());
}
