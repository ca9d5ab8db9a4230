//! The built-in tools' names, descriptions and argument schemas are part of
//! the model's contract: any change must show up as a failing test and be
//! accepted on purpose. Run with `ROSTER_UPDATE_SNAPSHOTS=1` to rewrite the
//! snapshot after a deliberate change, then review the diff.

use roster_runtime::tools::ToolRegistry;

const SNAPSHOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/snapshots/builtin_tools.json"
);

#[test]
fn builtin_tool_schemas_match_the_snapshot() {
    let registry = ToolRegistry::with_builtins();
    let actual: Vec<serde_json::Value> = registry
        .specs()
        .map(|spec| {
            serde_json::json!({
                "name": spec.name,
                "description": spec.description,
                "parameters": spec.parameters,
            })
        })
        .collect();
    let actual = serde_json::to_string_pretty(&actual).expect("json") + "\n";
    if std::env::var_os("ROSTER_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(SNAPSHOT, &actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(SNAPSHOT).expect("snapshot file");
    assert!(
        actual == expected,
        "built-in tool schemas changed; if on purpose, rerun with ROSTER_UPDATE_SNAPSHOTS=1 and review.\n--- actual\n{actual}"
    );
}

#[test]
fn every_builtin_schema_is_an_object_schema_the_runner_can_compile() {
    for spec in ToolRegistry::with_builtins().specs() {
        assert_eq!(spec.parameters["type"], "object", "{}", spec.name);
        assert!(
            jsonschema::validator_for(&spec.parameters).is_ok(),
            "{}",
            spec.name
        );
        assert!(spec.parameters.get("$schema").is_none(), "{}", spec.name);
    }
}
