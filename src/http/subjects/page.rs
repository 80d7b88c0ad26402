//! The access report as a printable page in Portuguese, for the person (LGPD Art. 19 II: a
//! complete statement, in clear and accessible form). The same facts as the JSON report; the
//! technical names of where each piece is stored stay as they are, for the officer.

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::http::subjects::view::RequestView;
use crate::onboarding::subjects::{OnboardingReport, Report};

const STYLE: &str = "
body{font:14px/1.5 Georgia,serif;margin:2em auto;max-width:900px;color:#111;padding:0 1.5em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #999}h3{font-size:1em}
table{border-collapse:collapse;width:100%;margin:.5em 0}td,th{padding:.3em .5em;border:1px solid #bbb;text-align:left;vertical-align:top}
code{font-size:12px}.muted{color:#555}section{page-break-inside:avoid}
@media print{body{margin:0}a{color:#000;text-decoration:none}}";

/// The page runs nothing and loads nothing: only its own stylesheet, allowed by its hash.
static CONTENT_SECURITY_POLICY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; style-src 'sha256-{}'; frame-ancestors 'none'; base-uri 'none'; \
         form-action 'none'",
        base64::engine::general_purpose::STANDARD.encode(crate::crypto::sha256(STYLE.as_bytes()))
    )
});

/// The page, with headers that keep it out of caches and frames.
pub fn render(request: &RequestView, report: &Report) -> Response {
    let mut response = page(request, report).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Ok(policy) = HeaderValue::from_str(&CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    response
}

/// Brasília time, as the person reads dates.
fn when(at: &DateTime<Utc>) -> String {
    let brt = chrono::FixedOffset::west_opt(3 * 3600).expect("a valid offset");
    at.with_timezone(&brt).format("%d/%m/%Y %H:%M").to_string()
}

fn when_opt(at: &Option<DateTime<Utc>>) -> String {
    at.as_ref().map_or_else(|| "—".to_owned(), when)
}

fn category(code: &str) -> &str {
    match code {
        "cpf" => "CPF",
        "name" => "Nome",
        "birth_date" => "Data de nascimento",
        "gender" => "Gênero",
        "email" => "E-mail",
        "phone" => "Telefone",
        "selfie" => "Selfie (foto do rosto)",
        "coordinates" => "Localização do celular (coordenadas)",
        "device_identifiers" => "Identificadores do aparelho e da conta",
        "device_signals" => "Sinais de risco do aparelho",
        "account_ids" => "Identificadores da conta no cliente",
        "review_statements" => "Suas declarações nos pedidos de revisão",
        "provider_answers" => "Respostas dos fornecedores (podem citar seus dados)",
        "provider_requests" => "Registros das chamadas aos fornecedores",
        other => other,
    }
}

fn outcome(code: &str) -> &str {
    match code {
        "approved" => "aprovado",
        "rejected" => "recusado",
        "review" => "encaminhado à revisão humana",
        "retry" => "nova captura solicitada",
        other => other,
    }
}

/// The purpose of each recipient, in Portuguese.
fn purpose(recipient: &str) -> &'static str {
    match recipient {
        "unico" => {
            "identificação biométrica (prova de vida, confirmação de identidade com o titular \
             do CPF, alerta de fraude facial) para prevenir fraude na abertura de conta"
        }
        "QI Tech" => "registro do aparelho, para prevenir fraude no uso posterior da conta",
        "Zro" => "avaliação de risco da adesão ao Open Finance",
        _ => "",
    }
}

fn page(request: &RequestView, report: &Report) -> Markup {
    html! {
        (DOCTYPE)
        html lang="pt-BR" {
            head {
                meta charset="utf-8";
                title { "Relatório de dados pessoais · veredito" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "Relatório dos seus dados pessoais" }
                p {
                    "Titular: CPF " strong #cpf { (report.cpf) } ". "
                    "Pedido " code { (report.request_id) } " ("
                    (if report.kind == "erasure" { "eliminação" } else { "acesso" })
                    "), recebido em " (when(&report.received_at)) ", prazo até "
                    (when(&report.due_at)) " (LGPD art. 19, II). "
                    "Relatório gerado em " (when(&report.generated_at)) "."
                }
                p.muted {
                    "Este relatório foi montado somente com o que está armazenado. "
                    "Seus dados pessoais são guardados por " (report.retention_days)
                    " dias após cada decisão e então eliminados; as decisões ficam registradas sem eles. "
                    "Situação do pedido: " (request.status) "."
                }
                @if report.onboardings.is_empty() {
                    p { "Não há cadastros com este CPF." }
                }
                @for (n, o) in report.onboardings.iter().enumerate() {
                    (onboarding(n + 1, o))
                }
                @if !report.fraud_indications.is_empty() {
                    section #fraud-indications {
                        h2 { "Indícios de fraude registrados" }
                        p.muted {
                            "Registrados por exigência da Resolução Conjunta nº 6/2023 do CMN e do BCB. "
                            "Indícios sigilosos pela lei de prevenção à lavagem de dinheiro não são informados."
                        }
                        table.indications {
                            tr { th { "Identificado em" } th { "Tipologia" } th { "Descrição" } th { "Situação" } th { "Compartilhado em" } }
                            @for i in &report.fraud_indications {
                                tr.indication data-id=(i.id) {
                                    td { (when(&i.identified_at)) }
                                    td.typology { code { (i.typology) } }
                                    td { (i.description) }
                                    td { (i.status) }
                                    td { (when_opt(&i.shared_at)) }
                                }
                            }
                        }
                    }
                }
                @for r in &report.shared_with {
                    section.shared-with {
                        h2 { "Sistema compartilhado de indícios de fraude" }
                        p {
                            "Recebeu o CPF, a tipologia e a descrição de cada indício acima, para o registro "
                            "de indícios de fraude compartilhado entre instituições (Resolução Conjunta nº 6/2023; "
                            "base legal: " (r.legal_basis) "), de " (when(&r.first_sent_at)) " a "
                            (when(&r.last_sent_at)) "."
                        }
                    }
                }
            }
        }
    }
}

fn onboarding(n: usize, o: &OnboardingReport) -> Markup {
    html! {
        section.onboarding id=(format!("onboarding-{}", o.id)) {
            h2 { "Cadastro " (n) ": " code { (o.id) } }
            p {
                "Recebido em " (when(&o.created_at)) "; "
                @if o.status == "decided" { "decidido em " (when_opt(&o.decided_at)) "." }
                @else { "ainda em análise." }
                @if let Some(reference) = &o.reference { " Referência do cliente: " code { (reference) } "." }
            }
            h3 { "Decisões" }
            table.decisions {
                tr { th { "Data" } th { "Quem decidiu" } th { "Resultado" } th { "Motivos" } }
                @for d in &o.decisions {
                    tr.decision data-id=(d.id) {
                        td { (when(&d.decided_at)) }
                        td {
                            @if d.decided_by == "reviewer" {
                                "Revisor(a) " (d.reviewer.as_deref().unwrap_or(""))
                                @if let Some(note) = &d.note { br; span.muted { "Nota: " (note) } }
                            } @else {
                                "Decisão automática (política " (d.policy_version) ")"
                            }
                        }
                        td.outcome { (outcome(&d.outcome)) }
                        td {
                            ul {
                                @for r in d.reasons.as_array().into_iter().flatten() {
                                    li.reason {
                                        code { (r["code"].as_str().unwrap_or("")) } ": "
                                        (r["message"].as_str().unwrap_or(""))
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h3 { "Dados guardados agora" }
            table.held {
                tr { th { "Dado" } th { "Onde" } th { "Eliminado até" } }
                @for h in &o.data_held {
                    tr {
                        td { (category(h.category)) }
                        td { @for w in &h.stored_in { code { (w) } " " } }
                        td { @if let Some(until) = &h.until { (when(until)) } @else { "após a decisão, pelo prazo de guarda" } }
                    }
                }
            }
            @if !o.data_erased.is_empty() {
                h3 { "Dados já eliminados" }
                table.erased {
                    tr { th { "Dado" } th { "De onde" } th { "Quando" } }
                    @for e in &o.data_erased {
                        tr.erasure {
                            td { (category(&e.category)) }
                            td { @for w in &e.erased_from { code { (w) } " " } }
                            td { (when(&e.erased_at)) }
                        }
                    }
                }
            }
            h3 { "Com quem seus dados foram compartilhados" }
            @if o.recipients.is_empty() { p { "Com ninguém." } }
            @else {
                table.recipients {
                    tr { th { "Destinatário" } th { "Dados" } th { "Finalidade" } th { "Base legal" } th { "Quando" } }
                    @for r in &o.recipients {
                        tr.recipient {
                            td { (r.recipient) }
                            td { (r.data.iter().map(|d| category(d)).collect::<Vec<_>>().join(", ")) }
                            td { (purpose(r.recipient)) }
                            td { (r.legal_basis.replace("Art.", "art.")) }
                            td { (when(&r.first_sent_at)) }
                        }
                    }
                }
            }
            @if !o.review_cases.is_empty() {
                h3 { "Revisões humanas" }
                @for c in &o.review_cases {
                    div.case {
                        p {
                            "Aberta em " (when(&c.opened_at))
                            (if c.opened_by == "subject_request" { " a seu pedido (LGPD art. 20)" } else { " pela política" })
                            "; " (match c.status.as_str() { "resolved" => "resolvida", "claimed" => "em análise", _ => "aberta" })
                            @if let Some(at) = &c.resolved_at { " em " (when(at)) }
                            @if let Some(result) = &c.resolution_outcome { ": " (outcome(result)) }
                            "."
                        }
                        @if let Some(statement) = &c.statement {
                            blockquote.statement { (statement) }
                        }
                    }
                }
            }
            h3 { "Prazos de guarda" }
            ul {
                li { "Dados pessoais deste cadastro: " (when_opt(&o.retention.personal_data_until)) }
                li { "Registros das chamadas aos fornecedores: " (when_opt(&o.retention.provider_text_until)) }
                li { "Decisões e motivos: mantidos como registro das decisões automatizadas, sem dados pessoais após a eliminação." }
                @if let Some(at) = &o.retention.erased_by_retention_at { li { "Eliminados pelo prazo de guarda em " (when(at)) } }
            }
        }
    }
}
