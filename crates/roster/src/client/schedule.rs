//! `roster schedule add|list|show|pause|resume|remove`.

use super::api_client::Client;
use super::output::{one_line, print_json, table, time};
use super::Connection;
use anyhow::{bail, Result};
use serde_json::{json, Value};

#[derive(clap::Args)]
pub struct ScheduleArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: ScheduleCommand,
}

#[derive(clap::Subcommand)]
enum ScheduleCommand {
    /// Wake an agent at set times with a set message.
    Add {
        /// Agent name or id.
        agent: String,
        /// `min hour dom month dow` (or six fields with seconds first),
        /// e.g. `0 9 * * mon-fri`.
        #[arg(long, conflicts_with = "at", required_unless_present = "at")]
        cron: Option<String>,
        /// One moment instead, RFC 3339 (e.g. `2027-01-04T09:00:00+01:00`).
        #[arg(long)]
        at: Option<String>,
        /// IANA time zone the cron expression is read in (default UTC).
        #[arg(long = "tz", value_name = "ZONE")]
        timezone: Option<String>,
        /// The message each firing sends.
        #[arg(long)]
        input: String,
        /// Send every firing to this session (default: a new one each time).
        #[arg(long, value_name = "ID")]
        session: Option<String>,
        /// Fire times missed while the server was down: `skip`, `once`
        /// (default) or `all`.
        #[arg(long, value_parser = ["skip", "once", "all"])]
        catch_up: Option<String>,
        /// Make it paused.
        #[arg(long)]
        paused: bool,
        /// A webhook (`whk_…`) told when each firing's run finishes
        /// (repeatable).
        #[arg(long = "notify", value_name = "WEBHOOK")]
        notify: Vec<String>,
    },
    /// List schedules (of one agent with --agent).
    List {
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// A schedule, its next fire times and its latest firings.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Stop firing until resumed.
    Pause { id: String },
    /// Fire again, from the next time after now.
    Resume { id: String },
    /// Delete a schedule (its runs stay).
    Remove { id: String },
}

pub async fn schedule(args: ScheduleArgs) -> Result<()> {
    let client = Client::new(&args.conn)?;
    match args.command {
        ScheduleCommand::Add {
            agent,
            cron,
            at,
            timezone,
            input,
            session,
            catch_up,
            paused,
            notify,
        } => {
            let mut body =
                json!({"agent": agent, "input": input, "paused": paused, "notify": notify});
            for (field, value) in [
                ("cron", cron),
                ("at", at),
                ("timezone", timezone),
                ("session", session),
                ("catch_up", catch_up),
            ] {
                if let Some(value) = value {
                    body[field] = json!(value);
                }
            }
            let made = client.post(&["v1", "schedules"], &body).await?;
            print!("{}", render(&made, &[]));
            Ok(())
        }
        ScheduleCommand::List { agent, json } => {
            let query: Vec<(&str, String)> = agent.into_iter().map(|a| ("agent", a)).collect();
            let value = client.get(&["v1", "schedules"], &query).await?;
            if json {
                return print_json(&value);
            }
            let rows: Vec<Vec<String>> = value["data"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|s| {
                    vec![
                        text(&s["id"]),
                        text(&s["agent"]),
                        timing(s),
                        if s["paused"] == true {
                            "paused".to_owned()
                        } else {
                            next(s)
                        },
                        one_line(&text(&s["input"]), 40),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("no schedules");
            } else {
                print!(
                    "{}",
                    table(&["ID", "AGENT", "WHEN", "NEXT", "INPUT"], &rows)
                );
            }
            Ok(())
        }
        ScheduleCommand::Show { id, json } => {
            let value = client.get(&["v1", "schedules", &id], &[]).await?;
            if json {
                return print_json(&value);
            }
            let firings = value["firings"].as_array().cloned().unwrap_or_default();
            print!("{}", render(&value, &firings));
            Ok(())
        }
        ScheduleCommand::Pause { id } => {
            let value = client
                .post(&["v1", "schedules", &id, "pause"], &json!({}))
                .await?;
            println!("schedule {}: paused", text(&value["id"]));
            Ok(())
        }
        ScheduleCommand::Resume { id } => {
            let value = client
                .post(&["v1", "schedules", &id, "resume"], &json!({}))
                .await?;
            println!(
                "schedule {}: resumed, next {}",
                text(&value["id"]),
                next(&value)
            );
            Ok(())
        }
        ScheduleCommand::Remove { id } => {
            if id.trim().is_empty() {
                bail!("give the schedule's id");
            }
            client.delete(&["v1", "schedules", &id]).await?;
            println!("schedule {id}: removed");
            Ok(())
        }
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn timing(s: &Value) -> String {
    match s["cron"].as_str() {
        Some(cron) => format!("{cron} ({})", text(&s["timezone"])),
        None => format!("at {}", text(&s["at"])),
    }
}

fn next(s: &Value) -> String {
    s["next_fire_times"]
        .get(0)
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or_else(
            || "none".to_owned(),
            |t| format!("{} UTC", time(&t.with_timezone(&chrono::Utc))),
        )
}

fn render(s: &Value, firings: &[Value]) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: String| out.push_str(&format!("{label:<10} {value}\n"));
    line("schedule", text(&s["id"]));
    line("agent", text(&s["agent"]));
    line("when", timing(s));
    line("input", one_line(&text(&s["input"]), 200));
    line(
        "session",
        s["session_id"]
            .as_str()
            .map_or_else(|| "a new one per firing".to_owned(), str::to_owned),
    );
    line("catch-up", text(&s["catch_up"]));
    line(
        "status",
        if s["paused"] == true {
            "paused".into()
        } else {
            "active".into()
        },
    );
    line(
        "fired",
        format!("{} time(s)", s["fired_count"].as_i64().unwrap_or(0)),
    );
    let upcoming: Vec<String> = s["next_fire_times"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    line(
        "next",
        if upcoming.is_empty() {
            "none".into()
        } else {
            upcoming.join(", ")
        },
    );
    if !firings.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = firings
            .iter()
            .map(|f| {
                vec![
                    text(&f["fire_at"]),
                    text(&f["outcome"]),
                    f["run_id"].as_str().unwrap_or("-").to_owned(),
                    one_line(f["detail"].as_str().unwrap_or(""), 60),
                ]
            })
            .collect();
        out.push_str(&table(&["FIRE TIME", "OUTCOME", "RUN", "DETAIL"], &rows));
    }
    out
}
