//! `roster chat AGENT`: a session, then one streamed run per line of input.
//!
//! The model's text goes to stdout as it streams; tool calls, results and
//! run errors go to stderr (dimmed on a terminal), so `roster chat a < in >
//! out` leaves only the answers in `out`, one per line.

use super::api_client::{decode, root_cause, Client};
use super::output::{one_line, Style};
use super::Connection;
use anyhow::{anyhow, bail, Context, Result};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use reqwest::Method;
use roster_core::agent::Agent;
use roster_core::event::RunEvent;
use roster_core::item::ItemContent;
use roster_core::run::{RunError, RunStatus};
use roster_core::RunId;
use roster_store::Session;
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(clap::Args)]
pub struct ChatArgs {
    #[command(flatten)]
    conn: Connection,
    /// Agent name or id.
    agent: String,
    /// Continue this session instead of starting a new one.
    #[arg(long, value_name = "ID")]
    session: Option<String>,
    /// Who the new session works for (their `user` blocks and `users/{user}`
    /// memories follow them): a service or admin key names one; a key bound
    /// to a user makes its own user's sessions without it.
    #[arg(long, value_name = "ID", conflicts_with = "session")]
    user: Option<String>,
    /// What each message does if the session has a run in progress (another
    /// client's): `queue`, `reject`, `interrupt` or `rollback`; unset, the
    /// agent's default.
    #[arg(long, value_name = "POLICY", value_parser = ["queue", "reject", "interrupt", "rollback"])]
    if_busy: Option<String>,
    /// A webhook (`whk_…`) told when each message's run finishes
    /// (repeatable).
    #[arg(long = "notify", value_name = "WEBHOOK")]
    notify: Vec<String>,
}

/// Tool calls and results are cut to this many characters.
const SHOWN_CHARS: usize = 200;
/// The server sends a keep-alive every 15 s; silence this long means the
/// stream is dead.
const IDLE_LIMIT: Duration = Duration::from_secs(60);
/// Reconnection attempts when a run's stream breaks before it finished.
const RECONNECTS: u32 = 5;

pub async fn run(args: ChatArgs) -> Result<()> {
    let client = Client::new(&args.conn)?;
    let agent: Agent = decode(client.get(&["v1", "agents", &args.agent], &[]).await?)?;
    let session: Session = match &args.session {
        Some(id) => {
            let session: Session = decode(client.get(&["v1", "sessions", id], &[]).await?)?;
            if session.agent_id != agent.id {
                bail!(
                    "session {} belongs to agent {}, not to {} ({})",
                    session.id,
                    session.agent_id,
                    agent.name,
                    agent.id
                );
            }
            session
        }
        None => decode(
            client
                .post(
                    &["v1", "sessions"],
                    &json!({"agent": agent.id, "user": args.user}),
                )
                .await?,
        )?,
    };
    let interactive = std::io::stdin().is_terminal();
    let style = Style::for_stderr();
    eprintln!(
        "{}",
        style.dim(&format!(
            "session {} (agent {} version {}){}",
            session.id,
            agent.name,
            session.agent_version,
            if interactive {
                "; /exit or Ctrl-D to quit"
            } else {
                ""
            }
        ))
    );

    let mut lines = stdin_lines();
    let (mut sent, mut failed) = (0usize, 0usize);
    loop {
        if interactive {
            eprint!("> ");
            let _ = std::io::stderr().flush();
        }
        let line = tokio::select! {
            line = lines.recv() => line,
            () = interrupted(interactive) => None,
        };
        let Some(line) = line else {
            // Leave the terminal's prompt on a line of its own.
            if interactive {
                eprintln!();
            }
            break;
        };
        let line = line.context("cannot read stdin")?;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if text == "/exit" {
            break;
        }
        sent += 1;
        let turn = Turn {
            client: &client,
            style,
            interactive,
            if_busy: args.if_busy.as_deref(),
            notify: &args.notify,
        };
        match turn.send(session.id.as_str(), text).await {
            Ok(true) => {}
            Ok(false) => failed += 1,
            Err(e) => {
                failed += 1;
                let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
                eprintln!("error: {}", chain.join(": "));
            }
        }
    }
    // A script feeding stdin learns that something went wrong; a person at
    // the terminal has already seen each error.
    if failed > 0 && !interactive {
        bail!("{failed} of {sent} messages failed");
    }
    Ok(())
}

/// Lines of stdin from a plain thread: a read blocked on a terminal can't be
/// cancelled, and this way it doesn't hold up the process's exit.
fn stdin_lines() -> mpsc::Receiver<std::io::Result<String>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::stdin().lock().lines() {
            let stop = line.is_err();
            if tx.blocking_send(line).is_err() || stop {
                break;
            }
        }
    });
    rx
}

/// Resolves on Ctrl-C, only at a terminal: in a pipe Ctrl-C keeps its
/// default meaning (end the process).
async fn interrupted(enabled: bool) {
    if enabled && tokio::signal::ctrl_c().await.is_ok() {
        return;
    }
    std::future::pending::<()>().await;
}

struct Turn<'a> {
    client: &'a Client,
    style: Style,
    interactive: bool,
    if_busy: Option<&'a str>,
    notify: &'a [String],
}

/// How a run ended, from its `run_finished` event.
struct Finish {
    status: RunStatus,
    output: Option<String>,
    error: Option<RunError>,
}

/// What has been seen of one run's stream so far.
#[derive(Default)]
struct Progress {
    run: Option<RunId>,
    last_seq: Option<i64>,
    /// Deltas printed since the last assistant message item.
    streamed: String,
    /// Any of the model's text printed during this run.
    printed_text: bool,
    /// stdout has text after its last newline.
    mid_line: bool,
    cancel_sent: bool,
}

enum StreamEnd {
    Finished(Finish),
    /// The stream ended or broke before `run_finished`.
    Broken(anyhow::Error),
    /// Ctrl-C twice: stop waiting for this run.
    Abandoned,
}

impl Turn<'_> {
    /// Posts one message and prints the run as it streams. `Ok(false)` when
    /// the run did not complete (its error is already printed).
    async fn send(&self, session: &str, text: &str) -> Result<bool> {
        let mut body = json!({"content": text, "stream": true});
        if let Some(policy) = self.if_busy {
            body["if_busy"] = json!(policy);
        }
        if !self.notify.is_empty() {
            body["notify"] = json!(self.notify);
        }
        let response = self
            .client
            .stream(
                Method::POST,
                &["v1", "sessions", session, "messages"],
                Some(&body),
                None,
            )
            .await?;
        let mut progress = Progress::default();
        let mut end = self.follow(response, &mut progress).await;
        let mut attempts = 0;
        while let StreamEnd::Broken(error) = &end {
            let Some(run) = progress.run.clone() else {
                break;
            };
            if attempts == RECONNECTS {
                break;
            }
            attempts += 1;
            self.note(
                &mut progress,
                &format!("(stream interrupted: {error}; reconnecting)"),
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
            end = match self
                .client
                .stream(
                    Method::GET,
                    &["v1", "runs", run.as_str(), "events"],
                    None,
                    progress.last_seq,
                )
                .await
            {
                Ok(response) => self.follow(response, &mut progress).await,
                Err(e) => StreamEnd::Broken(e),
            };
        }
        end_line(&mut progress);
        let suffix = progress
            .run
            .as_ref()
            .map(|r| format!(" (run {r})"))
            .unwrap_or_default();
        match end {
            StreamEnd::Broken(error) => Err(error.context(format!(
                "the run's event stream ended before the run finished{suffix}"
            ))),
            StreamEnd::Abandoned => {
                eprintln!("error: stopped waiting for the run{suffix}");
                Ok(false)
            }
            StreamEnd::Finished(finish) => match finish.status {
                RunStatus::Completed => {
                    if !progress.printed_text {
                        if let Some(output) = finish.output.filter(|o| !o.is_empty()) {
                            println!("{output}");
                        }
                    }
                    Ok(true)
                }
                status => {
                    match finish.error {
                        Some(e) => eprintln!("error: {}: {}{suffix}", e.code, e.message),
                        None => eprintln!("error: run {}{suffix}", status.as_str()),
                    }
                    Ok(false)
                }
            },
        }
    }

    /// Reads one SSE response until `run_finished`, printing as it goes.
    async fn follow(&self, response: reqwest::Response, progress: &mut Progress) -> StreamEnd {
        let mut events = response.bytes_stream().eventsource();
        loop {
            let next = tokio::select! {
                next = tokio::time::timeout(IDLE_LIMIT, events.next()) => next,
                () = interrupted(self.interactive) => {
                    match progress.run.clone() {
                        Some(run) if !progress.cancel_sent => {
                            progress.cancel_sent = true;
                            self.cancel(progress, &run).await;
                            continue;
                        }
                        _ => return StreamEnd::Abandoned,
                    }
                }
            };
            let event = match next {
                Err(_) => {
                    return StreamEnd::Broken(anyhow!(
                        "nothing received for {}s",
                        IDLE_LIMIT.as_secs()
                    ))
                }
                Ok(None) => return StreamEnd::Broken(anyhow!("the server closed the stream")),
                Ok(Some(Err(e))) => return StreamEnd::Broken(anyhow!(stream_error(&e))),
                Ok(Some(Ok(event))) => event,
            };
            if let Ok(seq) = event.id.trim().parse::<i64>() {
                progress.last_seq = Some(seq);
            }
            // Unknown events (a newer server) are skipped.
            let Ok(run_event) = serde_json::from_str::<RunEvent>(&event.data) else {
                continue;
            };
            if let Some(finish) = self.show(run_event, progress) {
                return StreamEnd::Finished(finish);
            }
        }
    }

    /// Prints one event; returns the finish when the run is over.
    fn show(&self, event: RunEvent, progress: &mut Progress) -> Option<Finish> {
        match event {
            RunEvent::RunQueued { run_id } => {
                if progress.run.is_none() {
                    progress.run = run_id;
                }
            }
            RunEvent::RunStarted | RunEvent::RunRetried { .. } | RunEvent::WaitEnded { .. } => {}
            RunEvent::Waiting { wait } => {
                let line = format!(
                    "  … waiting for {}: {} failed attempts ({}); next attempt at {} UTC, gives up at {} UTC",
                    wait.waiting_for,
                    wait.attempts,
                    wait.last_error.code,
                    super::output::time(&wait.next_attempt_at),
                    super::output::time(&wait.gives_up_at)
                );
                self.note(progress, &line);
            }
            RunEvent::TextDelta { delta, .. } => {
                print_text(progress, &delta);
                progress.streamed.push_str(&delta);
            }
            RunEvent::TextReset { .. } => {
                // What streamed so far is void; the answer comes again.
                if !progress.streamed.is_empty() {
                    progress.streamed.clear();
                    self.note(progress, "  (the model call failed mid-answer; retrying)");
                }
            }
            RunEvent::ToolCall {
                name, arguments, ..
            } => {
                let line = format!("  → tool {name} {}", one_line(&arguments, SHOWN_CHARS));
                self.note(progress, &line);
            }
            RunEvent::ToolResult {
                output, is_error, ..
            } => {
                let label = if is_error { "error" } else { "result" };
                let line = format!("  ← {label}: {}", one_line(&output, SHOWN_CHARS));
                self.note(progress, &line);
            }
            RunEvent::ApprovalRequested {
                name,
                approval,
                reason,
                ..
            } => {
                let line = format!(
                    "  ⏸ {name} needs approval ({reason}); waiting. Approve with `roster approvals approve {approval}` or deny with `roster approvals deny {approval}`"
                );
                self.note(progress, &line);
            }
            RunEvent::Item { item, .. } => {
                if progress.run.is_none() {
                    progress.run.clone_from(&item.run_id);
                }
                if let ItemContent::AssistantMessage { text, .. } = &item.content {
                    // Text that did not stream (a provider without
                    // streaming, or deltas sent before we listened).
                    let streamed = std::mem::take(&mut progress.streamed);
                    if let Some(rest) = text.strip_prefix(streamed.as_str()) {
                        print_text(progress, rest);
                    } else {
                        // Part of the stream was lost (a reconnect): what was
                        // shown is not the answer, so show the answer whole.
                        self.note(
                            progress,
                            "  (part of the streamed text was lost; the whole answer follows)",
                        );
                        print_text(progress, text);
                    }
                }
            }
            RunEvent::RunFinished {
                status,
                output,
                error,
            } => {
                return Some(Finish {
                    status,
                    output,
                    error,
                })
            }
        }
        None
    }

    /// A line on stderr, after ending any half-printed line of text.
    fn note(&self, progress: &mut Progress, line: &str) {
        end_line(progress);
        eprintln!("{}", self.style.dim(line));
    }

    async fn cancel(&self, progress: &mut Progress, run: &RunId) {
        self.note(
            progress,
            "(cancelling the run; Ctrl-C again to stop waiting)",
        );
        if let Err(e) = self
            .client
            .post(&["v1", "runs", run.as_str(), "cancel"], &json!({}))
            .await
        {
            self.note(progress, &format!("(cannot cancel: {e})"));
        }
    }
}

fn print_text(progress: &mut Progress, text: &str) {
    if text.is_empty() {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
    progress.printed_text = true;
    progress.mid_line = !text.ends_with('\n');
}

fn end_line(progress: &mut Progress) {
    if progress.mid_line {
        println!();
        progress.mid_line = false;
    }
}

fn stream_error<E: std::error::Error + 'static>(
    e: &eventsource_stream::EventStreamError<E>,
) -> String {
    match e {
        eventsource_stream::EventStreamError::Transport(inner) => root_cause(inner),
        other => one_line(&other.to_string(), 200),
    }
}
