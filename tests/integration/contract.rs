//! Contract test: schemathesis (from PyPI) generates requests from `/v1/openapi.json` and
//! sends them to a running server. It fails on any 5xx, on a status the document does not
//! list for the operation, on a response whose content type
//! the document does not declare, and on a body that breaks a declared schema.
//!
//! The destructive key operations (`/v1/account/keys/{key_id}`, rotate) are left out: a
//! fuzzer revoking the key it runs with would turn every later call into a 401. Those
//! operations have their own integration tests.
//!
//! `.ci/run` installs schemathesis and sets `CITECAST_REQUIRE_CONTRACT=1`, which turns
//! a missing `st` into a failure. Without it, a machine without `st` skips the test,
//! saying so.

use std::process::Command;

use crate::common::*;
use serde_json::Value;

#[test]
fn the_api_keeps_its_openapi_contract_under_generated_requests() {
    let Some(st) = external_tool("st", "CITECAST_REQUIRE_CONTRACT", "pip install schemathesis") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bundled = bundled_fixture(tmp.path());
    let server = start(&data, &bundled);
    let out = run(
        &[
            "customers",
            "add",
            "--name",
            "Contract",
            "--email",
            "contract@example.org",
            "--tier",
            "enterprise",
        ],
        &data,
    );
    let key = serde_json::from_slice::<Value>(&out.stdout).unwrap()["secret"].as_str().unwrap().to_string();
    let out = Command::new(st)
        .arg("run")
        .arg(format!("http://{}/v1/openapi.json", server.info.addr))
        .args(["--header", &format!("Authorization: Bearer {key}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--exclude-path-regex", "/v1/account/keys/"])
        .args(["--max-examples", "25", "--seed", "17", "--workers", "1"])
        .env("NO_COLOR", "1")
        // schemathesis keeps a cache in its working directory: not in the checkout.
        .current_dir(tmp.path())
        .output()
        .expect("run schemathesis");
    let report =
        format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{report}");
    assert!(out.status.success(), "schemathesis found contract violations:\n{report}");
    assert!(report.contains("passed"), "{report}");
    // The document states every constraint a schema can: types, ranges, enums, dates,
    // lengths. What schemathesis may still see rejected is only what no schema can say:
    // references must name stored papers, author names must be usable, a cursor is opaque.
    let explained = ["GET /v1/papers/{id}/citations", "POST /v1/forecasts/score"];
    if let Some(at) = report.find("Schema validation mismatch") {
        let listed = report[at..].lines().skip(1).take_while(|l| !l.contains("Check your schema"));
        for op in listed.filter_map(|l| l.trim().strip_prefix("- ")) {
            assert!(explained.contains(&op), "{op}: the document does not state what it accepts\n{report}");
        }
    }
}
