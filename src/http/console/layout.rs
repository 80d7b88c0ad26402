//! The frame every console page shares: the menu, the stylesheet, and the page that refuses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::config::Scope;
use crate::http::console::session::Session;

impl Session {
    /// A page this session's key may not see: a 403 page saying which scope it takes.
    pub(crate) fn refused(&self, needs: &str) -> Response {
        let body = html! {
            p.error id="refused" { "This page needs a key with " (needs) "." }
            p { a href=(self.home()) { "Back" } }
        };
        (StatusCode::FORBIDDEN, page("Not allowed", Some(self), body)).into_response()
    }
}

pub(crate) fn page(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · veredito" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    strong { "veredito" }
                    @if let Some(session) = session {
                        nav {
                            @if session.reads_decisions() {
                                a href="/console/reviews" { "Review queue" }
                                a href="/console/decisions" { "Decisions" }
                                a href="/console/policies" { "Policies" }
                            }
                            @if session.reads_lists() { a href="/console/lists" { "Lists" } }
                            @if session.reads_indications() {
                                a href="/console/fraud-indications" { "Fraud indications" }
                            }
                            @if session.caller.has(Scope::SubjectsWrite) {
                                a href="/console/subject-requests" { "Subject requests" }
                            }
                        }
                        span.who { (session.caller.name.as_ref()) }
                        form method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(session.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

pub(super) const STYLE: &str = "
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{display:flex;gap:1.2em;align-items:center;padding:.6em 1.5em;background:#1d2330;color:#fff}
header a{color:#cfe0ff;margin-right:1em}header form{margin:0}.who{margin-left:auto}
main{max-width:1100px;margin:1.5em auto;padding:0 1.5em}
table{border-collapse:collapse;width:100%;background:#fff}td,th{padding:.35em .6em;border-bottom:1px solid #e3e6eb;text-align:left;vertical-align:top}
.overdue{color:#b00020;font-weight:600}.muted{color:#667}.box{background:#fff;padding:1em;margin:1em 0;border:1px solid #e3e6eb}
pre{white-space:pre-wrap;word-break:break-all;font-size:13px;margin:0}.fired{font-weight:600}.notice{background:#e8f4ea;padding:.6em 1em}
.error{background:#fdecee;padding:.6em 1em}form.inline{display:inline}label{display:block;margin:.4em 0}label.inline{display:inline-block;margin-right:1em}
textarea{width:100%;min-height:5em}.pair{display:grid;grid-template-columns:1fr 1fr;gap:1em}";
