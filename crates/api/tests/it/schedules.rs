//! `/v1/schedules`: making, reading, changing, pausing and removing
//! schedules, bad input refused, and firings visible with their runs.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{Reply, TestApp};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_schedule_is_made_shown_fired_paused_and_removed() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin.agent("reporter", "openai/test-model").await;
    let made = admin
        .post(
            "/v1/schedules",
            json!({"agent": "reporter", "cron": "0 9 * * mon-fri", "timezone": "Europe/Paris",
                   "input": "Write the morning report", "catch_up": "skip"}),
        )
        .await
        .ok(201)
        .clone();
    let id = made["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("sch_"));
    assert_eq!(made["agent"], "reporter");
    assert_eq!(made["catch_up"], "skip");
    let times = made["next_fire_times"].as_array().unwrap();
    assert_eq!(times.len(), 5);
    // 09:00 in Paris is 07:00 or 08:00 UTC, on weekdays.
    for t in times {
        let t = chrono::DateTime::parse_from_rfc3339(t.as_str().unwrap()).unwrap();
        let paris = t.with_timezone(&chrono_tz::Europe::Paris);
        assert_eq!(paris.format("%H:%M").to_string(), "09:00", "{t}");
        assert!(!matches!(
            paris.format("%a").to_string().as_str(),
            "Sat" | "Sun"
        ));
    }
    let listed = admin
        .get("/v1/schedules?agent=reporter")
        .await
        .ok(200)
        .clone();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);

    // Paused: nothing ahead; resumed: from now on.
    let paused = admin
        .post(&format!("/v1/schedules/{id}/pause"), json!({}))
        .await
        .ok(200)
        .clone();
    assert_eq!(paused["paused"], true);
    assert!(paused["next_fire_times"].as_array().unwrap().is_empty());
    let resumed = admin
        .post(&format!("/v1/schedules/{id}/resume"), json!({}))
        .await
        .ok(200)
        .clone();
    assert_eq!(resumed["next_fire_times"].as_array().unwrap().len(), 5);

    // Retimed to every second, it fires when due: a run per fire time.
    let changed = admin
        .patch(
            &format!("/v1/schedules/{id}"),
            json!({"cron": "* * * * * *", "catch_up": "all"}),
        )
        .await
        .ok(200)
        .clone();
    let first = chrono::DateTime::parse_from_rfc3339(changed["next_fire_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    app.fake.push(Reply::text("report 1"));
    app.fake.push(Reply::text("report 2"));
    let fired = app
        .state
        .runtime
        .fire_due(
            first + chrono::Duration::seconds(1),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(fired, 2);
    let detail = admin
        .get(&format!("/v1/schedules/{id}"))
        .await
        .ok(200)
        .clone();
    let firings = detail["firings"].as_array().unwrap();
    assert_eq!(firings.len(), 2, "{detail}");
    assert_eq!(detail["fired_count"], 2);
    let run = firings[0]["run_id"].as_str().unwrap();
    let done = admin.wait_run(run).await;
    assert_eq!(done["input"], "Write the morning report");
    assert!(
        done["actor"]
            .as_str()
            .unwrap()
            .ends_with(&format!("> schedule:{id}")),
        "{done}"
    );

    admin.delete(&format!("/v1/schedules/{id}")).await;
    admin
        .get(&format!("/v1/schedules/{id}"))
        .await
        .err(404, "not_found");
}

#[tokio::test]
async fn bad_schedules_are_refused_with_the_reason() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin.agent("reporter", "openai/test-model").await;
    admin.agent("other", "openai/test-model").await;
    let other_session = admin.session("other").await;
    let cases = [
        (
            json!({"agent": "reporter", "cron": "61 * * * *", "input": "x"}),
            "cron",
        ),
        (
            json!({"agent": "reporter", "cron": "* * * * *", "timezone": "Mars/Olympus", "input": "x"}),
            "time zone",
        ),
        (
            json!({"agent": "reporter", "cron": "* * * * *", "at": "2030-01-01T00:00:00Z", "input": "x"}),
            "exactly one",
        ),
        (json!({"agent": "reporter", "input": "x"}), "exactly one"),
        (
            json!({"agent": "reporter", "at": "2001-01-01T00:00:00Z", "input": "x"}),
            "past",
        ),
        (
            json!({"agent": "reporter", "cron": "* * * * *", "input": "  "}),
            "empty",
        ),
        (
            json!({"agent": "reporter", "cron": "* * * * *", "input": "x", "session": other_session}),
            "another agent",
        ),
        (
            json!({"agent": "reporter", "cron": "* * * * *", "input": "x", "catch_up": "sometimes"}),
            "",
        ),
    ];
    for (body, says) in cases {
        let resp = admin.post("/v1/schedules", body.clone()).await;
        resp.err(400, "invalid_request");
        assert!(resp.text.contains(says), "{body}: {}", resp.text);
    }
    admin
        .post(
            "/v1/schedules",
            json!({"agent": "nobody", "cron": "* * * * *", "input": "x"}),
        )
        .await
        .err(404, "not_found");
    assert!(admin.get("/v1/schedules").await.ok(200)["data"]
        .as_array()
        .unwrap()
        .is_empty());
}
