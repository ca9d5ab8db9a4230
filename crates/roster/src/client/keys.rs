//! `roster tenant create|list` and `roster key create|list|show|revoke`.

use super::api_client::Client;
use super::output::{print_json, table};
use super::Connection;
use anyhow::{anyhow, Result};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

#[derive(clap::Args)]
pub struct TenantArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: TenantCommand,
}

#[derive(clap::Subcommand)]
enum TenantCommand {
    /// Create a tenant (admin key only).
    Create {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// List tenants (admin key only).
    List {
        #[arg(long)]
        json: bool,
    },
}

pub async fn tenant(args: TenantArgs) -> Result<()> {
    let client = Client::new(&args.conn)?;
    match args.command {
        TenantCommand::Create { name, json } => {
            let created = client
                .post(&["v1", "tenants"], &json!({ "name": name }))
                .await?;
            if json {
                print_json(&created)?;
            } else {
                println!(
                    "created tenant {} ({})",
                    created["name"].as_str().unwrap_or_default(),
                    created["id"].as_str().unwrap_or_default()
                );
            }
        }
        TenantCommand::List { json } => {
            let list = client.get(&["v1", "tenants"], &[]).await?;
            if json {
                return print_json(&list);
            }
            let rows: Vec<Vec<String>> = list["data"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|t| vec![text(&t["name"]), text(&t["id"]), text(&t["created_at"])])
                .collect();
            print!("{}", table(&["NAME", "ID", "CREATED"], &rows));
        }
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct KeyArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(clap::Subcommand)]
enum KeyCommand {
    /// Create a key; it is printed once and never shown again.
    Create {
        /// Who or what holds the key.
        name: String,
        /// Tenant id or name (default: the caller's; another needs the admin key).
        #[arg(long)]
        tenant: Option<String>,
        /// `user` (default) or `service`.
        #[arg(long)]
        kind: Option<String>,
        /// The user a user key acts as (its sessions and `users/USER`
        /// memories); without it the key acts for no user.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// The users a service key may act for (comma-separated or
        /// repeated); default any.
        #[arg(long = "act-for", value_delimiter = ',', value_name = "USER")]
        act_for: Vec<String>,
        /// AREA:read or AREA:write (comma-separated or repeated); default all.
        #[arg(long = "scope", value_delimiter = ',', value_name = "SCOPE")]
        scopes: Vec<String>,
        /// When the key stops working, RFC 3339 (2027-01-31T00:00:00Z).
        #[arg(long, conflicts_with = "expires_in")]
        expires_at: Option<DateTime<Utc>>,
        /// How long the key works: 90s, 30m, 12h or 7d.
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List the tenant's keys, revoked and expired ones included.
    List {
        /// Another tenant's keys (admin key only).
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one key (never the key itself).
    Show { id: String },
    /// Revoke a key: it stops working at once.
    Revoke { id: String },
}

/// `90s`, `30m`, `12h`, `7d`.
fn parse_duration(raw: &str) -> Result<chrono::Duration> {
    let (number, unit) = raw.split_at(raw.len().saturating_sub(1));
    let n: i64 = number.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
        anyhow!("--expires-in `{raw}` is not a duration like 90s, 30m, 12h or 7d")
    })?;
    let seconds = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(anyhow!("--expires-in `{raw}` needs a unit: s, m, h or d")),
    };
    chrono::Duration::try_seconds(seconds)
        .ok_or_else(|| anyhow!("--expires-in `{raw}` is too long"))
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Who a key acts for: a user key's user, a service key's users.
fn acts_for(key: &Value) -> String {
    match (
        key["kind"].as_str(),
        key["user"].as_str(),
        key["act_for"].as_array(),
    ) {
        (_, _, _) if key["admin"] == Value::Bool(true) => "anyone".to_owned(),
        (Some("service"), _, None) => "any user".to_owned(),
        (Some("service"), _, Some(users)) if users.is_empty() => "no user".to_owned(),
        (Some("service"), _, Some(users)) => users.iter().map(text).collect::<Vec<_>>().join(","),
        (_, Some(user), _) => user.to_owned(),
        _ => "no user".to_owned(),
    }
}

fn scopes_text(key: &Value) -> String {
    match key["scopes"].as_array() {
        None => "all".to_owned(),
        Some(list) => list.iter().map(text).collect::<Vec<_>>().join(","),
    }
}

pub async fn key(args: KeyArgs) -> Result<()> {
    let client = Client::new(&args.conn)?;
    match args.command {
        KeyCommand::Create {
            name,
            tenant,
            kind,
            user,
            act_for,
            scopes,
            expires_at,
            expires_in,
            json,
        } => {
            let mut body = json!({ "name": name });
            if let Some(tenant) = tenant {
                body["tenant"] = json!(tenant);
            }
            if let Some(kind) = kind {
                body["kind"] = json!(kind);
            }
            if let Some(user) = user {
                body["user"] = json!(user);
            }
            if !act_for.is_empty() {
                body["act_for"] = json!(act_for);
            }
            if !scopes.is_empty() {
                body["scopes"] = json!(scopes);
            }
            let expires_at = match expires_in {
                Some(raw) => Some(Utc::now() + parse_duration(&raw)?),
                None => expires_at,
            };
            if let Some(at) = expires_at {
                body["expires_at"] = json!(at);
            }
            let created = client.post(&["v1", "keys"], &body).await?;
            if json {
                return print_json(&created);
            }
            println!(
                "created key {} for {} (tenant {}, acts for: {}, scopes: {}, expires: {})",
                text(&created["id"]),
                text(&created["name"]),
                text(&created["tenant"]),
                acts_for(&created),
                scopes_text(&created),
                text(&created["expires_at"]),
            );
            println!("{}", text(&created["key"]));
            eprintln!("the key is shown once; store it now");
        }
        KeyCommand::List { tenant, json } => {
            let query: Vec<(&str, String)> = tenant.map(|t| ("tenant", t)).into_iter().collect();
            let list = client.get(&["v1", "keys"], &query).await?;
            if json {
                return print_json(&list);
            }
            let rows: Vec<Vec<String>> = list["data"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|k| {
                    vec![
                        text(&k["id"]),
                        text(&k["name"]),
                        text(&k["kind"]),
                        acts_for(k),
                        text(&k["status"]),
                        scopes_text(k),
                        text(&k["expires_at"]),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &["ID", "NAME", "KIND", "ACTS FOR", "STATUS", "SCOPES", "EXPIRES"],
                    &rows
                )
            );
        }
        KeyCommand::Show { id } => {
            print_json(&client.get(&["v1", "keys", &id], &[]).await?)?;
        }
        KeyCommand::Revoke { id } => {
            client.delete(&["v1", "keys", &id]).await?;
            println!("revoked key {id}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_parse_with_their_unit() {
        assert_eq!(
            super::parse_duration("90s").ok(),
            chrono::Duration::try_seconds(90)
        );
        assert_eq!(
            super::parse_duration("2d").ok(),
            chrono::Duration::try_seconds(172_800)
        );
        assert!(super::parse_duration("12").is_err());
        assert!(super::parse_duration("-3h").is_err());
        assert!(super::parse_duration("h").is_err());
    }
}
