//! `/v1/knowledge`: sources, document uploads of every supported type, bad
//! documents failing alone, re-uploads, search with citations, isolation,
//! and an agent answering from a document with a citation.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{Client, Reply, TestApp};
use serde_json::{json, Value};

const HANDBOOK: &str = "# Leave policy\n\nEmployees get 25 days of paid annual leave per year.\n\n## Parental leave\n\nParents get 16 weeks of paid parental leave, to be taken within the first year.\n";

async fn upload(
    client: &Client,
    source: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> common::Resp {
    let builder = client
        .request(
            reqwest::Method::PUT,
            &format!("/v1/knowledge/sources/{source}/documents/{path}"),
        )
        .header("content-type", content_type)
        .body(body);
    client.send(builder).await
}

async fn search(client: &Client, query: &str) -> Value {
    client
        .post("/v1/knowledge/search", json!({"query": query}))
        .await
        .ok(200)
        .clone()
}

/// A blank query is refused whether or not the tenant has sources yet
/// (schemathesis found it answered 200 before the first source).
#[tokio::test]
async fn a_blank_query_is_refused_before_any_source_exists() {
    let app = TestApp::start().await;
    app.admin()
        .post("/v1/knowledge/search", json!({ "query": " " }))
        .await
        .err(400, "invalid_request");
}

#[tokio::test]
async fn documents_are_ingested_searched_and_cited() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin
        .post(
            "/v1/knowledge/sources",
            json!({"name": "handbook", "description": "HR"}),
        )
        .await
        .ok(201);
    admin
        .post("/v1/knowledge/sources", json!({"name": "handbook"}))
        .await
        .err(409, "conflict");

    let stored = upload(
        &admin,
        "handbook",
        "policies/leave.md",
        "text/markdown",
        HANDBOOK.into(),
    )
    .await;
    let stored = stored.ok(200);
    assert_eq!(stored["status"], "stored");
    assert_eq!(stored["document"]["kind"], "markdown");
    assert_eq!(stored["document"]["version"], 1);
    // The same bytes again change nothing.
    let again = upload(
        &admin,
        "handbook",
        "policies/leave.md",
        "text/markdown",
        HANDBOOK.into(),
    )
    .await;
    assert_eq!(again.ok(200)["status"], "unchanged");

    let csv = "name,office,phone\nAda,Berlin,+49 30 1234\nGrace,Paris,+33 1 5678\n";
    upload(&admin, "handbook", "directory.csv", "text/csv", csv.into())
        .await
        .ok(200);
    let html = "<html><head><title>Expenses</title><script>var x=1;</script></head><body><h1>Travel</h1><p>Train tickets are reimbursed in second class.</p></body></html>";
    upload(
        &admin,
        "handbook",
        "expenses.html",
        "text/html",
        html.into(),
    )
    .await
    .ok(200);
    upload(
        &admin,
        "handbook",
        "notes.txt",
        "text/plain",
        "The office closes at 18:00 on Fridays.".into(),
    )
    .await
    .ok(200);

    // Bad documents fail alone, with their own codes; the good ones stay.
    let png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13];
    upload(&admin, "handbook", "logo.png", "image/png", png.clone())
        .await
        .err(422, "unsupported_type");
    upload(&admin, "handbook", "renamed.txt", "text/plain", png)
        .await
        .err(422, "binary_content");
    upload(&admin, "handbook", "empty.md", "text/markdown", Vec::new())
        .await
        .err(422, "empty_document");
    upload(
        &admin,
        "handbook",
        "report.docx",
        "application/octet-stream",
        b"PK\x03\x04rest".to_vec(),
    )
    .await
    .err(422, "unsupported_type");
    upload(
        &admin,
        "handbook",
        "broken.pdf",
        "application/pdf",
        b"%PDF-1.4 garbage".to_vec(),
    )
    .await
    .err(422, "malformed_document");
    let big = vec![b'a'; 5 * 1024 * 1024];
    upload(&admin, "handbook", "big.txt", "text/plain", big)
        .await
        .err(413, "document_too_large");
    upload(
        &admin,
        "handbook",
        "..%2Fetc%2Fpasswd",
        "text/plain",
        b"x".to_vec(),
    )
    .await
    .err(400, "invalid_request");
    upload(&admin, "nosuch", "a.md", "text/markdown", b"x".to_vec())
        .await
        .err(404, "not_found");

    let docs = admin.get("/v1/knowledge/sources/handbook/documents").await;
    let docs = docs.ok(200)["data"].as_array().unwrap().clone();
    let paths: Vec<&str> = docs.iter().map(|d| d["path"].as_str().unwrap()).collect();
    assert!(
        paths.contains(&"policies/leave.md") && paths.contains(&"logo.png"),
        "{paths:?}"
    );
    let logo = docs.iter().find(|d| d["path"] == "logo.png").unwrap();
    assert_eq!(logo["error"]["code"], "unsupported_type");
    assert_eq!(logo["version"], 0);
    let shown = admin
        .get("/v1/knowledge/sources/handbook/documents/policies/leave.md")
        .await;
    assert_eq!(shown.ok(200)["chunks"].as_i64().map(|n| n >= 1), Some(true));

    // Search: passages with citations naming source, path and place.
    let found = search(&admin, "how many weeks of parental leave").await;
    assert_eq!(found["mode"], "full_text");
    let top = &found["data"][0];
    assert!(
        top["text"].as_str().unwrap().contains("16 weeks"),
        "{found}"
    );
    let citation = top["citation"].as_str().unwrap();
    assert!(
        citation.starts_with("handbook:policies/leave.md (lines "),
        "{citation}"
    );
    let found = search(&admin, "Grace phone number Paris").await;
    assert!(
        found["data"][0]["citation"]
            .as_str()
            .unwrap()
            .starts_with("handbook:directory.csv (row"),
        "{found}"
    );
    let found = search(&admin, "train tickets reimbursed").await;
    assert!(
        found["data"][0]["text"]
            .as_str()
            .unwrap()
            .contains("second class"),
        "{found}"
    );
    assert!(
        !found["data"][0]["text"].as_str().unwrap().contains("var x"),
        "scripts are dropped"
    );

    // A changed document replaces its passages; a deleted one's go.
    let changed = HANDBOOK.replace("16 weeks", "20 weeks");
    let v2 = upload(
        &admin,
        "handbook",
        "policies/leave.md",
        "text/markdown",
        changed.into(),
    )
    .await;
    assert_eq!(v2.ok(200)["document"]["version"], 2);
    let found = search(&admin, "weeks of parental leave").await;
    let texts: Vec<&str> = found["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    assert!(texts.iter().any(|t| t.contains("20 weeks")), "{texts:?}");
    assert!(!texts.iter().any(|t| t.contains("16 weeks")), "{texts:?}");
    admin
        .delete("/v1/knowledge/sources/handbook/documents/policies/leave.md")
        .await
        .ok(204);
    let found = search(&admin, "parental leave weeks").await;
    assert!(found["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["path"] != "policies/leave.md"));

    // Another tenant sees none of it.
    let other = app.tenant_b();
    other
        .get("/v1/knowledge/sources/handbook")
        .await
        .err(404, "not_found");
    let theirs = search(&other, "train tickets").await;
    assert!(theirs["data"].as_array().unwrap().is_empty());
    other
        .post(
            "/v1/knowledge/search",
            json!({"query": "x", "sources": ["handbook"]}),
        )
        .await
        .err(404, "not_found");

    // Removing the source removes its passages.
    admin.delete("/v1/knowledge/sources/handbook").await.ok(204);
    let found = search(&admin, "train tickets").await;
    assert!(found["data"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn an_agent_answers_from_a_document_with_a_citation() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin
        .post("/v1/knowledge/sources", json!({"name": "handbook"}))
        .await
        .ok(201);
    upload(
        &admin,
        "handbook",
        "leave.md",
        "text/markdown",
        HANDBOOK.into(),
    )
    .await
    .ok(200);
    // Agents may only name sources that exist.
    admin
        .post(
            "/v1/agents",
            json!({"name": "hr", "model": "openai/m", "knowledge": ["nosuch"]}),
        )
        .await
        .err(400, "invalid_request");
    admin
        .post(
            "/v1/agents",
            json!({"name": "hr", "model": "openai/m", "knowledge": ["handbook"], "tools": ["knowledge_search"]}),
        )
        .await
        .ok(201);
    let session = admin.session("hr").await;
    app.fake.push(Reply::tool_call(
        "k1",
        "knowledge_search",
        r#"{"query": "annual leave days"}"#,
    ));
    app.fake
        .push(Reply::text("25 days [handbook:leave.md (lines 3-3)]"));
    let answer = admin
        .say(&session, "How many days of annual leave do I get?")
        .await;
    assert_eq!(answer["run"]["status"], "completed", "{answer}");

    let requests = app.fake.requests();
    // Recalled into the context before the model asked.
    let system = requests[0].body["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        system.contains("<knowledge>") && system.contains("handbook:leave.md ("),
        "{system}"
    );
    assert!(system.contains("25 days"), "{system}");
    // And the tool's result carries the citation.
    let messages = requests[1].body["messages"].as_array().unwrap();
    let tool = messages.iter().find(|m| m["role"] == "tool").unwrap();
    let output = tool["content"].as_str().unwrap();
    assert!(
        output.contains("[1] handbook:leave.md (lines") && output.contains("25 days"),
        "{output}"
    );
}
