//! End to end: an agent analyses an uploaded CSV with Python over several
//! turns, using files it wrote in earlier turns, across a restart of the
//! real binary; the workspace is reachable through the files API, and a
//! runaway program costs one tool call, not the server.
//!
//! Needs bubblewrap; skipped with a notice without it, except in CI.

use crate::common;

use common::{Server, ADMIN_KEY};
use roster_testkit::{FakeModelServer, Reply};
use serde_json::json;

use roster_testkit::peers::have_bwrap;

fn tool_output(result: &serde_json::Value) -> String {
    result["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["type"] == "tool_result")
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn an_agent_analyses_a_csv_over_several_turns_and_a_restart() {
    if !have_bwrap() {
        return;
    }
    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut server = Server::start(&data, &model.openai_base_url(), &[]).await;
    let api = server.client();
    let (_, tools) = api.get("/v1/tools").await;
    let run_code = tools["data"]
        .as_array()
        .expect("tools")
        .iter()
        .find(|t| t["name"] == "run_code")
        .expect("run_code is offered")
        .clone();
    assert_eq!(
        run_code["parameters"]["required"],
        json!(["language", "code"])
    );

    let (status, agent) = api
        .post(
            "/v1/agents",
            json!({"name": "analyst", "instructions": "Use run_code.", "model": "openai/m", "tools": ["run_code"]}),
        )
        .await;
    assert_eq!(status, 201, "{agent}");
    let (_, session) = api.post("/v1/sessions", json!({"agent": "analyst"})).await;
    let sid = session["id"].as_str().expect("id").to_owned();

    // The user uploads the data.
    let csv = "region,month,sales\nnorth,1,120\nsouth,1,80\nnorth,2,150\nsouth,2,95\n";
    let put = api
        .http
        .put(format!(
            "{}/v1/sessions/{sid}/files/input/sales.csv",
            server.url
        ))
        .bearer_auth(ADMIN_KEY)
        .body(csv)
        .send()
        .await
        .expect("upload");
    assert_eq!(put.status(), 200);

    // Turn 1: totals per region, saved for later.
    let code = "import csv, json\nrows = list(csv.DictReader(open('input/sales.csv')))\ntotals = {}\nfor r in rows:\n    totals[r['region']] = totals.get(r['region'], 0) + int(r['sales'])\njson.dump(totals, open('totals.json', 'w'))\nprint(totals)";
    let args = json!({"language": "python", "code": code}).to_string();
    model.push(Reply::tool_call("c1", "run_code", &args));
    model.push(Reply::text("North sold 270, south 175."));
    let (status, result) = api
        .post(
            &format!("/v1/sessions/{sid}/messages"),
            json!({"content": "Total sales per region?"}),
        )
        .await;
    assert_eq!(status, 200, "{result}");
    let out = tool_output(&result);
    assert!(
        out.contains("'north': 270") && out.contains("exit code 0"),
        "{out}"
    );

    // Roster restarts; the workspace is still there.
    server.kill();
    let server = Server::start(&data, &model.openai_base_url(), &[]).await;
    let api = server.client();

    // Turn 2: reads what turn 1 wrote, and writes a report.
    let code = "const fs = require('fs');\nconst t = JSON.parse(fs.readFileSync('totals.json', 'utf8'));\nconst best = Object.entries(t).sort((a, b) => b[1] - a[1])[0];\nfs.writeFileSync('report.txt', `best region: ${best[0]} (${best[1]})`);\nconsole.log(best[0]);";
    let args = json!({"language": "javascript", "code": code}).to_string();
    model.push(Reply::tool_call("c2", "run_code", &args));
    model.push(Reply::text("North is ahead."));
    let (status, result) = api
        .post(
            &format!("/v1/sessions/{sid}/messages"),
            json!({"content": "Which region leads?"}),
        )
        .await;
    assert_eq!(status, 200, "{result}");
    assert!(tool_output(&result).contains("north"), "{result}");

    let (_, files) = api.get(&format!("/v1/sessions/{sid}/files")).await;
    let names: Vec<&str> = files["data"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(names, ["input/sales.csv", "report.txt", "totals.json"]);
    let report = api
        .http
        .get(format!("{}/v1/sessions/{sid}/files/report.txt", server.url))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("download")
        .text()
        .await
        .expect("text");
    assert_eq!(report, "best region: north (270)");
    // The same through the CLI.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
            .args(args)
            .env("ROSTER_URL", &server.url)
            .env("ROSTER_API_KEY", ADMIN_KEY)
            .output()
            .expect("cli");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = cli(&["session", "files", &sid]);
    assert!(ok && out.contains("totals.json"), "{out}{err}");
    let (ok, out, err) = cli(&["session", "download", &sid, "report.txt", "-o", "-"]);
    assert!(ok, "{err}");
    assert_eq!(out, "best region: north (270)");
    let (ok, _, err) = cli(&["session", "download", &sid, "../../roster.db", "-o", "-"]);
    assert!(!ok);
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // Turn 3: a runaway program is cut at its timeout; the run completes and
    // the server keeps answering.
    let args =
        json!({"language": "python", "code": "while True: pass", "timeout_secs": 1}).to_string();
    model.push(Reply::tool_call("c3", "run_code", &args));
    model.push(Reply::text("That took too long."));
    let (status, result) = api
        .post(
            &format!("/v1/sessions/{sid}/messages"),
            json!({"content": "Loop forever."}),
        )
        .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["run"]["status"], "completed", "{result}");
    assert!(tool_output(&result).contains("killed"), "{result}");
    let (status, _) = api.get("/v1/sessions").await;
    assert_eq!(status, 200);

    // Paths that leave the workspace, and other sessions, are refused.
    for path in ["..%2F..%2Froster.db", "%2Fetc%2Fpasswd"] {
        let r = api
            .http
            .get(format!("{}/v1/sessions/{sid}/files/{path}", server.url))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .expect("get");
        assert!(
            r.status() == 400 || r.status() == 404,
            "{path}: {}",
            r.status()
        );
    }
    let (status, body) = api.get("/v1/sessions/ses_nope/files").await;
    assert_eq!(status, 404, "{body}");
}
