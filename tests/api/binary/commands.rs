//! The other commands and the configuration: `migrate`, configuration errors, `rotate-keys`.

use super::*;

#[tokio::test]
async fn migrate_applies_every_migration_and_is_repeatable() {
    let database = fresh_database().await;
    let url = database.url.clone();
    for _ in 0..2 {
        let output = veredito_command()
            .arg("migrate")
            .env("VEREDITO__DATABASE__URL", &url)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for table in [
        "decisions",
        "onboarding_events",
        "onboardings",
        "provider_calls",
        "unico_processes",
        "unico_webhooks",
    ] {
        assert!(
            tables.iter().any(|t| t == table),
            "{table} missing: {tables:?}"
        );
    }
}

#[test]
fn configuration_errors_name_the_key() {
    let cases = [
        (
            "VEREDITO__POLICY__SCORE_REJECT_MAX",
            "80",
            "policy.score_reject_max",
        ),
        ("VEREDITO__POLICY__DEFAULT_WAIT", "soon", "default_wait"),
        ("VEREDITO__SERVER__ADDR", "localhost", "server.addr"),
        (
            "VEREDITO__UNICO__WEBHOOK_SECRET",
            "short",
            "unico.webhook_secret",
        ),
    ];
    for (variable, value, key) in cases {
        let output = veredito_command()
            .args(["migrate"])
            .env(variable, value)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{variable}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(key), "{variable}={value}: {stderr}");
    }
    // Three bad values at once: one start names all three.
    let mut command = veredito_command();
    command.args(["migrate"]);
    let checked = cases
        .iter()
        .filter(|(variable, ..)| *variable != "VEREDITO__POLICY__DEFAULT_WAIT");
    for (variable, value, _) in checked.clone() {
        command.env(variable, value);
    }
    let output = command.output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("3 configuration mistakes"), "{stderr}");
    for (_, _, key) in checked {
        assert!(stderr.contains(key), "{key}: {stderr}");
    }
    let output = veredito_command()
        .args(["serve", "--config", "no/such/file.toml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[tokio::test]
async fn rotate_keys_moves_every_row_to_the_active_key() {
    let database = fresh_database().await;
    let url = database.url.clone();
    let app = TestApp::builder().database(&database).spawn().await;
    for cpf in ["900.000.001-75", "111.444.777-35"] {
        let response = app.onboard(&key(), &onboarding_body(cpf), Some(5)).await;
        assert_eq!(response.status(), 200);
    }
    app.stop().await;
    // The old key stays configured so its rows can be read; the new one becomes active.
    let file =
        std::env::temp_dir().join(format!("veredito-rotate-{}.toml", Uuid::new_v4().simple()));
    std::fs::write(
        &file,
        r#"[pii]
active_key_id = "rotated-2"
hash_key = "W4wusdwNWgkz296xz0C5lG1zoJAbT/o97AKxatRUrzI="
keys = [
  { id = "sandbox-1", key = "BRiCy4R4zdcy33daNragGMYBNF9FCr07ZNORKTW8sik=" },
  { id = "rotated-2", key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" },
]
"#,
    )
    .unwrap();
    let output = veredito_command()
        .args(["rotate-keys", "--config"])
        .arg(&file)
        .env("VEREDITO__DATABASE__URL", &url)
        .output()
        .unwrap();
    std::fs::remove_file(&file).ok();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("re-encrypted 2 rows under key `rotated-2`"),
        "{stdout}"
    );
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let keys: Vec<String> = sqlx::query_scalar("SELECT DISTINCT pii_key_id FROM onboardings")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys, ["rotated-2"]);
    conn.close().await.ok();

    // With the old key gone from the configuration, every name still reads back.
    let only_new =
        std::env::temp_dir().join(format!("veredito-rotated-{}.toml", Uuid::new_v4().simple()));
    std::fs::write(
        &only_new,
        r#"[pii]
active_key_id = "rotated-2"
hash_key = "W4wusdwNWgkz296xz0C5lG1zoJAbT/o97AKxatRUrzI="
keys = [{ id = "rotated-2", key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" }]
"#,
    )
    .unwrap();
    let app = TestApp::builder()
        .database(&database)
        .file(only_new.clone())
        .spawn()
        .await;
    std::fs::remove_file(&only_new).ok();
    let (status, page) = app.get("/v1/decisions", "vrd_sandbox_auditor_pii").await;
    assert_eq!(status, 200, "{page}");
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap_or("unreadable"))
        .collect();
    assert_eq!(names, ["Maria Teste da Silva", "Maria Teste da Silva"]);
    app.stop().await;
}
