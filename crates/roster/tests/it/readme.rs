//! The README's command lines are commands a reader can paste: alternatives
//! are written one per line, never as a shell pipeline (`roster mcp list |
//! roster mcp show files` pipes one into the other, which means nothing).

/// Programs a `roster …` line may rightly pipe its output into.
const READERS: &[&str] = &["head", "tail", "jq", "grep", "less", "sort", "wc", "cut"];

#[test]
fn readme_command_lines_are_not_alternatives_written_as_pipelines() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let mut in_code = false;
    let mut bad = Vec::new();
    for (n, line) in readme.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        let command = outside_brackets(line.split(" #").next().unwrap_or_default().trim());
        if !in_code || !command.starts_with("roster ") {
            continue;
        }
        for piped in command.split(" | ").skip(1) {
            let program = piped.split_whitespace().next().unwrap_or_default();
            if !READERS.contains(&program) {
                bad.push(format!("README.md:{}: {line}", n + 1));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "alternatives written as a pipeline:\n{}",
        bad.join("\n")
    );
}

/// The line without its `[…]` parts, where `A | B` is a choice of flags.
fn outside_brackets(line: &str) -> String {
    let mut depth = 0usize;
    line.chars()
        .filter(|c| {
            match c {
                '[' => depth += 1,
                ']' => depth = depth.saturating_sub(1),
                _ => return depth == 0,
            }
            false
        })
        .collect()
}
