//! The function writes nothing outside the paths it is given: ONNX Runtime's telemetry store
//! (~/.cache/Microsoft/DeveloperTools) stays off unless the user turns it on.

use std::path::Path;
use std::process::Command;

fn predict_with_home(home: &Path, telemetry: Option<&str>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sentimiento"));
    // A clean environment: ONNX Runtime also keeps telemetry off by itself when it sees a CI
    // system's variable (CI, GITHUB_ACTIONS, JENKINS_URL, ...), which would hide the control below.
    command
        .env_clear()
        .args(["predict", "me encanta"])
        .env("MODEL_DIR", Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny"))
        .env("HOME", home);
    if let Some(library) = std::env::var_os("ORT_DYLIB_PATH") {
        command.env("ORT_DYLIB_PATH", library);
    }
    if let Some(value) = telemetry {
        command.env("ORT_DISABLE_TELEMETRY", value);
    }
    let output = command.output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn onnx_runtime_telemetry_is_off_unless_asked_for() {
    let home = tempfile::tempdir().unwrap();
    predict_with_home(home.path(), None);
    assert!(!home.path().join(".cache/Microsoft").exists(), "telemetry store written");
    // The user's explicit choice is kept: the store appears, so the check above can fail.
    predict_with_home(home.path(), Some("0"));
    assert!(home.path().join(".cache/Microsoft").exists(), "ORT_DISABLE_TELEMETRY=0 was overridden");
}
