//! Personal data at rest: sealed, never in the clear, resealed when the keys rotate.

use super::*;

#[tokio::test]
async fn cpf_and_name_are_not_stored_in_the_clear() {
    let h = TestApp::spawn().await;
    // Through the real onboarding path, and through the store.
    let mut body = common::onboarding_body("900.000.019-02");
    body["person"]["name"] = json!("Zuleica Encriptada Nogueira");
    let response = h
        .http
        .post(format!("{}/v1/onboardings", h.base))
        .bearer_auth(ONBOARDING)
        .header("Idempotency-Key", "at-rest-1")
        .header("Prefer", "wait=10")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    h.seed(Spec {
        name: "Ubirajara Cifrado Pontes".into(),
        ..Spec::new(77, scored(60))
    })
    .await;

    let rows = all_rows_as_text(&h.db).await;
    assert!(rows.iter().any(|(table, _)| table == "onboardings"));
    let cpf77 = cpf_from(77);
    let secrets = [
        "90000001902",
        "900.000.019-02",
        "Zuleica",
        "Encriptada",
        digits(&cpf77).leak(),
        cpf77.as_str(),
        "Ubirajara",
        "Cifrado",
        // The contact data and the selfie of the onboarding sent over HTTP.
        "maria.teste@example.com",
        "5511974749090",
        "974749090",
        "c2VsZmllLWJ5dGVz",
    ];
    for (table, row) in &rows {
        for secret in secrets {
            assert!(!row.contains(secret), "{secret} is in the clear in {table}");
        }
    }
    // Hex and escaped bytea forms of the ciphertext do not spell them either.
    let raw: Vec<Vec<u8>> = sqlx::query_scalar("SELECT pii_ciphertext FROM onboardings")
        .fetch_all(&h.db)
        .await
        .unwrap();
    for sealed in raw {
        assert!(
            !sealed
                .windows(11)
                .any(|w| w == b"90000001902" || w == digits(&cpf77).as_bytes())
        );
    }
    // Still readable by the service.
    let found = h
        .get_json(AUDITOR_PII, "/v1/decisions", &[("cpf", "90000001902")])
        .await;
    assert_eq!(found["items"][0]["name"], "Zuleica Encriptada Nogueira");
    h.stop().await;
}

fn key_file(active: &str, keys: &[(&str, &str)]) -> PathBuf {
    let mut toml = format!(
        "[pii]\nactive_key_id = \"{active}\"\nhash_key = \"W4wusdwNWgkz296xz0C5lG1zoJAbT/o97AKxatRUrzI=\"\n"
    );
    for (id, key) in keys {
        toml.push_str(&format!("\n[[pii.keys]]\nid = \"{id}\"\nkey = \"{key}\"\n"));
    }
    let path = std::env::temp_dir().join(format!("veredito-keys-{}.toml", Uuid::new_v4().simple()));
    std::fs::write(&path, toml).unwrap();
    path
}

#[tokio::test]
async fn keys_rotate_and_old_rows_are_resealed() {
    const OLD: (&str, &str) = ("k-2025", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=");
    const NEW: (&str, &str) = ("k-2026", "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=");
    let database = common::fresh_database().await;

    let before = TestApp::builder()
        .database(&database)
        .file(key_file(OLD.0, &[OLD]))
        .spawn()
        .await;
    let mut old_rows = Vec::new();
    for n in 0..5 {
        old_rows.push(before.seed(Spec::new(n, scored(60))).await);
    }
    assert_eq!(
        store::audit::rows_by_key(&before.db).await.unwrap(),
        [(OLD.0.to_owned(), 5)]
    );
    before.stop().await;

    // The new key becomes active; the old one stays configured to read what it sealed.
    let after = TestApp::builder()
        .database(&database)
        .file(key_file(NEW.0, &[OLD, NEW]))
        .spawn()
        .await;
    assert_eq!(after.state.cipher.active_key_id(), NEW.0);
    let fresh = after.seed(Spec::new(9, scored(60))).await;
    let listed = after
        .get_json(AUDITOR_PII, "/v1/decisions", &[("cpf", &cpf_from(3))])
        .await;
    assert_eq!(
        listed["items"][0]["name"], "Pessoa Auditada 3",
        "a row under the old key is readable"
    );
    assert_eq!(
        store::audit::rows_by_key(&after.db).await.unwrap(),
        [(OLD.0.to_owned(), 5), (NEW.0.to_owned(), 1)]
    );
    let sealed_before: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT pii_ciphertext FROM onboardings ORDER BY id")
            .fetch_all(&after.db)
            .await
            .unwrap();

    let mut moved = Vec::new();
    loop {
        let n = store::audit::reencrypt_batch(&after.db, &after.state.cipher, 2)
            .await
            .unwrap();
        moved.push(n);
        if n == 0 {
            break;
        }
    }
    assert_eq!(moved, [2, 2, 1, 0]);
    assert_eq!(
        store::audit::rows_by_key(&after.db).await.unwrap(),
        [(NEW.0.to_owned(), 6)]
    );
    let sealed_after: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT pii_ciphertext FROM onboardings ORDER BY id")
            .fetch_all(&after.db)
            .await
            .unwrap();
    assert_eq!(
        sealed_before
            .iter()
            .zip(&sealed_after)
            .filter(|(a, b)| a != b)
            .count(),
        5,
        "only old rows resealed"
    );
    after.stop().await;

    // The old key can now be retired: everything reads under the new one alone.
    let retired = TestApp::builder()
        .database(&database)
        .file(key_file(NEW.0, &[NEW]))
        .spawn()
        .await;
    let items = retired.get_json(AUDITOR_PII, "/v1/decisions", &[]).await;
    let names: BTreeSet<String> = items["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().expect("name readable").to_owned())
        .collect();
    assert_eq!(names.len(), 6);
    assert!(names.contains("Pessoa Auditada 9"));
    let detail = retired
        .get_json(
            AUDITOR_PII,
            &format!("/v1/decisions/{}", old_rows[0].decision_id),
            &[],
        )
        .await;
    assert_eq!(detail["cpf"], cpf_from(0));
    let _ = fresh;
    retired.stop().await;
}
