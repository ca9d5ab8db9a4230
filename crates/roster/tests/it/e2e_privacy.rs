//! End to end with the real binary and its CLI: two people share one agent
//! through keys bound to their users. Each tells the agent their name, and
//! each one's `human` block holds only their own; neither key can claim the
//! other's user, read the other's session, copy or memories. People read
//! and edit blocks with `roster block`, add and remove them as agent
//! versions (`roster block add|remove`, `roster agent update
//! --add-block/--remove-block`), and every edit is in the audit log.

use crate::common;

use common::Server;
use roster_testkit::{FakeModelServer, Reply};
use std::io::Write;
use std::process::{Command, Stdio};

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(self) -> Out {
        assert!(
            self.ok,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// A failure told in one stderr line that names `code`.
    fn refused(self, code: &str) -> Out {
        assert!(!self.ok, "expected a refusal; stdout:\n{}", self.stdout);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{}", self.stderr);
        assert!(
            lines[0].starts_with(&format!("error: {code}")),
            "{}",
            self.stderr
        );
        self
    }
}

/// `roster ARGS` with `key`, `stdin` piped in.
fn roster(server: &Server, key: &str, args: &[&str], stdin: &str) -> Out {
    let mut child = Command::new(env!("CARGO_BIN_EXE_roster"))
        .args(args)
        .env("ROSTER_URL", &server.url)
        .env("ROSTER_API_KEY", key)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn roster");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).expect("stdin");
    }
    let out = child.wait_with_output().expect("wait");
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The key `roster key create` printed (its second line).
fn new_key(server: &Server, args: &[&str]) -> String {
    let out = roster(server, common::ADMIN_KEY, args, "").ok();
    let key = out.stdout.lines().nth(1).unwrap_or_default().to_owned();
    assert!(key.starts_with("rk_"), "{}", out.stdout);
    key
}

/// The system prompt of the model server's latest request.
fn last_system(model: &FakeModelServer) -> String {
    let request = model.last_request().expect("a request");
    request.body["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_share_an_agent_and_keep_their_own_human_block() {
    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &model.openai_base_url(), &[]).await;
    let admin = common::ADMIN_KEY;
    roster(
        &server,
        admin,
        &[
            "agent",
            "create",
            "helper",
            "--model",
            "openai/test-model",
            "--tool",
            "memory_replace",
            "--block",
            "persona=You help the data team.",
            "--block",
            "human:user=Name: unknown",
        ],
        "",
    )
    .ok();
    let ann = new_key(&server, &["key", "create", "Ann's laptop", "--user", "ann"]);
    let bob = new_key(&server, &["key", "create", "bob", "--user", "bob"]);
    let keys = roster(&server, admin, &["key", "list"], "").ok();
    assert!(keys.stdout.contains("ACTS FOR"), "{}", keys.stdout);
    assert!(
        keys.stdout
            .lines()
            .any(|l| l.contains("Ann's laptop") && l.contains(" ann ")),
        "{}",
        keys.stdout
    );

    // Ann tells the agent her name; it writes it into her copy of `human`.
    model.push_all([
        Reply::tool_call(
            "c1",
            "memory_replace",
            r#"{"label":"human","old":"unknown","new":"Ann"}"#,
        ),
        Reply::text("Nice to meet you, Ann."),
    ]);
    let chat = roster(&server, &ann, &["chat", "helper"], "I am Ann.\n").ok();
    assert_eq!(chat.stdout, "Nice to meet you, Ann.\n", "{}", chat.stderr);

    // Bob cannot claim Ann's user; his own session pins only his template.
    roster(
        &server,
        &bob,
        &["chat", "helper", "--user", "ann"],
        "Who am I?\n",
    )
    .refused("user_not_allowed");
    model.push(Reply::text("I don't know your name yet."));
    roster(&server, &bob, &["chat", "helper"], "Who am I?\n").ok();
    let system = last_system(&model);
    assert!(
        system.contains("Name: unknown") && !system.contains("Ann"),
        "{system}"
    );
    model.push(Reply::text("You are Ann."));
    roster(&server, &ann, &["chat", "helper"], "Who am I?\n").ok();
    assert!(
        last_system(&model).contains("Name: Ann"),
        "{}",
        last_system(&model)
    );

    // Blocks through the CLI: each sees the template and their own copy.
    let listed = roster(&server, &ann, &["block", "list", "helper"], "").ok();
    assert!(
        listed
            .stdout
            .lines()
            .any(|l| l.starts_with("human") && l.contains("user:ann") && l.contains("Name: Ann")),
        "{}",
        listed.stdout
    );
    let listed = roster(&server, &bob, &["block", "list", "helper"], "").ok();
    assert!(!listed.stdout.contains("Ann"), "{}", listed.stdout);
    roster(
        &server,
        &bob,
        &["block", "show", "helper", "human", "--user", "ann"],
        "",
    )
    .refused("user_not_allowed");
    roster(
        &server,
        &bob,
        &[
            "block", "set", "helper", "human", "hijacked", "--user", "ann",
        ],
        "",
    )
    .refused("user_not_allowed");
    let set = roster(
        &server,
        &ann,
        &[
            "block",
            "set",
            "helper",
            "human",
            "Name: Ann\nRole: analyst",
        ],
        "",
    )
    .ok();
    assert!(
        set.stdout
            .contains("of user:ann on agent helper: version 2"),
        "{}",
        set.stdout
    );
    let shown = roster(&server, &ann, &["block", "show", "helper", "human"], "").ok();
    assert!(shown.stdout.contains("Role: analyst"), "{}", shown.stdout);
    let edits: Vec<&str> = shown
        .stdout
        .lines()
        .filter(|l| l.contains("key:key_") || l.contains("agent:agt_"))
        .collect();
    assert_eq!(edits.len(), 2, "the run's edit and Ann's: {}", shown.stdout);
    assert!(
        edits[0].contains("replace") && edits[1].contains("set"),
        "{edits:?}"
    );

    // Sessions and memories of the other user do not exist for a key.
    let sessions = roster(&server, &ann, &["session", "list", "--json"], "").ok();
    let sessions: serde_json::Value = serde_json::from_str(&sessions.stdout).expect("json");
    let users: Vec<&str> = sessions["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|s| s["user"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(users, ["ann", "ann"]);
    let bobs = roster(&server, &bob, &["session", "list", "--json"], "").ok();
    let bobs: serde_json::Value = serde_json::from_str(&bobs.stdout).expect("json");
    let bob_session = bobs["data"][0]["id"]
        .as_str()
        .expect("bob's session")
        .to_owned();
    roster(&server, &ann, &["session", "items", &bob_session], "").refused("not_found");
    roster(
        &server,
        &bob,
        &["memory", "add", "Bob is on leave in May", "-n", "users/bob"],
        "",
    )
    .ok();
    roster(
        &server,
        &ann,
        &["memory", "add", "Bob is fired", "-n", "users/bob"],
        "",
    )
    .refused("user_not_allowed");
    let memories = roster(&server, &ann, &["memory", "list"], "").ok();
    assert!(!memories.stdout.contains("leave"), "{}", memories.stdout);

    // Adding and removing blocks makes versions and says what changed.
    let added = roster(
        &server,
        admin,
        &["block", "add", "helper", "scratch:session="],
        "",
    )
    .ok();
    assert!(
        added
            .stdout
            .contains("added block scratch (scope session) to agent helper: version 2"),
        "{}",
        added.stdout
    );
    let updated = roster(
        &server,
        admin,
        &[
            "agent",
            "update",
            "helper",
            "--add-block",
            "tone=Friendly.",
            "--remove-block",
            "scratch",
        ],
        "",
    )
    .ok();
    assert!(
        updated.stdout.contains("to version 3"),
        "{}",
        updated.stdout
    );
    assert!(
        updated.stdout.contains("removed block scratch"),
        "{}",
        updated.stdout
    );
    assert!(
        updated.stdout.contains("added block tone (scope agent)"),
        "{}",
        updated.stdout
    );
    let removed = roster(&server, admin, &["block", "remove", "helper", "tone"], "").ok();
    assert!(removed.stdout.contains("version 4"), "{}", removed.stdout);
    roster(&server, admin, &["block", "remove", "helper", "tone"], "").refused("not_found");
    let bad = roster(
        &server,
        admin,
        &["block", "add", "helper", "bad:everyone=x"],
        "",
    );
    assert!(
        !bad.ok && bad.stderr.contains("scope `everyone`"),
        "{}",
        bad.stderr
    );

    // Every edit by a person is in the audit log with its actor.
    let audit = roster(&server, admin, &["audit", "list", "--action", "block"], "").ok();
    for action in ["block.set", "block.add", "block.remove"] {
        assert!(
            audit
                .stdout
                .lines()
                .any(|l| l.contains(action) && l.contains("key:key_")),
            "{action}: {}",
            audit.stdout
        );
    }
    assert!(
        !audit.stdout.contains("analyst"),
        "values stay out of the log"
    );
}
