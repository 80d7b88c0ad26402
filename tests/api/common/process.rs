//! The `veredito` binary run as its own process, the way an operator runs it.

use std::time::Duration;

use reqwest::Client;

/// A port free at the time of asking, for a `serve` started as its own process.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The built binary, run from the project folder with the sandbox on and none of this
/// process's veredito variables.
pub fn veredito_command() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_veredito"));
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    for (key, _) in std::env::vars() {
        if key.starts_with("VEREDITO") || key == "DATABASE_URL" || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command.env("VEREDITO_ENV", "sandbox");
    // As in test_overrides: the test people share a device, a phone and an e-mail.
    command.env("VEREDITO__POLICY__VELOCITY", "[]");
    command.env("VEREDITO__POLICY__LINKED_FRAUD", "null");
    command
}

/// Waits until `base` answers ready, at most 10 s.
pub async fn wait_ready(base: &str) {
    let http = Client::new();
    for _ in 0..100 {
        if let Ok(response) = http.get(format!("{base}/health/ready")).send().await {
            if response.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{base} did not become ready");
}

/// Sends SIGTERM to a `serve` started as its own process and answers what it wrote.
pub async fn terminate(child: std::process::Child) -> std::process::Output {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap()
}
