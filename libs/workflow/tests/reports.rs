//! Regulatory returns and analysis from a synthetic half-year, every figure computed by
//! hand (in the comments) before it was computed by the code.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use complaints_domain::model::*;
use complaints_domain::{Command, Effective, Register, Rules};
use complaints_events::stored::{sla_stream, Crossing};
use complaints_projections::reports::{Case, Reports};
use complaints_projections::Projection;
use complaints_sla::Engine;
use complaints_workflow::reports::{
    repeats, Cell, Dimension, LoadedMapping, Period, RepeatRule, Report, ReportError, ReportKind,
    ReportRequest, Reporter,
};
use complaints_workflow::{sla, CommandRequest, Principal, Workflow};
use eventlog::{EventLog, ExpectedVersion, ManualClock, NewEvent, Timestamp as LogTime};
use eventlog_sled::{SledConfig, SledEventLog};
use jiff::Timestamp;
use uuid::Uuid;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const MAPPING: &str = r#"
[asic]
date_format = "%d/%m/%Y"
[asic.channel]
web = "WEB"
hotline = "PHONE"
[asic.product]
"credit card" = "CRED-CC"
[asic.issue]
fees = "FEES"
service = "SERV"
[asic.outcome]
upheld = "FAVOUR-COMPLAINANT"
partly_upheld = "PARTIAL"
rejected = "FAVOUR-FIRM"
withdrawn = "WITHDRAWN"

[fca.product]
"current account" = "Banking and credit cards: Current accounts"
mortgage = "Home finance: Other regulated home finance"
[fca.cause]
fees = "Terms and disputed sums/charges"
service = "General admin/customer service"
arrears = "Arrears related"

[nfra.business]
"credit card" = "银行卡"
[nfra.cause]
fees = "定价收费"
[nfra.province]
beijing-branch = "北京"
shanghai-branch = "上海"
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    log: Arc<SledEventLog>,
    clock: Arc<ManualClock>,
    workflow: Workflow,
    reports: Arc<Reports>,
}

fn principal() -> Principal {
    Principal {
        id: "user:t".into(),
        roles: BTreeSet::from([Role::Intake, Role::Handler, Role::Supervisor]),
    }
}

fn id(n: u128) -> ComplaintId {
    ComplaintId::new(Uuid::from_u128(n))
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(LogTime::from_micros(
            t("2025-11-01T00:00:00Z").as_microsecond(),
        )));
        let log = Arc::new(
            SledEventLog::open_with_clock(SledConfig::new(dir.path().join("log")), clock.clone())
                .unwrap(),
        );
        let engine = Arc::new(Engine::built_in());
        let workflow = Workflow::new(log.clone(), clock.clone(), Rules::default())
            .with_regimes(sla::regimes(&engine));
        let (reports, _task) = complaints_projections::spawn(Reports::default(), log.clone());
        Self {
            _dir: dir,
            log,
            clock,
            workflow,
            reports,
        }
    }

    /// Sets the clock (the recorded time) to `at`.
    fn at(&self, at: &str) {
        self.clock.set(LogTime::from_micros(t(at).as_microsecond()));
    }

    /// Runs `command` recorded now, happened at `effective` if given.
    async fn run(&self, complaint: ComplaintId, command: Command, effective: Option<&str>) {
        self.workflow
            .execute(CommandRequest {
                effective: effective.map(|e| Effective {
                    at: t(e),
                    reason: Some("recorded late".into()),
                }),
                complaint,
                command,
                request_id: Uuid::new_v4(),
                expected_version: None,
                principal: principal(),
            })
            .await
            .unwrap();
    }

    /// Registers, recorded at the receipt time, and assigns to its unit.
    async fn register(&self, r: Register) {
        self.at(&r.received_at.to_string());
        let (id, unit) = (r.id, r.unit.clone());
        self.run(id, Command::Register(Box::new(r)), None).await;
        let handler = format!("h-{unit}");
        self.run(id, Command::Assign { unit, handler }, None).await;
    }

    /// Answers at `at` (recorded then).
    async fn answer(&self, c: ComplaintId, at: &str, decision: Decision, redress: Vec<Redress>) {
        self.at(at);
        self.run(
            c,
            Command::Answer {
                decision,
                redress,
                delivery: DeliveryMethod::Letter,
                summary: "s".into(),
            },
            None,
        )
        .await;
    }

    async fn step(&self, c: ComplaintId, at: &str, command: Command) {
        self.at(at);
        self.run(c, command, None).await;
    }

    /// Records a breach of `clock` at `at`, as the SLA watcher would.
    async fn breach(&self, c: ComplaintId, at: &str) {
        self.at(at);
        let crossing = Crossing {
            id: c,
            policy: "CN-CBIRC".into(),
            policy_version: 1,
            clock: "decision".into(),
            threshold: 100,
            at: t(at),
            due_at: t(at),
            refer_to: None,
        };
        self.log
            .append(
                &sla_stream(c),
                ExpectedVersion::Any,
                vec![NewEvent::new(
                    crossing.event_type(),
                    "sla",
                    crossing.encode(),
                )],
            )
            .await
            .unwrap();
    }

    /// `kind` for `period` (in the regulator's zone), as the clock stands now.
    async fn report(
        &self,
        kind: ReportKind,
        period: &str,
        mapping: &str,
    ) -> Result<Report, ReportError> {
        let now =
            Timestamp::from_microsecond(eventlog::Clock::now(&*self.clock).as_micros()).unwrap();
        let request = ReportRequest {
            kind,
            period: Period::parse(period, kind.default_time_zone()).unwrap(),
            by: Dimension::Unit,
            repeat: RepeatRule::default(),
        };
        self.compute(&request, mapping, now).await
    }

    /// A report without a mapping (measures, root causes) asked for on 5 July 2026.
    async fn analysis(
        &self,
        kind: ReportKind,
        period: &str,
        zone: &str,
        by: Dimension,
        repeat: RepeatRule,
    ) -> Report {
        let request = ReportRequest {
            kind,
            period: Period::parse(period, zone).unwrap(),
            by,
            repeat,
        };
        self.compute(&request, "", t("2026-07-05T00:00:00Z"))
            .await
            .unwrap()
    }

    async fn compute(
        &self,
        request: &ReportRequest,
        mapping: &str,
        now: Timestamp,
    ) -> Result<Report, ReportError> {
        let mapping = LoadedMapping::parse(mapping, "mapping.toml").unwrap();
        Reporter {
            log: &*self.log,
            reports: &self.reports,
            mapping: &mapping,
            signer: None,
            now,
        }
        .report(request)
        .await
    }
}

fn reg(
    n: u128,
    regime: &str,
    region: &str,
    received: &str,
    product: &str,
    category: &str,
    unit: &str,
) -> Register {
    let mut r = common::register(id(n), regime, region, t(received));
    r.product = product.into();
    r.category = category.into();
    r.unit = unit.into();
    r
}

fn money(minor: i64, code: &str) -> Money {
    Money {
        minor_units: minor,
        currency: iso_currency::Currency::from_code(code).unwrap(),
    }
}

fn csv_rows(report: &Report, section: usize) -> Vec<Vec<String>> {
    report.sections[section]
        .rows
        .iter()
        .map(|r| r.iter().map(Cell::to_csv).collect())
        .collect()
}

fn strs(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| r.iter().map(|s| (*s).to_owned()).collect())
        .collect()
}

/// The half-year 2026-H1 across AU, UK and CN, recorded in time order. Times are chosen at
/// midday in each regime's zone so dates are unambiguous.
async fn half_year(f: &Fixture) {
    // In the order recorded (the clock never goes back).
    // ASIC (Sydney: UTC+11 to 5 April, then UTC+10). A2: received and answered in 2025,
    // not in H1's report.
    f.register(reg(
        2,
        "AU-ASIC-RG271",
        "AU",
        "2025-11-01T01:00:00Z",
        "credit card",
        "fees",
        "sydney",
    ))
    .await;
    // F4: UK, received 1 Dec 2025, open all half-year.
    let mut f4 = reg(
        24,
        "UK-FCA-DISP",
        "GB-ENG",
        "2025-12-01T12:00:00Z",
        "mortgage",
        "arrears",
        "london",
    );
    f4.channel = Channel::Hotline;
    f.register(f4).await;
    f.answer(id(2), "2025-12-15T01:00:00Z", Decision::Rejected, vec![])
        .await;
    // A1: received 20 Dec 2025, still open on 1 Jan: in the report; answered 10 Jan,
    // upheld with AUD 150.00.
    f.register(reg(
        1,
        "AU-ASIC-RG271",
        "AU",
        "2025-12-20T01:00:00Z",
        "credit card",
        "fees",
        "sydney",
    ))
    .await;
    // NFRA, Q1 (Shanghai, UTC+8). N1: Beijing, received 5 Jan, answered 15 Jan (on
    // time), rated 5, reviewed 20 Jan.
    f.register(reg(
        31,
        "CN-CBIRC",
        "CN",
        "2026-01-05T04:00:00Z",
        "credit card",
        "fees",
        "beijing-branch",
    ))
    .await;
    // F3: received 5 Jan, answered 10 Apr, partly upheld with a refund: after 8 weeks.
    f.register(reg(
        23,
        "UK-FCA-DISP",
        "GB-ENG",
        "2026-01-05T12:00:00Z",
        "current account",
        "fees",
        "london",
    ))
    .await;
    f.answer(
        id(1),
        "2026-01-10T01:00:00Z",
        Decision::Upheld,
        vec![Redress {
            kind: RedressKind::Compensation,
            amount: money(15_000, "AUD"),
        }],
    )
    .await;
    // N2: Shanghai, received 10 Jan, breached 26 Jan, answered 10 Feb (overdue), rated 2.
    f.register(reg(
        32,
        "CN-CBIRC",
        "CN",
        "2026-01-10T04:00:00Z",
        "credit card",
        "fees",
        "shanghai-branch",
    ))
    .await;
    f.step(
        id(31),
        "2026-01-14T04:00:00Z",
        Command::RecordFindings {
            findings: "f".into(),
            root_cause: RootCause::Pricing,
            evidence: vec![],
        },
    )
    .await;
    f.answer(id(31), "2026-01-15T04:00:00Z", Decision::Upheld, vec![])
        .await;
    f.step(
        id(31),
        "2026-01-16T04:00:00Z",
        Command::RecordSatisfaction {
            rating: 5,
            comment: "thanks".into(),
        },
    )
    .await;
    f.step(
        id(31),
        "2026-01-20T04:00:00Z",
        Command::RequestReview { reason: "r".into() },
    )
    .await;
    f.breach(id(32), "2026-01-26T16:00:00Z").await;
    // A3: received 1 Feb, open at the end.
    f.register(reg(
        3,
        "AU-ASIC-RG271",
        "AU",
        "2026-02-01T01:00:00Z",
        "credit card",
        "service",
        "sydney",
    ))
    .await;
    // F1, F2: received Monday 2 Feb; F1 answered Thursday 5 Feb (the 3rd business day),
    // upheld with a goodwill payment; F2 answered 20 Mar (within 8 weeks), rejected.
    f.register(reg(
        21,
        "UK-FCA-DISP",
        "GB-ENG",
        "2026-02-02T12:00:00Z",
        "current account",
        "fees",
        "london",
    ))
    .await;
    f.register(reg(
        22,
        "UK-FCA-DISP",
        "GB-ENG",
        "2026-02-02T12:30:00Z",
        "current account",
        "fees",
        "london",
    ))
    .await;
    f.answer(
        id(21),
        "2026-02-05T12:00:00Z",
        Decision::Upheld,
        vec![Redress {
            kind: RedressKind::Goodwill,
            amount: money(5_000, "GBP"),
        }],
    )
    .await;
    f.answer(id(32), "2026-02-10T04:00:00Z", Decision::Rejected, vec![])
        .await;
    f.step(
        id(32),
        "2026-02-11T04:00:00Z",
        Command::RecordSatisfaction {
            rating: 2,
            comment: String::new(),
        },
    )
    .await;
    // N3: transferred by the regulator on 20 Feb, Beijing, breached 7 Mar, open at the
    // end of Q1.
    let mut n3 = reg(
        33,
        "CN-CBIRC",
        "CN",
        "2026-02-20T04:00:00Z",
        "credit card",
        "fees",
        "beijing-branch",
    );
    n3.channel = Channel::RegulatorTransfer;
    n3.regulator = Some(RegulatorTransfer {
        regulator: "NFRA Beijing".into(),
        reference: "BJ-1".into(),
        deadline: t("2026-03-10T04:00:00Z"),
    });
    f.register(n3).await;
    // A4: received 1 Mar, withdrawn 5 Mar (4 days).
    f.register(reg(
        4,
        "AU-ASIC-RG271",
        "AU",
        "2026-03-01T01:00:00Z",
        "credit card",
        "fees",
        "sydney",
    ))
    .await;
    // F5: received Monday 2 Mar, answered Friday 6 Mar: after the 3rd business day
    // (5 Mar), within 8 weeks; upheld.
    f.register(reg(
        25,
        "UK-FCA-DISP",
        "GB-ENG",
        "2026-03-02T12:00:00Z",
        "current account",
        "service",
        "london",
    ))
    .await;
    f.step(
        id(4),
        "2026-03-05T01:00:00Z",
        Command::Withdraw { reason: "w".into() },
    )
    .await;
    f.answer(id(25), "2026-03-06T12:00:00Z", Decision::Upheld, vec![])
        .await;
    f.breach(id(33), "2026-03-07T16:00:00Z").await;
    f.answer(id(22), "2026-03-20T12:00:00Z", Decision::Rejected, vec![])
        .await;
    // A7: declined, not a complaint: in no return.
    f.at("2026-03-25T01:00:00Z");
    let a7 = reg(
        7,
        "AU-ASIC-RG271",
        "AU",
        "2026-03-25T01:00:00Z",
        "credit card",
        "fees",
        "sydney",
    );
    f.run(id(7), Command::Register(Box::new(a7)), None).await;
    f.step(
        id(7),
        "2026-03-26T01:00:00Z",
        Command::Decline {
            reason: "not a complaint".into(),
        },
    )
    .await;
    f.answer(
        id(23),
        "2026-04-10T12:00:00Z",
        Decision::PartlyUpheld,
        vec![Redress {
            kind: RedressKind::Refund,
            amount: money(2_000, "GBP"),
        }],
    )
    .await;
    // A5: received 29 June; its answer is recorded after the half-year (in one test).
    f.register(reg(
        5,
        "AU-ASIC-RG271",
        "AU",
        "2026-06-29T02:00:00Z",
        "credit card",
        "fees",
        "sydney",
    ))
    .await;
    // A6: received 3 July: the next half-year.
    f.register(reg(
        6,
        "AU-ASIC-RG271",
        "AU",
        "2026-07-03T02:00:00Z",
        "credit card",
        "fees",
        "sydney",
    ))
    .await;
    f.reports.wait_for(f.log.head().await.unwrap()).await;
}

fn asic_expected() -> Vec<Vec<String>> {
    strs(&[
        // A1: 20 Dec -> 10 Jan = 21 days, upheld, AUD 150.00.
        &[
            &Uuid::from_u128(1).to_string(),
            "20/12/2025",
            "WEB",
            "CRED-CC",
            "FEES",
            "Closed",
            "10/01/2026",
            "21",
            "FAVOUR-COMPLAINANT",
            "150.00",
            "No",
        ],
        // A3: open.
        &[
            &Uuid::from_u128(3).to_string(),
            "01/02/2026",
            "WEB",
            "CRED-CC",
            "SERV",
            "Open",
            "",
            "",
            "",
            "",
            "No",
        ],
        // A4: withdrawn after 4 days, nothing paid.
        &[
            &Uuid::from_u128(4).to_string(),
            "01/03/2026",
            "WEB",
            "CRED-CC",
            "FEES",
            "Closed",
            "05/03/2026",
            "4",
            "WITHDRAWN",
            "0.00",
            "No",
        ],
        // A5: open at the end (its answer is recorded later).
        &[
            &Uuid::from_u128(5).to_string(),
            "29/06/2026",
            "WEB",
            "CRED-CC",
            "FEES",
            "Open",
            "",
            "",
            "",
            "",
            "No",
        ],
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_return_of_a_half_year_has_the_figures_computed_by_hand() {
    let f = Fixture::new();
    half_year(&f).await;
    f.at("2026-07-05T00:00:00Z");

    // ASIC: A1 (open at the start), A3, A4, A5; not A2 (closed before), A6 (after), A7
    // (declined).
    let asic = f
        .report(ReportKind::AsicIdr, "2026-H1", MAPPING)
        .await
        .unwrap();
    assert_eq!(asic.sections[0].columns[0], "Complaint unique identifier");
    assert_eq!(csv_rows(&asic, 0), asic_expected());
    assert!(asic.late.is_empty());
    let p = &asic.provenance;
    assert!(p.period_ended);
    assert_eq!(
        p.period.start,
        t("2025-12-31T13:00:00Z"),
        "1 January in Sydney"
    );
    assert_eq!(p.period.end, t("2026-06-30T14:00:00Z"), "1 July in Sydney");
    // The last event recorded before the end is A5's assignment; A6's registration and
    // assignment come after.
    let head = f.log.head().await.unwrap();
    assert_eq!(p.as_of_position, head - 2);
    assert_eq!(p.log_head, head);
    assert!(p
        .digest_json
        .contains(&format!("\"position\": {}", head - 2)));

    // FCA, by product: current accounts F1, F2, F3, F5 opened and closed: F1 within 3
    // business days, F2 and F5 within 8 weeks, F3 later; upheld F1, F3 (partly), F5 = 3
    // of 4. Home finance: F4 open throughout.
    let fca = f
        .report(ReportKind::FcaReturn, "2026-H1", MAPPING)
        .await
        .unwrap();
    assert_eq!(
        csv_rows(&fca, 0),
        strs(&[
            &[
                "Banking and credit cards: Current accounts",
                "0",
                "4",
                "4",
                "1",
                "2",
                "1",
                "3",
                "75.0",
                "0"
            ],
            &[
                "Home finance: Other regulated home finance",
                "1",
                "0",
                "0",
                "0",
                "0",
                "0",
                "0",
                "",
                "1"
            ],
        ])
    );
    assert_eq!(
        csv_rows(&fca, 1),
        strs(&[
            &[
                "Banking and credit cards: Current accounts",
                "General admin/customer service",
                "1"
            ],
            &[
                "Banking and credit cards: Current accounts",
                "Terms and disputed sums/charges",
                "3"
            ],
        ])
    );
    assert_eq!(
        csv_rows(&fca, 2),
        strs(&[
            &[
                "Banking and credit cards: Current accounts",
                "goodwill",
                "GBP",
                "50.00"
            ],
            &[
                "Banking and credit cards: Current accounts",
                "refund",
                "GBP",
                "20.00"
            ],
        ])
    );

    // NFRA, Q1: Beijing N1 (received, on time, reviewed) and N3 (received from the
    // regulator, open and overdue); Shanghai N2 (received, handled overdue).
    let nfra = f
        .report(ReportKind::NfraStatistics, "2026-Q1", MAPPING)
        .await
        .unwrap();
    assert_eq!(
        csv_rows(&nfra, 0),
        strs(&[
            &[
                "银行卡",
                "定价收费",
                "上海",
                "1",
                "1",
                "0",
                "1",
                "0",
                "0",
                "0"
            ],
            &[
                "银行卡",
                "定价收费",
                "北京",
                "2",
                "1",
                "1",
                "0",
                "1",
                "1",
                "1"
            ],
        ])
    );

    // Measures by unit, Q1 in UTC. beijing-branch: N1, N3 received; N1 answered after
    // exactly 10 days, upheld (valid), rated 5. shanghai-branch: N2 answered after 31
    // days, breached, rejected, rated 2.
    let measures = f
        .analysis(
            ReportKind::Measures,
            "2026-Q1",
            "UTC",
            Dimension::Unit,
            RepeatRule::default(),
        )
        .await;
    let rows = csv_rows(&measures, 0);
    let row = |unit: &str| rows.iter().find(|r| r[0] == unit).cloned().unwrap();
    assert_eq!(
        row("beijing-branch"),
        strs(&[&[
            "beijing-branch",
            "2",
            "1",
            "10.0",
            "0",
            "0.0",
            "1",
            "1",
            "100.0",
            "1",
            "5.00",
            "100.0"
        ]])[0]
    );
    assert_eq!(
        row("shanghai-branch"),
        strs(&[&[
            "shanghai-branch",
            "1",
            "1",
            "31.0",
            "1",
            "100.0",
            "1",
            "0",
            "0.0",
            "1",
            "2.00",
            "0.0"
        ]])[0]
    );
    // london: F1, F2, F3, F5 received in Q1; F1, F2, F5 answered (F3 in April); F1 and F5
    // upheld of 3 decided.
    assert_eq!(&row("london")[..3], &strs(&[&["london", "4", "3"]])[0][..]);
    assert_eq!(row("london")[8], "66.7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_rerun_after_later_events_has_the_same_figures_and_shows_late_entries() {
    let f = Fixture::new();
    half_year(&f).await;
    f.at("2026-07-04T00:00:00Z");
    let before = f
        .report(ReportKind::AsicIdr, "2026-H1", MAPPING)
        .await
        .unwrap();
    let fca_before = f
        .report(ReportKind::FcaReturn, "2026-H1", MAPPING)
        .await
        .unwrap();

    // A5's answer of 30 June (Sydney) is recorded on 4 July; F4 is answered in July; new
    // complaints arrive.
    f.at("2026-07-04T02:00:00Z");
    f.run(
        id(5),
        Command::Answer {
            decision: Decision::Rejected,
            redress: vec![],
            delivery: DeliveryMethod::Letter,
            summary: "s".into(),
        },
        Some("2026-06-30T03:00:00Z"),
    )
    .await;
    f.answer(id(24), "2026-07-06T12:00:00Z", Decision::Upheld, vec![])
        .await;
    f.register(reg(
        8,
        "AU-ASIC-RG271",
        "AU",
        "2026-07-07T02:00:00Z",
        "credit card",
        "fees",
        "sydney",
    ))
    .await;
    f.reports.wait_for(f.log.head().await.unwrap()).await;
    f.at("2027-01-10T00:00:00Z");

    let after = f
        .report(ReportKind::AsicIdr, "2026-H1", MAPPING)
        .await
        .unwrap();
    assert_eq!(after.sections, before.sections, "the same figures");
    assert_eq!(
        after.provenance.as_of_position,
        before.provenance.as_of_position
    );
    assert_eq!(after.provenance.digest_json, before.provenance.digest_json);
    assert!(after.provenance.log_head > before.provenance.log_head);
    assert_eq!(after.late.len(), 1, "{:?}", after.late);
    assert_eq!(after.late[0].id, id(5));
    assert_eq!(after.late[0].what, "answered");
    assert_eq!(after.late[0].happened_at, t("2026-06-30T03:00:00Z"));
    let csv = after.to_csv(&after.late_section());
    assert!(csv.contains(&Uuid::from_u128(5).to_string()), "{csv}");
    let json: serde_json::Value = serde_json::from_str(&after.to_json()).unwrap();
    assert_eq!(json["late_entries"]["rows"][0]["what"], "answered");
    assert_eq!(
        json["provenance"]["as_of_position"],
        before.provenance.as_of_position
    );

    let fca_after = f
        .report(ReportKind::FcaReturn, "2026-H1", MAPPING)
        .await
        .unwrap();
    assert_eq!(fca_after.sections, fca_before.sections);
    // The next half-year reports A5's closure: H1's file showed it open (its answer was
    // recorded after H1), so H2's holds it, closed on its true date, 30 June. A3, still
    // open, is there too; A1 and A4, closed in H1 as H1's file showed, are not.
    let h2 = f
        .report(ReportKind::AsicIdr, "2026-H2", MAPPING)
        .await
        .unwrap();
    let ids: Vec<String> = h2.sections[0].rows.iter().map(|r| r[0].to_csv()).collect();
    assert_eq!(ids, [3, 5, 6, 8].map(|n| Uuid::from_u128(n).to_string()));
    let a5: Vec<String> = h2.sections[0].rows[1].iter().map(Cell::to_csv).collect();
    assert_eq!(
        a5,
        strs(&[&[
            &Uuid::from_u128(5).to_string(),
            "29/06/2026",
            "WEB",
            "CRED-CC",
            "FEES",
            "Closed",
            "30/06/2026",
            "1",
            "FAVOUR-FIRM",
            "0.00",
            "No"
        ]])[0]
    );
    // The FCA return of H2 counts F4 (open at its start, answered in July) as closed.
    let fca_h2 = f
        .report(ReportKind::FcaReturn, "2026-H2", MAPPING)
        .await
        .unwrap();
    assert_eq!(
        csv_rows(&fca_h2, 0),
        strs(&[&[
            "Home finance: Other regulated home finance",
            "1",
            "0",
            "1",
            "0",
            "0",
            "1",
            "1",
            "100.0",
            "0"
        ]])
    );
    assert!(h2.provenance.period_ended);
    // A period not yet over is computed to the head, and says so.
    let h1_2027 = f
        .report(ReportKind::AsicIdr, "2027-H1", MAPPING)
        .await
        .unwrap();
    assert!(!h1_2027.provenance.period_ended);
    assert_eq!(
        h1_2027.provenance.as_of_position,
        f.log.head().await.unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmapped_name_refuses_the_return_and_lists_every_complaint() {
    let f = Fixture::new();
    half_year(&f).await;
    f.at("2026-07-05T00:00:00Z");
    let without_credit_cards = MAPPING.replace("\"credit card\" = \"CRED-CC\"\n", "");
    let Err(ReportError::Unmapped(list)) = f
        .report(ReportKind::AsicIdr, "2026-H1", &without_credit_cards)
        .await
    else {
        panic!("an unmapped product must refuse the ASIC file");
    };
    let listed: Vec<(ComplaintId, &str, &str)> = list
        .iter()
        .map(|u| (u.complaint, u.table, u.value.as_str()))
        .collect();
    assert_eq!(
        listed,
        vec![
            (id(1), "asic.product", "credit card"),
            (id(3), "asic.product", "credit card"),
            (id(4), "asic.product", "credit card"),
            (id(5), "asic.product", "credit card"),
        ]
    );
    let message = ReportError::Unmapped(list).to_string();
    assert!(message.contains("asic.product"), "{message}");
    let no_province = MAPPING.replace("shanghai-branch = \"上海\"\n", "");
    let Err(ReportError::Unmapped(list)) = f
        .report(ReportKind::NfraStatistics, "2026-Q1", &no_province)
        .await
    else {
        panic!("an unmapped province must refuse the NFRA statistics");
    };
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].complaint, list[0].table),
        (id(32), "nfra.province")
    );
}

#[test]
fn periods_parse_as_regulators_cut_them() {
    let h1 = Period::parse("2026-H1", "Australia/Sydney").unwrap();
    assert_eq!(
        (h1.first.to_string(), h1.last.to_string()),
        ("2026-01-01".into(), "2026-06-30".into())
    );
    let q4 = Period::parse("2026-Q4", "Asia/Shanghai").unwrap();
    assert_eq!(q4.end, t("2026-12-31T16:00:00Z"));
    let feb = Period::parse("2028-02", "UTC").unwrap();
    assert_eq!(feb.last.to_string(), "2028-02-29");
    let days = Period::parse("2026-04-06..2026-10-05", "Europe/London").unwrap();
    assert_eq!(days.start, t("2026-04-05T23:00:00Z"));
    assert_eq!(days.label, "2026-04-06..2026-10-05");
    for bad in [
        "2026-H3",
        "2026-13",
        "26",
        "2026-06-30..2026-01-01",
        "x..y",
        "2026-01-01T23:00+10[Australia/Sydney]..2026-06-30",
        "2026-1-1..2026-06-30",
    ] {
        assert!(Period::parse(bad, "UTC").is_err(), "{bad}");
    }
    assert!(Period::parse("2026", "Mars/Olympus").is_err());
}

/// A case with only what the root-cause analysis reads.
fn found(n: u128, product: &str, unit: &str, cause: RootCause, at: &str) -> Case {
    let name = |s: &str| Arc::<str>::from(s);
    Case {
        id: id(n),
        regime: name("CN-CBIRC"),
        region: name("CN"),
        product: name(product),
        category: name("fees"),
        channel: Channel::Web,
        complained_unit: name(unit),
        unit: name(unit),
        handler: None,
        about_employee: false,
        from_regulator: None,
        received_at: t(at),
        first_answered_at: None,
        resolved: None,
        resolved_known_at_start: None,
        reopened: vec![],
        redress: vec![],
        closed_at: None,
        excluded: None,
        root_cause: Some((cause, t(at))),
        reviews: vec![],
        review_changed: false,
        referrals: vec![],
        regulator_outcomes: vec![],
        breaches: vec![],
        satisfaction: None,
    }
}

#[test]
fn the_same_root_cause_three_times_in_thirty_days_on_one_product_and_unit_is_a_repeat() {
    let rule = RepeatRule { count: 3, days: 30 };
    let (from, until) = (t("2026-01-01T00:00:00Z"), t("2026-07-01T00:00:00Z"));
    // Given three pricing findings on cards at Beijing within 30 days (1, 20, 31 Jan)...
    let mut cases = vec![
        found(1, "card", "bj", RootCause::Pricing, "2026-01-01T00:00:00Z"),
        found(2, "card", "bj", RootCause::Pricing, "2026-01-20T00:00:00Z"),
        found(3, "card", "bj", RootCause::Pricing, "2026-01-31T00:00:00Z"),
        // ...two on loans (not enough), three on cards spread over 70 days (too far
        // apart), three at another unit with different causes, and three no-fault ones.
        found(4, "loan", "bj", RootCause::Pricing, "2026-01-02T00:00:00Z"),
        found(5, "loan", "bj", RootCause::Pricing, "2026-01-03T00:00:00Z"),
        found(
            6,
            "card",
            "sh",
            RootCause::SystemError,
            "2026-02-01T00:00:00Z",
        ),
        found(
            7,
            "card",
            "sh",
            RootCause::SystemError,
            "2026-03-05T00:00:00Z",
        ),
        found(
            8,
            "card",
            "sh",
            RootCause::SystemError,
            "2026-04-10T00:00:00Z",
        ),
        found(9, "card", "sh", RootCause::Pricing, "2026-02-02T00:00:00Z"),
        found(10, "card", "sh", RootCause::NoFault, "2026-02-02T00:00:00Z"),
        found(11, "card", "sh", RootCause::NoFault, "2026-02-03T00:00:00Z"),
        found(12, "card", "sh", RootCause::NoFault, "2026-02-04T00:00:00Z"),
    ];
    let refs: Vec<&Case> = cases.iter().collect();
    // ...then exactly one repeat, with its three complaints.
    let found_repeats = repeats(&refs, from, until, rule);
    assert_eq!(found_repeats.len(), 1, "{found_repeats:?}");
    assert_eq!(found_repeats[0].complaints, vec![id(1), id(2), id(3)]);
    assert_eq!(found_repeats[0].cause, RootCause::Pricing);
    assert_eq!(
        (&*found_repeats[0].product, &*found_repeats[0].unit),
        ("card", "bj")
    );
    // When a fourth comes 26 days after the second (15 Feb), the run grows (windows
    // overlap).
    cases.push(found(
        13,
        "card",
        "bj",
        RootCause::Pricing,
        "2026-02-15T00:00:00Z",
    ));
    let refs: Vec<&Case> = cases.iter().collect();
    let grown = repeats(&refs, from, until, rule);
    assert_eq!(grown[0].complaints, vec![id(1), id(2), id(3), id(13)]);
    // Findings before the period do not count.
    assert_eq!(
        repeats(&refs, t("2026-02-01T00:00:00Z"), until, rule),
        vec![]
    );
    // A fourth 36 days after the second would not have joined (a window of 3 spans
    // 20 Jan to 25 Feb).
    cases.pop();
    cases.push(found(
        13,
        "card",
        "bj",
        RootCause::Pricing,
        "2026-02-25T00:00:00Z",
    ));
    let refs: Vec<&Case> = cases.iter().collect();
    assert_eq!(
        repeats(&refs, from, until, rule)[0].complaints,
        vec![id(1), id(2), id(3)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repeated_cause_rule_records_a_run_once_with_the_complaints_behind_it() {
    use complaints_events::stored::{named_stream, ANALYSIS_STREAM, REPEATED_CAUSE};
    use complaints_workflow::analysis;
    let f = Fixture::new();
    let rule = RepeatRule { count: 3, days: 30 };
    let findings = |cause| Command::RecordFindings {
        findings: "f".into(),
        root_cause: cause,
        evidence: vec![],
    };
    let now = |at: &str| t(at);
    let record = |at: &'static str| {
        let f = &f;
        async move {
            f.reports.wait_for(f.log.head().await.unwrap()).await;
            analysis::record(&f.reports, &*f.log, now(at), rule)
                .await
                .unwrap()
        }
    };
    // Given pricing findings on credit cards at Beijing on 5 and 20 January...
    for (n, at) in [(41, "2026-01-05T04:00:00Z"), (42, "2026-01-20T04:00:00Z")] {
        f.register(reg(
            n,
            "CN-CBIRC",
            "CN",
            at,
            "credit card",
            "fees",
            "beijing-branch",
        ))
        .await;
        f.step(id(n), at, findings(RootCause::Pricing)).await;
    }
    // ...and three no-fault ones and one at Shanghai: nothing to raise.
    for (n, at, unit, cause) in [
        (
            43,
            "2026-01-21T04:00:00Z",
            "beijing-branch",
            RootCause::NoFault,
        ),
        (
            44,
            "2026-01-22T04:00:00Z",
            "beijing-branch",
            RootCause::NoFault,
        ),
        (
            45,
            "2026-01-23T04:00:00Z",
            "beijing-branch",
            RootCause::NoFault,
        ),
        (
            46,
            "2026-01-24T04:00:00Z",
            "shanghai-branch",
            RootCause::Pricing,
        ),
    ] {
        f.register(reg(n, "CN-CBIRC", "CN", at, "credit card", "fees", unit))
            .await;
        f.step(id(n), at, findings(cause)).await;
    }
    assert_eq!(record("2026-01-25T00:00:00Z").await, vec![]);
    // When a third Beijing pricing finding comes on 1 February (within 30 days of the
    // first)...
    f.register(reg(
        47,
        "CN-CBIRC",
        "CN",
        "2026-02-01T04:00:00Z",
        "credit card",
        "fees",
        "beijing-branch",
    ))
    .await;
    f.step(id(47), "2026-02-01T04:00:00Z", findings(RootCause::Pricing))
        .await;
    // ...then the rule records it once, naming the three complaints.
    let raised = record("2026-02-01T05:00:00Z").await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    let r = &raised[0];
    assert_eq!(
        (r.product.as_str(), r.unit.as_str(), r.cause),
        ("credit card", "beijing-branch", RootCause::Pricing)
    );
    assert_eq!(r.complaints, vec![id(41), id(42), id(47)]);
    assert_eq!((r.count, r.window_days), (3, 30));
    assert_eq!(
        (r.first, r.last),
        (t("2026-01-05T04:00:00Z"), t("2026-02-01T04:00:00Z"))
    );
    let stream = f
        .log
        .read_stream(
            &named_stream(ANALYSIS_STREAM),
            1,
            eventlog::Direction::Forward,
            10,
        )
        .await
        .unwrap();
    assert_eq!(stream.len(), 1);
    assert_eq!(stream[0].event_type, REPEATED_CAUSE);
    assert_eq!(stream[0].actor, analysis::ACTOR);
    // Looking again, or after the run grows by a fourth, raises nothing more.
    assert_eq!(record("2026-02-01T06:00:00Z").await, vec![]);
    f.register(reg(
        48,
        "CN-CBIRC",
        "CN",
        "2026-02-10T04:00:00Z",
        "credit card",
        "fees",
        "beijing-branch",
    ))
    .await;
    f.step(id(48), "2026-02-10T04:00:00Z", findings(RootCause::Pricing))
        .await;
    assert_eq!(record("2026-02-10T05:00:00Z").await, vec![]);
    // The run goes on (1 March); seven weeks later the rule looks back 60 days only, from
    // 25 January: it sees 1 Feb, 10 Feb and 1 Mar, a run whose complaints were raised
    // already: nothing new.
    f.register(reg(
        49,
        "CN-CBIRC",
        "CN",
        "2026-03-01T04:00:00Z",
        "credit card",
        "fees",
        "beijing-branch",
    ))
    .await;
    f.step(id(49), "2026-03-01T04:00:00Z", findings(RootCause::Pricing))
        .await;
    assert_eq!(record("2026-03-26T00:00:00Z").await, vec![]);
    // The run goes on every 10 days until 20 April: the rule never sees its start again
    // (it looks 60 days back) but names the whole run by its first complaints: nothing new.
    for (n, at) in [
        (61, "2026-03-11T04:00:00Z"),
        (62, "2026-03-21T04:00:00Z"),
        (63, "2026-03-31T04:00:00Z"),
        (64, "2026-04-10T04:00:00Z"),
        (65, "2026-04-20T04:00:00Z"),
    ] {
        f.register(reg(
            n,
            "CN-CBIRC",
            "CN",
            at,
            "credit card",
            "fees",
            "beijing-branch",
        ))
        .await;
        f.step(id(n), at, findings(RootCause::Pricing)).await;
        assert_eq!(record("2026-04-20T05:00:00Z").await, vec![], "{at}");
    }
    // A new run months later is raised on its own.
    for (n, at) in [
        (51, "2026-06-01T04:00:00Z"),
        (52, "2026-06-02T04:00:00Z"),
        (53, "2026-06-03T04:00:00Z"),
    ] {
        f.register(reg(
            n,
            "CN-CBIRC",
            "CN",
            at,
            "credit card",
            "fees",
            "beijing-branch",
        ))
        .await;
        f.step(id(n), at, findings(RootCause::Pricing)).await;
    }
    let again = record("2026-06-03T05:00:00Z").await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].complaints, vec![id(51), id(52), id(53)]);
    // The root-causes report lists both runs, the first with its ten complaints.
    let report = f
        .analysis(
            ReportKind::RootCauses,
            "2026-H1",
            "Asia/Shanghai",
            Dimension::Unit,
            rule,
        )
        .await;
    let rows = csv_rows(&report, 0);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        &rows[0][..4],
        &strs(&[&["credit card", "beijing-branch", "pricing", "10"]])[0][..]
    );
    assert_eq!(
        &rows[1][..4],
        &strs(&[&["credit card", "beijing-branch", "pricing", "3"]])[0][..]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_a_spreadsheet_would_run_as_formulas_are_quoted_in_csv_not_in_json() {
    let f = Fixture::new();
    f.register(reg(
        71,
        "CN-CBIRC",
        "CN",
        "2026-01-05T04:00:00Z",
        "=HYPERLINK(\"http://x\")",
        "fees",
        "bj",
    ))
    .await;
    f.register(reg(
        72,
        "CN-CBIRC",
        "CN",
        "2026-01-06T04:00:00Z",
        "+card",
        "fees",
        "bj",
    ))
    .await;
    f.reports.wait_for(f.log.head().await.unwrap()).await;
    let report = f
        .analysis(
            ReportKind::Measures,
            "2026-H1",
            "UTC",
            Dimension::Product,
            RepeatRule::default(),
        )
        .await;
    let csv = report.to_csv(&report.sections[0]);
    assert!(csv.contains("\n'+card,1,"), "{csv}");
    assert!(
        csv.contains("\n\"'=HYPERLINK(\"\"http://x\"\")\",1,"),
        "{csv}"
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["sections"][0]["rows"][0]["product"], "+card");
}
