//! The live board in a real browser: headless Chromium, driven over WebDriver
//! (chromedriver, through fantoccini), against a running complaintd on the real clock.
//!
//! A complaint is registered under a policy whose clock lasts one minute (at risk at
//! 50%), 20 seconds into it. Without reloading, the board's row turns "at risk" and then
//! "breached", and the counts move, as the server pushes the board after the watcher
//! records each crossing. The complaint's page then shows the explanation. A screenshot
//! of the board is saved (`target/tmp/board.png`).
//!
//! Needs `chromium` and `chromedriver` (Debian's packages `chromium` and
//! `chromium-driver`; `.ci/run` installs them). `CHROMEDRIVER` names another driver,
//! `CHROMIUM` another browser. Without them the test fails, saying so.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{register, req, TestServer};
use complaints_proto::complaints::v1 as api;
use fantoccini::{Client, ClientBuilder, Locator};

/// chromedriver in a process group of its own, killed with the browsers it started when
/// dropped (also on panic).
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn program(var: &str, default: &str) -> String {
    let path = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} is missing: install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver), or set {var}"
    );
    path
}

fn start_driver() -> Driver {
    use std::os::unix::process::CommandExt as _;
    let driver = program("CHROMEDRIVER", "/usr/bin/chromedriver");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    Driver { child, port }
}

/// A WebDriver session with headless Chromium, its profile in `profile`. chromedriver
/// takes a moment to listen: connecting is retried until it answers (or 30 s pass).
async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let chromium = program("CHROMIUM", "/usr/bin/chromium");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=1400,1800",
                "--lang=en-GB",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let url = format!("http://127.0.0.1:{}", driver.port);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        // Plain HTTP to the local driver: no TLS.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(client) => return client,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cannot start a browser session through chromedriver: {e}"),
        }
    }
}

const POLICY: &str = r#"
[[policy]]
id = "TEST-MINUTE"
version = 1
title = "Test: first response within one minute"
source = "browser test"
time_zone = "UTC"
default_calendar = "CN"

[[policy.clock]]
id = "first_response"
title = "First response within 1 minute"
starts = "received"
stops = "acknowledged"
length = { minutes = 1 }
at_risk = [50]
"#;

/// Reads `what` of the element at `css`, again if the live board swapped the element out
/// between finding and reading it (a stale element: every push replaces the live part).
async fn read(client: &Client, css: &str, what: Option<&str>) -> String {
    let mut last = None;
    for _ in 0..50 {
        let found = match client.find(Locator::Css(css)).await {
            Ok(element) => match what {
                Some(attr) => element.attr(attr).await.map(Option::unwrap_or_default),
                None => element.text().await,
            },
            Err(e) => Err(e),
        };
        match found {
            Ok(value) => return value,
            Err(e) => last = Some(e),
        }
        tokio::task::yield_now().await;
    }
    panic!("cannot read {css}: {last:?}");
}

/// Switches the development roles through the banner's form (typing `typed`), and waits
/// for the page that shows them as `shown`.
async fn switch_roles(client: &Client, typed: &str, shown: &str) {
    let roles = client
        .find(Locator::Css("input[name=roles]"))
        .await
        .unwrap();
    roles.clear().await.unwrap();
    roles.send_keys(typed).await.unwrap();
    client
        .find(Locator::Css("form[action=\"/dev/roles\"] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(&format!(
            "input[name=roles][value=\"{shown}\"]"
        )))
        .await
        .unwrap();
}

async fn state_of(client: &Client, row: &str) -> String {
    read(client, row, Some("data-state")).await
}

async fn text_of(client: &Client, css: &str) -> String {
    read(client, css, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_turns_at_risk_then_breached_without_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(policies.join("test.toml"), POLICY).unwrap();
    let server = TestServer::start_with_clock(Arc::new(eventlog::SystemClock), |config| {
        config.policies_dir = Some(policies);
    })
    .await;
    server.running().ready().await;
    let driver = start_driver();
    let client = browser(&driver, &dir.path().join("profile")).await;

    // 20 s into a one-minute clock: at risk 10 s from now, breached 40 s from now.
    let now = jiff::Timestamp::now().as_second();
    let mut r = register("TEST-MINUTE", "CN", now - 20);
    r.channel = api::Channel::Hotline as i32;
    let name = server
        .complaints()
        .register_complaint(req(r, "intake"))
        .await
        .unwrap()
        .into_inner()
        .name;
    let row = format!("tr[data-complaint=\"{name}\"][data-clock=\"first_response\"]");

    client.goto(&server.http_url()).await.unwrap();
    assert_eq!(state_of(&client, &row).await, "running");
    assert_eq!(text_of(&client, "#count-breached .n").await, "0");
    assert_eq!(text_of(&client, "#count-atrisk .n").await, "0");
    assert!(text_of(&client, "body").await.contains("Development mode"));
    // A mark in the page: still there later means the page was never reloaded.
    client
        .execute("window.notReloaded = true; return true;", vec![])
        .await
        .unwrap();
    client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("body[data-live=\"connected\"]"))
        .await
        .unwrap();

    let at_risk = format!("{row}[data-state=\"atrisk\"]");
    client
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css(&at_risk))
        .await
        .expect("the row turns at risk on its own");
    assert_eq!(text_of(&client, "#count-atrisk .n").await, "1");
    let breached = format!("{row}[data-state=\"breached\"]");
    client
        .wait()
        .at_most(Duration::from_secs(90))
        .for_element(Locator::Css(&breached))
        .await
        .expect("the row turns breached on its own");
    assert_eq!(text_of(&client, "#count-breached .n").await, "1");
    assert_eq!(text_of(&client, "#count-atrisk .n").await, "0");
    let kept = client
        .execute("return window.notReloaded === true;", vec![])
        .await
        .unwrap();
    assert_eq!(kept, serde_json::json!(true), "the page was reloaded");
    let updates: u64 = client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .attr("data-updates")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    assert!(updates >= 2, "{updates} pushed updates");

    let png = client.screenshot().await.unwrap();
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("board.png");
    std::fs::write(&shot, &png).unwrap();
    eprintln!("screenshot: {}", shot.display());

    // Through the banner's form, as an auditor too (details and timeline, no personal
    // data); back on the board, then the complaint's page.
    switch_roles(&client, "operations,auditor", "auditor,operations").await;
    // The row's link, followed by address: the live board may swap the row out under a
    // click (every push replaces it).
    let href = read(&client, &format!("{row} a"), Some("href")).await;
    assert_eq!(
        href,
        format!("/complaints/{}", name.trim_start_matches("complaints/"))
    );
    client
        .goto(&format!("{}{href}", server.http_url()))
        .await
        .unwrap();
    client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("ol.explanation li"))
        .await
        .unwrap();
    let page = text_of(&client, "main").await;
    assert!(page.contains("First response within 1 minute"), "{page}");
    assert!(page.contains("Personal data is withheld"), "{page}");
    assert!(
        page.contains("SLA clock breached"),
        "the timeline shows the crossing: {page}"
    );
    let explanation = text_of(
        &client,
        "article.clock[data-clock=\"first_response\"] ol.explanation",
    )
    .await;
    assert!(!explanation.trim().is_empty());
    let png = client.screenshot().await.unwrap();
    std::fs::write(shot.with_file_name("complaint.png"), &png).unwrap();

    // As compliance, the reports page: the measures of the days around today, with their
    // chart drawn and the files offered.
    switch_roles(&client, "compliance", "compliance").await;
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let period = format!(
        "{}..{}",
        today.yesterday().unwrap(),
        today.tomorrow().unwrap()
    );
    client
        .goto(&format!(
            "{}/reports?kind=measures&period={period}&by=handler&time_zone=UTC",
            server.http_url()
        ))
        .await
        .unwrap();
    client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("figure.chart svg g.bar rect"))
        .await
        .expect("the measures' chart is drawn");
    let page = text_of(&client, "main").await;
    assert!(page.contains("(unassigned)"), "{page}");
    let file = read(
        &client,
        "a[href*=\"/reports/file\"][href$=\"file=measures\"]",
        Some("href"),
    )
    .await;
    assert!(file.contains("kind=measures"), "{file}");
    let png = client.screenshot().await.unwrap();
    std::fs::write(shot.with_file_name("reports.png"), &png).unwrap();
    client.close().await.unwrap();
    drop(driver);
    server.shutdown().await;
}
