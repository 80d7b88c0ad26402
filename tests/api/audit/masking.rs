//! Personal data in audit answers, masked unless the key may read it.

use super::*;

#[tokio::test]
async fn personal_data_is_masked_unless_the_key_may_read_it() {
    let h = TestApp::spawn().await;
    let seeded = h.seed(Spec::new(42, scored(60))).await;
    let cpf = cpf_from(42);
    let path = format!("/v1/decisions/{}", seeded.decision_id);

    for (key, status) in [
        (None, 401),
        (Some(ONBOARDING), 403),
        (Some("vrd_not_a_key"), 401),
    ] {
        for p in ["/v1/decisions", path.as_str(), "/v1/decisions/export"] {
            assert_eq!(
                h.request(key, p, &[]).await.status().as_u16(),
                status,
                "{p} with {key:?}"
            );
        }
        let replay = h
            .http
            .post(format!("{}/v1/decisions/replay", h.base))
            .json(&json!({}));
        let replay = if let Some(key) = key {
            replay.bearer_auth(key)
        } else {
            replay
        };
        assert_eq!(replay.send().await.unwrap().status().as_u16(), status);
    }

    let listed = h.get_json(AUDITOR, "/v1/decisions", &[]).await;
    assert_eq!(listed["items"][0]["cpf"], masked(&cpf));
    assert!(listed["items"][0].get("name").is_none());
    let shown = h.get_json(AUDITOR, &path, &[]).await;
    assert_eq!(shown["cpf"], masked(&cpf));
    assert!(shown.get("name").is_none());
    let (_, csv) = h.export(AUDITOR, &[("format", "csv")]).await;
    assert!(
        csv.contains(&masked(&cpf)) && !csv.contains(&digits(&cpf)[..9]) && !csv.contains("Pessoa")
    );
    let (_, ndjson) = h.export(AUDITOR, &[("format", "ndjson")]).await;
    assert!(ndjson.contains(&masked(&cpf)) && !ndjson.contains("Pessoa"));

    let listed = h.get_json(AUDITOR_PII, "/v1/decisions", &[]).await;
    assert_eq!(listed["items"][0]["cpf"], cpf);
    assert_eq!(listed["items"][0]["name"], "Pessoa Auditada 42");
    let shown = h.get_json(AUDITOR_PII, &path, &[]).await;
    assert_eq!(shown["cpf"], cpf);
    assert_eq!(shown["name"], "Pessoa Auditada 42");
    let (_, csv) = h.export(AUDITOR_PII, &[("format", "csv")]).await;
    assert!(csv.starts_with("id,onboarding_id,reference,cpf,name,outcome"));
    assert!(csv.contains(&cpf) && csv.contains("Pessoa Auditada 42"));
    h.stop().await;
}
