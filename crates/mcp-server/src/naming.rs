//! Tool names for agents: `ask_NAME`, valid and distinct.
//!
//! MCP allows 1-128 of `A-Za-z0-9_-.` in a tool name, but the clients that
//! hand our tools on to a model meet the model APIs' stricter rule (1-64 of
//! `A-Za-z0-9_-`, no dot), so names keep to that. A valid agent name gives
//! the same `ask_NAME` an agent's delegation tool has
//! (`roster_core::delegation::ask_tool_name`): `.` becomes `_`, and a name
//! too long is cut and ends with a hash of the whole name.
//!
//! Two agents must never share a tool name, and a name should not move
//! when other agents come and go: an agent whose name is its own tool name
//! (`ask_` + the name, untouched) always has it; only an agent whose name
//! had to change (`a.b` beside `a_b`) takes a hash of its name, then a
//! counter, until its tool name is free.

use std::collections::HashSet;

/// Every agent tool starts with this; no other tool does.
pub(crate) const ASK_PREFIX: &str = "ask_";

/// Longest tool name handed out (the model APIs' limit).
const MAX_LEN: usize = 64;

/// The tool name of each agent, in the order of `names`. Give them in a
/// stable order (oldest agent first) so the rare counter suffix stays put.
pub(crate) fn agent_tool_names<S: AsRef<str>>(names: &[S]) -> Vec<String> {
    let mut out: Vec<Option<String>> = vec![None; names.len()];
    let mut taken = HashSet::with_capacity(names.len());
    // Names that are their own tool name claim it first (the mapping is
    // the identity on them, so only a repeated name — rows from before
    // names were checked — finds it taken).
    for (slot, name) in out.iter_mut().zip(names) {
        if let Some(verbatim) = verbatim(name.as_ref()) {
            if taken.insert(verbatim.clone()) {
                *slot = Some(verbatim);
            }
        }
    }
    for (slot, name) in out.iter_mut().zip(names) {
        if slot.is_some() {
            continue;
        }
        let name = name.as_ref();
        let base = candidate(name);
        let mut choice = base.clone();
        if taken.contains(&choice) {
            choice = with_suffix(&base, &format!("{:08x}", fnv(name)));
        }
        let mut counter = 2u32;
        while taken.contains(&choice) {
            choice = with_suffix(&base, &counter.to_string());
            counter += 1;
        }
        taken.insert(choice.clone());
        *slot = Some(choice);
    }
    out.into_iter().flatten().collect()
}

/// `ask_NAME` when NAME needs no change and fits.
fn verbatim(name: &str) -> Option<String> {
    let fits = !name.is_empty() && ASK_PREFIX.len() + name.len() <= MAX_LEN;
    (fits && name.bytes().all(allowed)).then(|| format!("{ASK_PREFIX}{name}"))
}

/// `ask_` + the name with every other character made `_`, cut to fit with
/// a hash of the whole name (as `ask_tool_name` does).
fn candidate(name: &str) -> String {
    let plain: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() && allowed(c as u8) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let plain = if plain.is_empty() { "_".into() } else { plain };
    let full = format!("{ASK_PREFIX}{plain}");
    if full.len() <= MAX_LEN {
        return full;
    }
    with_suffix(&full, &format!("{:08x}", fnv(name)))
}

/// `base` cut so that `_SUFFIX` fits, then `_SUFFIX`. `base` is ASCII, so
/// any byte is a character boundary.
fn with_suffix(base: &str, suffix: &str) -> String {
    let keep = MAX_LEN.saturating_sub(suffix.len() + 1).min(base.len());
    format!("{}_{suffix}", &base[..keep])
}

fn allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// FNV-1a, 32 bits of it: stable across builds and platforms (the same
/// hash `ask_tool_name` uses), unlike std's hasher.
fn fnv(name: &str) -> u32 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    hash as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(tool: &str) -> bool {
        !tool.is_empty() && tool.len() <= MAX_LEN && tool.bytes().all(allowed)
    }

    #[test]
    fn valid_agent_names_get_their_delegation_tool_name() {
        let long = "x".repeat(64);
        let dotted = "support.eu-1";
        for name in ["helper", "Helper_2", "a-b", dotted, long.as_str()] {
            roster_core::agent::validate_agent_name(name).expect("a valid agent name");
            let ours = agent_tool_names(&[name]);
            assert_eq!(
                ours,
                [roster_core::delegation::ask_tool_name(name)],
                "{name}"
            );
            assert!(valid(&ours[0]), "{ours:?}");
        }
    }

    #[test]
    fn an_agent_named_like_its_tool_keeps_it_whatever_comes_first() {
        for names in [["a.b", "a_b"], ["a_b", "a.b"]] {
            let tools = agent_tool_names(&names);
            let of = |n: &str| tools[names.iter().position(|x| *x == n).expect("listed")].clone();
            assert_eq!(of("a_b"), "ask_a_b");
            assert_eq!(of("a.b"), format!("ask_a_b_{:08x}", fnv("a.b")));
        }
    }

    #[test]
    fn names_that_are_not_tool_names_are_made_valid() {
        let tools = agent_tool_names(&["", "café au lait", "a/b c", "日本"]);
        assert_eq!(tools[1], "ask_caf__au_lait");
        assert_eq!(tools[2], "ask_a_b_c");
        assert_eq!(tools[3], "ask___");
        for tool in &tools {
            assert!(valid(tool), "{tool}");
        }
    }

    #[test]
    fn two_agents_never_share_a_tool_name() {
        // Names built to collide at every step: the same sanitised form,
        // one already holding another's hashed form, long ones sharing a
        // prefix, and repeats (as rows from before names were checked).
        let hashed = format!("a_b_{:08x}", fnv("a.b"));
        let long_a = format!("{}a", "y".repeat(70));
        let long_b = format!("{}b", "y".repeat(70));
        let names = vec![
            "a.b".to_owned(),
            "a_b".to_owned(),
            "a b".to_owned(),
            "a,b".to_owned(),
            hashed,
            long_a.clone(),
            long_b,
            long_a,
            "dup".into(),
            "dup".into(),
        ];
        let tools = agent_tool_names(&names);
        assert_eq!(tools.len(), names.len());
        let distinct: HashSet<&String> = tools.iter().collect();
        assert_eq!(distinct.len(), tools.len(), "{tools:?}");
        for tool in &tools {
            assert!(valid(tool) && tool.starts_with(ASK_PREFIX), "{tool}");
        }
        assert_eq!(tools[8], "ask_dup");
        assert_eq!(tools[9], format!("ask_dup_{:08x}", fnv("dup")));
    }

    #[test]
    fn suffixes_fit_the_limit() {
        let base = format!("ask_{}", "z".repeat(60));
        assert_eq!(with_suffix(&base, "12345678").len(), MAX_LEN);
        assert_eq!(with_suffix("ask_x", "2"), "ask_x_2");
    }
}
