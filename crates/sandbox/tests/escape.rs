//! The sandbox against code that tries to get out or take the machine:
//! network, files outside the workspace, fork bombs, endless loops, endless
//! output, huge allocations, planted links. Each must fail safely, and the
//! sandbox must work normally right after.
//!
//! Needs bubblewrap (`apt-get install bubblewrap`; `.ci/run` installs it).

use roster_core::{SessionId, TenantId};
use roster_sandbox::{Language, Limits, RunOutcome, Sandbox, SandboxConfig};
use roster_testkit::escape::Probe;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Fixture {
    dir: tempfile::TempDir,
    sandbox: Arc<Sandbox>,
    tenant: TenantId,
    session: SessionId,
    limits: Limits,
}

async fn fixture() -> Option<Fixture> {
    if !roster_testkit::peers::have_bwrap() {
        return None;
    }
    let dir = tempfile::tempdir().expect("dir");
    let mut config = SandboxConfig::new(dir.path().join("workspaces"));
    config.limits = Limits {
        cpu_secs: 3,
        wall: Duration::from_secs(6),
        memory_bytes: 512 << 20,
        processes: 32,
        file_bytes: 8 << 20,
        output_bytes: 64 << 10,
    };
    let limits = config.limits.clone();
    let sandbox = Sandbox::open(config).await.expect("sandbox");
    Some(Fixture {
        dir,
        sandbox: Arc::new(sandbox),
        tenant: TenantId::generate(),
        session: SessionId::generate(),
        limits,
    })
}

impl Fixture {
    async fn run(&self, language: Language, code: &str) -> RunOutcome {
        self.sandbox
            .run(&self.tenant, &self.session, language, code, &self.limits)
            .await
            .expect("run")
    }

    async fn python(&self, code: &str) -> RunOutcome {
        self.run(Language::Python, code).await
    }

    /// The sandbox still works, promptly.
    async fn still_healthy(&self) {
        let started = Instant::now();
        let out = self.python("print(6 * 7)").await;
        assert_eq!(out.stdout.trim(), "42", "{out:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}

#[tokio::test]
async fn files_persist_between_runs_and_through_the_file_api() {
    let Some(f) = fixture().await else { return };
    let out = f
        .python("open('data.csv','w').write('city,temp\\nParis,21\\nBerlin,17\\n')\nprint('ok')")
        .await;
    assert_eq!(out.exit_code, Some(0), "{out:?}");
    let out = f
        .python("import csv\nrows=list(csv.DictReader(open('data.csv')))\nprint(max(rows,key=lambda r:int(r['temp']))['city'])")
        .await;
    assert_eq!(out.stdout.trim(), "Paris", "{out:?}");
    // Uploaded through the API side, read by code; written by code, downloaded.
    f.sandbox
        .write_file(&f.tenant, &f.session, "in/numbers.txt", b"1\n2\n3\n")
        .expect("upload");
    let out = f
        .run(Language::Javascript, "const fs=require('fs');const n=fs.readFileSync('in/numbers.txt','utf8').trim().split('\\n').map(Number);fs.writeFileSync('out.txt',String(n.reduce((a,b)=>a+b)));console.log('done')")
        .await;
    assert_eq!(out.stdout.trim(), "done", "{out:?}");
    let bytes = f
        .sandbox
        .read_file(&f.tenant, &f.session, "out.txt")
        .expect("download");
    assert_eq!(bytes, b"6");
    let listed: Vec<String> = f
        .sandbox
        .list_files(&f.tenant, &f.session)
        .expect("list")
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(listed, ["data.csv", "in/numbers.txt", "out.txt"]);
    f.sandbox
        .delete_file(&f.tenant, &f.session, "out.txt")
        .expect("delete");
    // A shell works too, in the same directory.
    let out = f.run(Language::Shell, "ls | sort | tr '\\n' ' '").await;
    assert_eq!(out.stdout.trim(), "data.csv in", "{out:?}");
}

/// The shared escape probe (roster-testkit), as stdio MCP servers run it
/// too: no network, not even the host's loopback; nothing of the data
/// directory or another session; no writes outside the workspace; no host
/// process or environment.
#[tokio::test]
async fn the_escape_probe_is_walled_in() {
    let Some(f) = fixture().await else { return };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let other = SessionId::generate();
    f.sandbox
        .write_file(&f.tenant, &other, "secret.txt", b"other session")
        .expect("other");
    std::fs::write(f.dir.path().join("roster.db"), "database").expect("db");
    let workspaces = f.dir.path().join("workspaces");
    let probe = Probe {
        loopback_port: listener.local_addr().expect("addr").port(),
        secret_files: vec![
            f.dir.path().join("roster.db"),
            workspaces
                .join(f.tenant.as_str())
                .join(other.as_str())
                .join("secret.txt"),
            "/etc/shadow".into(),
            "/etc/passwd".into(),
        ],
        hidden_dirs: vec![
            f.dir.path().to_path_buf(),
            workspaces.join(f.tenant.as_str()),
            "/root".into(),
            "/home".into(),
        ],
        allowed_env: Vec::new(),
    };
    let out = f.python(&probe.program()).await;
    probe.assert_walled(&out.stdout);
    assert!(!std::path::Path::new("/usr/pwned").exists());
    let out = f.python("import os\nprint(sorted(os.listdir('.')))").await;
    assert_eq!(out.stdout.trim(), "[]", "{out:?}");
    f.still_healthy().await;
}

#[tokio::test]
async fn a_fork_bomb_is_contained() {
    let Some(f) = fixture().await else { return };
    let started = Instant::now();
    let out = f
        .run(
            Language::Shell,
            "b() { b | b & }; b; sleep 1; echo survived",
        )
        .await;
    assert!(started.elapsed() < Duration::from_secs(10), "{out:?}");
    let out = f
        .python("import os\nn=0\ntry:\n    while True:\n        if os.fork()==0:\n            import time; time.sleep(5); os._exit(0)\n        n+=1\nexcept OSError:\n    print('fork refused after', n)\n")
        .await;
    assert!(out.stdout.contains("fork refused after"), "{out:?}");
    let n: u64 = out
        .stdout
        .split_whitespace()
        .last()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    assert!(n < 200, "{n} processes");
    f.still_healthy().await;
}

#[tokio::test]
async fn endless_loops_and_sleeps_are_killed() {
    let Some(f) = fixture().await else { return };
    let started = Instant::now();
    let out = f.python("while True:\n    pass\n").await;
    assert_ne!(out.exit_code, Some(0), "{out:?}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "CPU limit: {out:?}"
    );
    let started = Instant::now();
    let out = f.run(Language::Shell, "sleep 600").await;
    assert!(out.timed_out, "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(9));
    // A child left running in the background dies with the sandbox.
    let out = f.run(Language::Shell, "(sleep 600 &) ; echo started").await;
    assert_eq!(out.stdout.trim(), "started", "{out:?}");
    f.still_healthy().await;
}

#[tokio::test]
async fn endless_output_is_cut_and_stopped() {
    let Some(f) = fixture().await else { return };
    let started = Instant::now();
    let out = f.run(Language::Shell, "yes 'gigabytes of output'").await;
    assert!(out.output_cut, "{}", out.stdout.len());
    assert!(out.stdout.len() <= 64 << 10);
    assert!(started.elapsed() < Duration::from_secs(8));
    let out = f
        .python("import sys\nwhile True:\n    sys.stderr.write('x' * 65536)\n")
        .await;
    assert!(out.output_cut);
    // A file may not outgrow its limit either.
    let out = f
        .python("open('big.bin','wb').write(b'0' * (64 << 20))\nprint('WROTE')")
        .await;
    assert!(!out.stdout.contains("WROTE"), "{out:?}");
    f.still_healthy().await;
}

#[tokio::test]
async fn memory_is_bounded() {
    let Some(f) = fixture().await else { return };
    let out = f
        .python("try:\n    x = bytearray(2 << 30)\n    print('ALLOCATED')\nexcept MemoryError:\n    print('refused')\n")
        .await;
    assert!(!out.stdout.contains("ALLOCATED"), "{out:?}");
    let out = f
        .run(
            Language::Javascript,
            "const keep = []; while (true) keep.push(new Array(1e6).fill(1.5)); ",
        )
        .await;
    assert_ne!(out.exit_code, Some(0), "{out:?}");
    f.still_healthy().await;
}

#[tokio::test]
async fn planted_links_do_not_leak_host_files_through_the_api() {
    let Some(f) = fixture().await else { return };
    let out = f
        .run(
            Language::Shell,
            "ln -s /etc/hostname leak && ln -s / root && mkdir d && ln -s /etc d/etc && echo ok",
        )
        .await;
    assert_eq!(out.stdout.trim(), "ok", "{out:?}");
    for path in ["leak", "root/etc/hostname", "d/etc/passwd"] {
        assert!(
            f.sandbox.read_file(&f.tenant, &f.session, path).is_err(),
            "{path}"
        );
        assert!(
            f.sandbox
                .write_file(&f.tenant, &f.session, path, b"x")
                .is_err(),
            "{path}"
        );
    }
    for path in ["../escape", "/etc/passwd", ""] {
        assert!(f.sandbox.read_file(&f.tenant, &f.session, path).is_err());
    }
    // Links are not listed as files.
    let listed = f.sandbox.list_files(&f.tenant, &f.session).expect("list");
    assert!(listed.is_empty(), "{listed:?}");
}
