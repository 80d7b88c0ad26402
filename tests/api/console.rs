//! The reviewers' console in a real browser: headless Chromium driven over the DevTools protocol
//! (`common::browser`, which says how a test is skipped where Chromium is missing).
//! `VEREDITO_CHROMIUM` names another binary; `VEREDITO_SCREENSHOTS=dir` keeps a PNG of each page.

use serde_json::{Value, json};

use crate::common::browser::Browser;
use crate::common::{self, *};

mod fraud;
mod lists;
mod queue;
mod reports;
mod review;

/// Signs the browser in with `key` from the sign-in page.
async fn sign_in(browser: &mut Browser, app: &TestApp, key: &str) {
    browser.go(&app.url("/console/sign-in")).await;
    browser
        .eval(&format!(
            "document.querySelector('input[name=api_key]').value = '{key}'"
        ))
        .await;
    browser.click("button[type=submit]").await;
}

/// The texts of the cells in column `column` of the rows matching `rows`.
async fn column(browser: &mut Browser, rows: &str, column: usize) -> Vec<String> {
    let texts = browser
        .eval(&format!(
            "Array.from(document.querySelectorAll({rows:?})).map(r => r.cells[{column}].innerText)"
        ))
        .await;
    texts
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

/// The texts of the elements matching `selector`.
async fn column_texts(browser: &mut Browser, selector: &str) -> Vec<String> {
    let texts = browser
        .eval(&format!(
            "Array.from(document.querySelectorAll({selector:?})).map(e => e.innerText)"
        ))
        .await;
    texts
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}
