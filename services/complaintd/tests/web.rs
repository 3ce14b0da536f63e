//! The HTTP port: the board and a complaint's page for every role (development and
//! verified authentication), languages, refusals, `/healthz` and `/readyz`.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::{ed25519_key, register, token, unix_now, TestServer, NOW};
use reqwest::header::{ACCEPT_LANGUAGE, AUTHORIZATION, COOKIE, SET_COOKIE};
use reqwest::StatusCode;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// GET `path` with `headers`: the status, the Set-Cookie values and the body.
async fn get(
    server: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Vec<String>, String) {
    let mut request = client().get(format!("{}{path}", server.http_url()));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let cookies = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    (status, cookies, response.text().await.unwrap())
}

/// A complaint registered by intake, with its name.
async fn registered(server: &TestServer) -> String {
    let mut r = register("UK-FCA-DISP", "GB-ENG", NOW - 3600);
    r.complainant.as_mut().unwrap().name = "Ada Lovelace".into();
    server
        .complaints()
        .register_complaint(common::req(r, "intake"))
        .await
        .unwrap()
        .into_inner()
        .name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_mode_shows_the_board_and_pages_by_the_chosen_roles() {
    let server = TestServer::start(|_| {}).await;
    server.running().ready().await;
    let name = registered(&server).await;
    let id = name.trim_start_matches("complaints/");

    // No headers: the banner, and the board as operations (the default) see it.
    let (status, _, board) = get(&server, "/", &[]).await;
    assert_eq!(status, StatusCode::OK, "{board}");
    assert!(board.contains("Development mode"), "{board}");
    assert!(
        board.contains(&format!("data-complaint=\"{name}\"")),
        "{board}"
    );
    assert!(board.contains("data-state=\"running\""), "{board}");
    assert!(board.contains("Regulator-transfer queue"));
    assert!(
        board.contains("The queue is empty."),
        "operations may list the queue"
    );
    assert!(!board.contains("Ada Lovelace"));
    assert!(board.contains("<svg"), "the charts");

    // Operations: the complaint's clocks and their explanations, not its details or
    // timeline (GetComplaint is not theirs).
    let page = format!("/complaints/{id}");
    let (status, _, body) = get(&server, &page, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("class=\"explanation\""), "{body}");
    assert!(body.contains("id=\"details-not-allowed\""), "{body}");
    assert!(!body.contains("id=\"timeline\""));
    assert!(!body.contains("credit card"), "the product is a detail");
    assert!(!body.contains("Ada Lovelace"));
    // An auditor: details and timeline, personal data withheld.
    let (_, _, body) = get(&server, &page, &[("x-roles", "auditor")]).await;
    assert!(body.contains("Personal data is withheld"), "{body}");
    assert!(!body.contains("Ada Lovelace"));
    assert!(!body.contains("refund the fee"), "the claim is personal");
    assert!(body.contains("credit card"));
    assert!(
        body.contains("data-type=\"complaint.registered\""),
        "{body}"
    );
    // Received an hour before it was recorded: the timeline says when it happened.
    let utc = |t: i64| {
        jiff::Timestamp::from_second(t)
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .strftime("%-d %b %Y, %H:%M UTC")
            .to_string()
    };
    let row = body
        .split("data-type=\"complaint.registered\"")
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    assert!(
        row.contains(&utc(NOW - 3600)) && row.contains(&utc(NOW)),
        "{row}"
    );
    // A handler sees the complainant; an auditor without the grant does not.
    let (_, _, body) = get(&server, &page, &[("x-roles", "handler")]).await;
    assert!(body.contains("Ada Lovelace"), "{body}");
    assert!(body.contains("refund the fee"));
    let (_, _, body) = get(&server, &page, &[("x-roles", "auditor")]).await;
    assert!(!body.contains("Ada Lovelace"));
    let (_, _, body) = get(&server, &page, &[("x-roles", "auditor,personal_data")]).await;
    assert!(body.contains("Ada Lovelace"));

    // Intake sees the board but not the queue; the regulator gateway not the board.
    let (status, _, body) = get(&server, "/", &[("x-roles", "intake")]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("The regulator-transfer queue needs the role"));
    let (status, _, body) = get(&server, "/", &[("x-roles", "regulator_gateway")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("Your roles do not allow this page"));
    let (status, _, _) = get(&server, "/live", &[("x-roles", "regulator_gateway")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = get(&server, &page, &[("x-roles", "admin")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Roles that do not exist are refused, not kept.
    for bad in ["nonsense", "", " , "] {
        let response = client()
            .post(format!("{}/dev/roles", server.http_url()))
            .form(&[("roles", bad)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        assert!(response.headers().get(SET_COOKIE).is_none());
    }
    // A refusal page still offers the role form (the viewer can change back).
    let (_, _, body) = get(&server, "/", &[("cookie", "complaints_dev_roles=admin")]).await;
    assert!(
        body.contains("action=\"/dev/roles\"") && body.contains("value=\"admin\""),
        "{body}"
    );
    // The roles chosen on the page are kept in a cookie.
    let response = client()
        .post(format!("{}/dev/roles", server.http_url()))
        .form(&[("roles", "handler,supervisor")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("complaints_dev_roles=handler,supervisor;"),
        "{cookie}"
    );
    let kept = cookie.split(';').next().unwrap();
    let (_, _, body) = get(&server, &page, &[("cookie", kept)]).await;
    assert!(body.contains("Ada Lovelace"));

    // Bad and unknown ids, bad filters.
    let (status, _, body) = get(&server, "/complaints/not-a-uuid", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let unknown = format!("/complaints/{}", uuid::Uuid::new_v4());
    let (status, _, _) = get(&server, &unknown, &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = get(&server, "/?state=sleeping", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("sleeping"));

    // Filters: the complaint's unit shows it, another unit does not.
    let (_, _, body) = get(&server, "/?unit=cards&state=running", &[]).await;
    assert!(body.contains(&format!("data-complaint=\"{name}\"")));
    let (_, _, body) = get(&server, "/?unit=mortgages", &[]).await;
    assert!(!body.contains(&format!("data-complaint=\"{name}\"")));
    assert!(body.contains("No running clocks match."));

    // Metrics: operations (the default) yes, a handler no.
    let (status, _, body) = get(&server, "/metrics", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("complaints_grpc_requests_total"), "{body}");
    let (status, _, _) = get(&server, "/metrics", &[("x-roles", "handler")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Health: public.
    assert_eq!(get(&server, "/healthz", &[]).await.0, StatusCode::OK);
    assert_eq!(get(&server, "/readyz", &[]).await.0, StatusCode::OK);
    // Static files are served locally.
    let (status, _, js) = get(&server, "/static/board.js", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(js.contains("EventSource"));
    let (_, _, html) = get(&server, "/", &[]).await;
    assert!(!html.contains("https://"), "nothing from another site");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_speaks_chinese_and_english() {
    let server = TestServer::start(|config| {
        config.business_time_zone = "Asia/Shanghai".into();
    })
    .await;
    let name = registered(&server).await;
    let id = name.trim_start_matches("complaints/");
    let zh = [("accept-language", "zh-CN,zh;q=0.9,en;q=0.5")];
    let (_, _, body) = get(&server, "/", &zh).await;
    assert!(body.contains("<html lang=\"zh-CN\">"), "{body}");
    assert!(body.contains("投诉处理：时效看板"));
    assert!(body.contains("计时中"));
    assert!(body.contains("业务时区（Asia/Shanghai）"));
    // Times in the business zone, in the Chinese format.
    assert!(body.contains("年") && body.contains("CST"), "{body}");
    let zh_auditor = [zh[0], ("x-roles", "auditor")];
    let (_, _, body) = get(&server, &format!("/complaints/{id}"), &zh_auditor).await;
    assert!(body.contains("<h3>处理经过</h3>"), "{body}");
    assert!(body.contains("受理"));
    // The switch on the page wins over the browser's language, and is remembered.
    let (_, cookies, body) = get(&server, "/?lang=en", &zh).await;
    assert!(body.contains("<html lang=\"en\">"));
    assert!(body.contains("Complaints: SLA board"));
    assert!(
        cookies.iter().any(|c| c.starts_with("lang=en;")),
        "{cookies:?}"
    );
    let (_, _, body) = get(
        &server,
        "/",
        &[
            (ACCEPT_LANGUAGE.as_str(), "zh-CN"),
            (COOKIE.as_str(), "lang=en"),
        ],
    )
    .await;
    assert!(body.contains("<html lang=\"en\">"));
    // Another time zone, chosen on the page.
    let (_, cookies, body) = get(&server, "/?tz=Europe/London", &[]).await;
    assert!(body.contains("GMT") || body.contains("BST"), "{body}");
    assert!(
        cookies.iter().any(|c| c.starts_with("tz=Europe%2FLondon;")),
        "{cookies:?}"
    );
    let (_, _, body) = get(&server, "/", &[(COOKIE.as_str(), "tz=Europe%2FLondon")]).await;
    assert!(body.contains("GMT") || body.contains("BST"));
    // A zone with a "+" in its name survives the cookie.
    let (_, cookies, _) = get(&server, "/?tz=Etc/GMT%2B5", &[]).await;
    let kept = cookies.iter().find(|c| c.starts_with("tz=")).unwrap();
    let kept = kept.split(';').next().unwrap().to_owned();
    let (_, _, body) = get(&server, "/", &[(COOKIE.as_str(), &kept)]).await;
    assert!(
        body.contains("value=\"Etc/GMT+5\" selected"),
        "{kept}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_mode_refuses_the_pages_without_a_valid_token() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = ed25519_key();
    let server = common::jwt_server(dir.path(), &public).await;
    let bearer = |sub: &str, roles: &[&str]| {
        token(
            &private,
            serde_json::json!({"sub": sub, "roles": roles, "iss": "https://idp.example",
                "aud": "complaints", "exp": unix_now() + 600}),
        )
    };
    let intake = bearer("user:ines", &["intake"]);
    let mut register_request = tonic::Request::new(register("UK-FCA-DISP", "GB-ENG", NOW - 60));
    register_request
        .metadata_mut()
        .insert("authorization", format!("Bearer {intake}").parse().unwrap());
    let name = server
        .complaints()
        .register_complaint(register_request)
        .await
        .unwrap()
        .into_inner()
        .name;
    let page = format!("/complaints/{}", name.trim_start_matches("complaints/"));

    // Without credentials (and with development headers, ignored now): refused.
    for path in ["/", page.as_str(), "/live", "/metrics"] {
        for headers in [
            vec![],
            vec![("x-principal", "me"), ("x-roles", "supervisor")],
        ] {
            let (status, _, body) = get(&server, path, &headers).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
            assert!(!body.contains("Ada Lovelace"));
        }
    }
    let (status, _, body) = get(&server, "/", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("href=\"/login\""));
    assert!(!body.contains("Development mode"));
    let expired = token(
        &private,
        serde_json::json!({"sub": "user:old", "roles": ["operations"], "iss": "https://idp.example",
            "aud": "complaints", "exp": unix_now() - 3600}),
    );
    let (status, _, _) = get(
        &server,
        "/",
        &[(AUTHORIZATION.as_str(), &format!("Bearer {expired}"))],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A valid token, in the header or the cookie: as its roles allow.
    let operations = bearer("user:olu", &["operations"]);
    let auth = format!("Bearer {operations}");
    let (status, _, body) = get(&server, "/", &[(AUTHORIZATION.as_str(), &auth)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains(&format!("data-complaint=\"{name}\"")));
    let cookie = format!("complaints_token={operations}");
    let (status, _, body) = get(&server, &page, &[(COOKIE.as_str(), &cookie)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("id=\"details-not-allowed\""), "{body}");
    assert!(!body.contains("Ada Lovelace"));
    let (status, _, body) = get(&server, "/metrics", &[(AUTHORIZATION.as_str(), &auth)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("complaints_grpc_requests_total"));
    let handler = format!("Bearer {}", bearer("user:hana", &["handler"]));
    let (_, _, body) = get(&server, &page, &[(AUTHORIZATION.as_str(), &handler)]).await;
    assert!(body.contains("Ada Lovelace"), "{body}");
    let (status, _, _) = get(&server, "/metrics", &[(AUTHORIZATION.as_str(), &handler)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Signing in keeps a valid token in an HttpOnly cookie; an invalid one is refused.
    let post = |token: String| {
        let url = format!("{}/login", server.http_url());
        async move {
            client()
                .post(url)
                .form(&[("token", token)])
                .send()
                .await
                .unwrap()
        }
    };
    let refused = post("not.a.token".into()).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.headers().get(SET_COOKIE).is_none());
    let accepted = post(operations.clone()).await;
    assert_eq!(accepted.status(), StatusCode::SEE_OTHER);
    let set = accepted.headers()[SET_COOKIE].to_str().unwrap();
    assert!(set.starts_with(&format!("complaints_token={operations};")));
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
    // Signing out forgets the token.
    let response = client()
        .post(format!("{}/logout", server.http_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cleared = response.headers()[SET_COOKIE].to_str().unwrap();
    assert!(cleared.starts_with("complaints_token=;") && cleared.contains("Max-Age=0"));
    // The sign-in page and the static files need no credentials.
    assert_eq!(get(&server, "/login", &[]).await.0, StatusCode::OK);
    assert_eq!(
        get(&server, "/static/board.css", &[]).await.0,
        StatusCode::OK
    );
    // Development-only routes do not exist here; health is public.
    let response = client()
        .post(format!("{}/dev/roles", server.http_url()))
        .form(&[("roles", "supervisor")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(get(&server, "/healthz", &[]).await.0, StatusCode::OK);
    server.running().ready().await;
    assert_eq!(get(&server, "/readyz", &[]).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_stream_pushes_the_board_after_an_event() {
    let server = TestServer::start(|_| {}).await;
    server.running().ready().await;
    let response = client()
        .get(format!("{}/live", server.http_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut response = response;
    let name = registered(&server).await;
    let mut seen = String::new();
    while !seen.contains(&format!("data-complaint=\"{name}\"")) {
        let chunk = response
            .chunk()
            .await
            .unwrap()
            .expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: board"), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_comes_once_the_projections_have_read_the_log() {
    // No snapshot: a restart rebuilds every projection from the whole log.
    let server = TestServer::start(|config| config.projection_snapshot_every = 0).await;
    let mut c = server.complaints();
    for _ in 0..300 {
        c.register_complaint(common::req(
            register("UK-FCA-DISP", "GB-ENG", NOW - 60),
            "intake",
        ))
        .await
        .unwrap();
    }
    let stopped = server.shutdown().await;
    let server = stopped.restart(|_| {}).await;
    // Live at once, whatever the projections are doing.
    assert_eq!(get(&server, "/healthz", &[]).await.0, StatusCode::OK);
    let (status, _, body) = get(&server, "/readyz", &[]).await;
    assert!(
        status == StatusCode::OK
            || (status == StatusCode::SERVICE_UNAVAILABLE && body.contains("catching up")),
        "{status}: {body}"
    );
    server.running().ready().await;
    // Ready means every projection has applied the log as it stood at start (the rules,
    // 300 registrations, and the rules again if the start recorded them).
    for (name, position) in server.running().projection_positions() {
        assert!(position >= 301, "{name} at {position} when ready");
    }
    assert_eq!(get(&server, "/readyz", &[]).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clocks_are_paged_most_urgent_first() {
    let server = TestServer::start(|_| {}).await;
    let mut c = server.complaints();
    // 30 complaints, received a minute apart: two clocks each under UK-FCA-DISP.
    for i in 0..30 {
        c.register_complaint(common::req(
            register("UK-FCA-DISP", "GB-ENG", NOW - 86_400 - i * 60),
            "intake",
        ))
        .await
        .unwrap();
    }
    let rows = |body: &str| body.matches("<tr class=\"clock ").count();
    let (_, _, first) = get(&server, "/", &[]).await;
    assert_eq!(rows(&first), 50, "a page of 50");
    let next = first
        .split("rel=\"next\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a next page")
        .replace("&amp;", "&");
    let (status, _, second) = get(&server, &next, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rows(&second), 10, "the other 10 of 60 clocks");
    assert!(!second.contains("rel=\"next\""));
    assert!(second.contains("First page"));
    // Most urgent first: the due times never go down, across the two pages.
    let dues: Vec<i64> = [&first, &second]
        .iter()
        .flat_map(|page| page.split("data-due=\"").skip(1))
        .map(|rest| rest.split('"').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(dues.len(), 60);
    assert!(dues.windows(2).all(|w| w[0] <= w[1]), "{dues:?}");
    // Filters reach the API's listing.
    let (_, _, filtered) = get(&server, "/?state=running&regime=UK-FCA-DISP", &[]).await;
    assert_eq!(rows(&filtered), 50);
    let (_, _, none) = get(&server, "/?regime=CN-CBIRC", &[]).await;
    assert_eq!(rows(&none), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complaints_page_shows_the_satisfaction_rating_and_the_comment_only_with_personal_data() {
    use complaints_proto::complaints::v1 as api;
    let server = TestServer::start(|_| {}).await;
    server.running().ready().await;
    let name = registered(&server).await;
    let page = format!("/complaints/{}", name.trim_start_matches("complaints/"));
    let mut api_client = server.complaints();
    let as_handler = |m| common::req(m, "handler,intake");
    api_client
        .assign_complaint(as_handler(api::AssignComplaintRequest {
            name: name.clone(),
            request_id: common::rid(),
            unit: "cards".into(),
            handler: "emp-3".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    // Not rated yet: nothing shown.
    let (_, _, body) = get(&server, &page, &[("x-roles", "handler")]).await;
    assert!(!body.contains("id=\"satisfaction\""), "{body}");
    api_client
        .answer_complaint(common::req(
            api::AnswerComplaintRequest {
                name: name.clone(),
                request_id: common::rid(),
                decision: api::Decision::Rejected as i32,
                delivery: api::DeliveryMethod::DeliveryLetter as i32,
                summary: "no error found".into(),
                ..Default::default()
            },
            "handler",
        ))
        .await
        .unwrap();
    api_client
        .record_satisfaction(common::req(
            api::RecordSatisfactionRequest {
                name: name.clone(),
                request_id: common::rid(),
                rating: 2,
                comment: "nobody called me back".into(),
                ..Default::default()
            },
            "handler",
        ))
        .await
        .unwrap();

    for (roles, sees) in [
        ("handler", true),
        ("auditor", false),
        ("compliance", false),
        ("compliance,personal_data", true),
    ] {
        let (status, _, body) = get(&server, &page, &[("x-roles", roles)]).await;
        assert_eq!(status, StatusCode::OK, "{roles}: {body}");
        assert!(
            body.contains("id=\"satisfaction\" data-rating=\"2\""),
            "{roles}: {body}"
        );
        assert!(body.contains("2 of 5"), "{roles}: {body}");
        assert_eq!(
            body.contains("nobody called me back"),
            sees,
            "{roles}: {body}"
        );
        assert!(
            body.contains("data-type=\"complaint.satisfaction_recorded\""),
            "{roles}: the timeline"
        );
    }
    // Operations see the clocks only.
    let (_, _, body) = get(&server, &page, &[("x-roles", "operations")]).await;
    assert!(!body.contains("id=\"satisfaction\""), "{body}");
    // In Chinese too.
    let (_, _, body) = get(
        &server,
        &page,
        &[
            ("x-roles", "handler"),
            ("accept-language", "zh-CN,zh;q=0.9"),
        ],
    )
    .await;
    assert!(body.contains("投诉人满意度"), "{body}");
    assert!(body.contains("记录满意度"), "{body}");
    server.shutdown().await;
}
