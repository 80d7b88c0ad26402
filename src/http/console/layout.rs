//! The frame every console page shares: the menu, the stylesheet, and the page that refuses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, FixedOffset, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::config::Scope;
use crate::http::console::session::{Flash, Session};

/// America/Sao_Paulo, where the reviewers work. Brazil has kept no daylight saving time since
/// 2019 (Decreto 9.772/2019), so the zone is UTC-03:00 all year; a fixed offset spares the
/// service a time-zone database it would otherwise carry for one zone. Should the country bring
/// daylight saving back, this is the one place to change.
const SAO_PAULO: FixedOffset = match FixedOffset::west_opt(3 * 3600) {
    Some(offset) => offset,
    None => panic!("three hours is a valid offset"),
};

/// A moment as the console shows it: São Paulo's time with its offset, never wrapped.
pub(super) fn at(t: &DateTime<Utc>) -> Markup {
    html! { time.at datetime=(t.to_rfc3339()) { (at_text(t)) } }
}

/// São Paulo's time of `t` with the offset: `2026-12-07 12:08:44 -03:00`.
pub(super) fn at_text(t: &DateTime<Utc>) -> String {
    t.with_timezone(&SAO_PAULO)
        .format("%Y-%m-%d %H:%M:%S %:z")
        .to_string()
}

/// A day as the console shows it (São Paulo's).
pub(super) fn day(t: &DateTime<Utc>) -> String {
    t.with_timezone(&SAO_PAULO).format("%Y-%m-%d").to_string()
}

/// The start of a São Paulo day given as YYYY-MM-DD, in UTC; None when it is not a date.
pub(super) fn day_start(text: &str) -> Option<DateTime<Utc>> {
    let date = chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()?;
    let local = date
        .and_hms_opt(0, 0, 0)?
        .and_local_timezone(SAO_PAULO)
        .single()?;
    Some(local.with_timezone(&Utc))
}

/// How long ago `t` was, in the largest whole unit: 3 d, 5 h, 12 min.
pub(super) fn age(t: &DateTime<Utc>) -> String {
    let secs = (Utc::now() - *t).num_seconds().max(0);
    match secs {
        s if s >= 86_400 => format!("{} d", s / 86_400),
        s if s >= 3_600 => format!("{} h", s / 3_600),
        s => format!("{} min", s / 60),
    }
}

/// The message an action left for this page.
pub(super) fn flash(flash: &Option<Flash>) -> Markup {
    html! {
        @match flash {
            Some(Flash::Notice(text)) => p.notice id="notice" { (text) },
            Some(Flash::Error(text)) => p.error id="error" { (text) },
            None => {},
        }
    }
}

/// An error as a page with a way back, for the console's answers that would otherwise be
/// problem+json (a bad id, an expired form, a case that does not exist).
pub(super) fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = html! {
        p.error id="problem" { (detail) }
        p { a id="back" href="/console" { "Back to the console" } }
    };
    (status, page(title, None, body)).into_response()
}

impl Session {
    /// A page this session's key may not see: a 403 page saying which scope it takes.
    pub(crate) fn refused(&self, needs: &str) -> Response {
        let body = html! {
            @if self.is_person() {
                p.error id="refused" { "Your roles do not allow this: it needs " (needs) "." }
            } @else {
                p.error id="refused" { "This page needs a key with " (needs) "." }
            }
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
                script src=(SCRIPT_PATH) defer {}
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
                        span.who id="who" { (session.who()) }
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

/// The console's one script (keyboard shortcuts), served by the console itself so the policy
/// can stay `script-src 'self'`.
pub(super) const SCRIPT_PATH: &str = "/console/shortcuts.js";

/// j and k move to the next and previous row of a list (`tr[data-href]`), or to the next and
/// previous case on a case page (`a[rel=next]`, `a[rel=prev]`); Enter opens the row; c claims
/// and r goes to the resolution form. Nothing happens while typing in a field.
pub(super) const SCRIPT: &str = r#"document.addEventListener('keydown', function (e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  var t = e.target;
  if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT')) return;
  var rows = Array.prototype.slice.call(document.querySelectorAll('tr[data-href]'));
  var at = rows.findIndex(function (r) { return r.classList.contains('current'); });
  function mark(i) {
    rows.forEach(function (r) { r.classList.remove('current'); });
    rows[i].classList.add('current');
    rows[i].scrollIntoView({block: 'nearest'});
  }
  if (e.key === 'j' || e.key === 'k') {
    if (rows.length) {
      mark(e.key === 'j' ? Math.min(at + 1, rows.length - 1) : Math.max(at - 1, 0));
    } else {
      var link = document.querySelector(e.key === 'j' ? 'a[rel=next]' : 'a[rel=prev]');
      if (link) link.click();
    }
  } else if (e.key === 'Enter' && at >= 0) {
    window.location = rows[at].getAttribute('data-href');
  } else if (e.key === 'c') {
    var claim = document.getElementById('claim');
    if (claim && !claim.disabled) claim.click();
  } else if (e.key === 'r') {
    var note = document.querySelector('#resolve textarea');
    if (note) { e.preventDefault(); note.focus(); }
  } else { return; }
});
"#;

/// The keys a page answers, listed on it: a list's rows (`Keys::Rows`), or a case's
/// (`Keys::Case`: the next and previous case, claim, resolve).
pub(super) fn shortcuts(keys: Keys) -> Markup {
    html! {
        p.muted.keys id="shortcuts" {
            "Keys: "
            @match keys {
                Keys::Rows => {
                    kbd { "j" } " next · " kbd { "k" } " previous · " kbd { "Enter" } " open"
                }
                Keys::Case => {
                    kbd { "j" } " next case · " kbd { "k" } " previous case · "
                    kbd { "c" } " claim · " kbd { "r" } " resolve"
                }
            }
        }
    }
}

/// Which of the shortcuts a page answers.
#[derive(Clone, Copy)]
pub(super) enum Keys {
    Rows,
    Case,
}

pub(super) const STYLE: &str = "
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{display:flex;gap:1.2em;align-items:center;padding:.6em 1.5em;background:#1d2330;color:#fff}
header a{color:#cfe0ff;margin-right:1em}header form{margin:0}.who{margin-left:auto}
main{max-width:1280px;margin:1.5em auto;padding:0 1.5em}
table{border-collapse:collapse;width:100%;background:#fff}td,th{padding:.35em .6em;border-bottom:1px solid #e3e6eb;text-align:left;vertical-align:top}
.overdue{color:#b00020;font-weight:600}.muted{color:#667}.box{background:#fff;padding:1em;margin:1em 0;border:1px solid #e3e6eb}
pre{white-space:pre-wrap;word-break:break-all;font-size:13px;margin:0}.fired{font-weight:600}.notice{background:#e8f4ea;padding:.6em 1em}
.error{background:#fdecee;padding:.6em 1em}a.button{display:inline-block;padding:.5em 1em;background:#1d2330;color:#fff;text-decoration:none}form.inline{display:inline}label{display:block;margin:.4em 0}label.inline{display:inline-block;margin-right:1em}
textarea{width:100%;min-height:5em;box-sizing:border-box}th{white-space:nowrap}.pair{display:grid;grid-template-columns:1fr 1fr;gap:1em}
time,.cpf,.nowrap{white-space:nowrap}tr.current{outline:2px solid #3b6fd8}tr.same td:first-child{border-left:4px solid #d88a1c}
dl.fields{display:grid;grid-template-columns:max-content 1fr;gap:.15em 1em;margin:0}dl.fields dt{color:#667}dl.fields dd{margin:0}
details summary{cursor:pointer;color:#445}.note{border-left:3px solid #c9d3e3;padding:.2em .8em;margin:.6em 0;background:#fff}
.answer{border-left-color:#2e8b57}.tag{font-size:12px;background:#e3e6eb;padding:0 .4em;border-radius:3px;white-space:nowrap}
.ref{max-width:11em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}.box h2,.box h3{margin-top:0}
.counts span{margin-right:1.2em}nav.pages a{margin-right:1em}kbd{border:1px solid #c9ccd3;border-radius:3px;padding:0 .3em;font-size:12px}";
