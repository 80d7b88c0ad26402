//! The access report as the page the person reads, in Portuguese, in headless Chromium.

use super::*;
use crate::common::browser::Browser;

/// The date as the page shows it: Brasília time, day first.
fn on_the_page(at: &Value) -> String {
    let at: DateTime<Utc> = at.as_str().unwrap().parse().unwrap();
    let brt = chrono::FixedOffset::west_opt(3 * 3600).unwrap();
    at.with_timezone(&brt).format("%d/%m/%Y %H:%M").to_string()
}

/// Opens the report at `report_path` as the officer and finds on the page what `report` says.
pub(super) async fn the_page_tells_the_same(
    app: &TestApp,
    cpf: &str,
    report_path: &str,
    report: &Value,
) {
    let onboardings = report["onboardings"].as_array().unwrap();
    // The page, in Portuguese, in a real browser, with the same facts.
    let mut browser = Browser::start().await;
    browser.call("Network.enable", json!({})).await;
    browser
        .call(
            "Network.setExtraHTTPHeaders",
            json!({"headers": {"Authorization": format!("Bearer {DPO}")}}),
        )
        .await;
    browser.go(&app.url(report_path)).await;
    assert_eq!(browser.eval("document.documentElement.lang").await, "pt-BR");
    let text = browser
        .eval("document.body.innerText")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    browser.screenshot("subject-report").await;
    assert!(text.contains("Relatório dos seus dados pessoais"), "{text}");
    assert!(text.contains(cpf), "{text}");
    for o in onboardings {
        assert!(text.contains(o["id"].as_str().unwrap()), "{text}");
        assert!(
            text.contains(&on_the_page(&o["retention"]["personal_data_until"])),
            "{text}"
        );
        for d in o["decisions"].as_array().unwrap() {
            for reason in d["reasons"].as_array().unwrap() {
                assert!(text.contains(reason["code"].as_str().unwrap()), "{text}");
                assert!(text.contains(reason["message"].as_str().unwrap()), "{text}");
            }
        }
    }
    for fact in [
        "unico",
        "QI Tech",
        "LGPD art. 11 II g",
        "LGPD art. 7 IX",
        STATEMENT,
        "recusado",
        "aprovado",
        "Selfie (foto do rosto)",
        "Indícios de fraude registrados",
        "mule_account",
        "Conta usada para receber Pix de golpes.",
        "Resolução Conjunta nº 6/2023",
    ] {
        assert!(text.contains(fact), "{fact} is not on the page: {text}");
    }
    assert!(!text.contains("COAF"), "{text}");
    let decisions_on_page = browser
        .eval("document.querySelectorAll('tr.decision').length")
        .await;
    assert_eq!(decisions_on_page, 5);
}
