//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations and the
//! `ToSchema` derives of the request bodies and of the answers' types, wherever those live
//! (`http/`, `onboarding/`, `store/`); a type a handler's `body = ...` names is picked up with
//! the types it holds. No answer's schema is written by hand.
//! The schemathesis run (`ops/schemathesis/run`) checks every one against real answers. `/docs`
//! serves Swagger UI from the copy vendored in the crate.

use std::sync::LazyLock;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::http::state::AppState;
use crate::http::{
    callbacks, decisions, device_validations, fraud_indications, health, lists, onboardings,
    policies, reviews, subjects, webhooks,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "veredito",
        description = "Onboarding decision service: one call, one verdict (approved, rejected, review, retry), every decision kept with its evidence for audit.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        onboardings::create,
        onboardings::show,
        device_validations::create,
        device_validations::show,
        decisions::search::list,
        decisions::export::export,
        decisions::replay::replay,
        decisions::view::show,
        decisions::search::searches,
        webhooks::receive,
        reviews::request,
        reviews::list,
        reviews::show,
        reviews::claim,
        reviews::release,
        reviews::resolve,
        reviews::add_note,
        reviews::notes,
        callbacks::list,
        callbacks::retry,
        policies::list,
        policies::create,
        policies::show,
        policies::replay,
        policies::shadow,
        policies::shadow_report,
        policies::publish,
        lists::create,
        lists::list,
        lists::add,
        lists::remove,
        lists::entries,
        lists::links,
        subjects::create,
        subjects::list,
        subjects::report,
        fraud_indications::create,
        fraud_indications::list,
        fraud_indications::show,
        fraud_indications::alter,
        fraud_indications::withdraw,
        fraud_indications::received,
        fraud_indications::report,
        health::live,
        health::ready,
        health::metrics,
        document,
    ),
    components(schemas(
        crate::http::error::Problem<'static>,
        decisions::DecisionItem,
        decisions::search::DecisionPage,
        decisions::Explanation,
        lists::ListEntryRemoved,
        crate::onboarding::lists::ListView,
        lists::ListPage,
        crate::onboarding::lists::Added,
        lists::ListEntries,
        crate::onboarding::links::Links,
        subjects::RequestView,
        subjects::SubjectRequestPage,
        subjects::ReportView,
        crate::policy::document::PolicyDocument,
    )),
    modifiers(&Additions),
    tags(
        (name = "onboardings", description = "Start an onboarding and read its verdict"),
        (name = "device validations", description = "A returning user's device, checked with QI Tech"),
        (name = "audit", description = "Search, explain, export and replay decisions"),
        (name = "reviews", description = "Human review: requests, the queue, claims and resolutions"),
        (name = "callbacks", description = "Decision events sent to the onboarding backend"),
        (name = "policies", description = "Policy versions: draft, replay, shadow, publish"),
        (name = "lists", description = "The risk team's block and watch lists"),
        (name = "subjects", description = "The people's requests under LGPD Art. 18 and 19: access reports and erasures"),
        (name = "fraud indications", description = "Fraud indications under Resolução Conjunta nº 6/2023: made, shared, declared monthly, received"),
        (name = "unico", description = "unico's process notifications"),
        (name = "operations", description = "Health, metrics and this document"),
    ),
)]
pub struct ApiDoc;

/// The security schemes and the version.
struct Additions;

impl utoipa::Modify for Additions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key as a bearer token. Scopes: onboarding:write, decisions:read, \
                         pii:read, reviews:write, policies:write, lists:write, subjects:write, \
                         fraud:write",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "unicoWebhook",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Veredito-Webhook-Token",
                "The header and exact value configured as unico.webhook_header and \
                 unico.webhook_secret",
            ))),
        );
        openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    }
}

/// The document as served, made once.
pub static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".to_owned())
});

/// `/openapi.json`, and `/docs`: Swagger UI over it. No key needed.
pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(document)).merge(
        utoipa_swagger_ui::SwaggerUi::new("/docs")
            .config(utoipa_swagger_ui::Config::from("/openapi.json").try_it_out_enabled(true)),
    )
}

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    operation_id = "openapi",
    responses(
        (status = 200, description = "This document", body = Object),
    ),
    security(()),
)]
async fn document() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    /// Every `.route(...)` of the API files, as (method, path). The console's HTML pages are
    /// for people, not clients, and are left out.
    fn routes_in_code() -> BTreeSet<(String, String)> {
        let mut files = Vec::new();
        let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    files.push(path);
                }
            }
        }
        let mut routes = BTreeSet::new();
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text.lines() {
                let Some((_, rest)) = line.split_once(".route(\"") else {
                    continue;
                };
                let (route, handlers) = rest.split_once('"').unwrap();
                if route.starts_with("/console") {
                    continue;
                }
                let methods: Vec<&str> = ["get", "post", "put", "patch", "delete"]
                    .into_iter()
                    .filter(|m| handlers.contains(&format!("{m}(")))
                    .collect();
                assert!(!methods.is_empty(), "{}: {line}", path.display());
                for method in methods {
                    routes.insert((method.to_owned(), route.to_owned()));
                }
            }
        }
        routes
    }

    #[test]
    fn every_route_is_described_and_every_description_is_a_route() {
        let doc = ApiDoc::openapi();
        let mut described = BTreeSet::new();
        for (path, item) in &doc.paths.paths {
            for (method, operation) in [
                ("get", &item.get),
                ("post", &item.post),
                ("put", &item.put),
                ("patch", &item.patch),
                ("delete", &item.delete),
            ] {
                if let Some(operation) = operation {
                    assert!(operation.operation_id.is_some(), "{method} {path}");
                    assert!(
                        operation.tags.as_ref().is_some_and(|t| !t.is_empty()),
                        "{method} {path}"
                    );
                    described.insert((method.to_owned(), path.clone()));
                }
            }
        }
        let routes = routes_in_code();
        assert!(routes.len() >= 28, "{routes:?}");
        let undescribed: Vec<_> = routes.difference(&described).collect();
        let unrouted: Vec<_> = described.difference(&routes).collect();
        assert!(
            undescribed.is_empty(),
            "routes without a description: {undescribed:?}"
        );
        assert!(
            unrouted.is_empty(),
            "descriptions without a route: {unrouted:?}"
        );
    }

    #[test]
    fn every_reference_resolves_and_the_document_is_3_1() {
        let text = DOCUMENT.as_str();
        let doc: serde_json::Value = serde_json::from_str(text).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut missing = Vec::new();
        for piece in text.split("\"#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap();
            if !schemas.contains_key(name) {
                missing.push(name.to_owned());
            }
        }
        assert!(missing.is_empty(), "{missing:?}");
        // The onboarding's answer is derived from the type the handler returns.
        let onboarding = &doc["components"]["schemas"]["Onboarding"];
        assert_eq!(
            onboarding["properties"]["reasons"]["items"]["$ref"],
            "#/components/schemas/Reason"
        );
        assert!(onboarding["properties"]["device"].is_object());
        assert!(doc["components"]["schemas"]["Biometrics"]["properties"]["score"].is_object());
        // The audit answers and the problem are derived from the types the handlers serialize.
        let explanation = &doc["components"]["schemas"]["Explanation"];
        assert_eq!(
            explanation["allOf"][0]["$ref"],
            "#/components/schemas/Decision"
        );
        let decision = &doc["components"]["schemas"]["Decision"];
        assert_eq!(
            decision["properties"]["reasons"]["items"]["$ref"],
            "#/components/schemas/Reason"
        );
        assert_eq!(
            doc["components"]["schemas"]["DecisionPage"]["properties"]["items"]["items"]["$ref"],
            "#/components/schemas/Decision"
        );
        assert_eq!(
            doc["components"]["schemas"]["Problem"]["properties"]["errors"]["items"]["$ref"],
            "#/components/schemas/FieldError"
        );
        // The fraud indications' answers are derived from the types the handlers serialize.
        let indication = &doc["components"]["schemas"]["FraudIndication"];
        assert_eq!(
            indication["properties"]["history"]["items"]["$ref"],
            "#/components/schemas/FraudIndicationHistoryLine"
        );
        assert_eq!(
            doc["components"]["schemas"]["FraudIndicationPage"]["properties"]["items"]["items"]["$ref"],
            "#/components/schemas/FraudIndication"
        );
        for name in ["FraudIndicationReport", "ReceivedFraudIndications"] {
            assert!(
                doc["components"]["schemas"][name]["properties"].is_object(),
                "{name}"
            );
        }
        // So are the lists', the links' and the subject requests'.
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["ListPage"]["properties"]["items"]["items"]["$ref"],
            "#/components/schemas/List"
        );
        assert_eq!(
            schemas["ListEntries"]["oneOf"][1]["$ref"],
            "#/components/schemas/ListEntryLookup"
        );
        assert_eq!(
            schemas["OnboardingLinks"]["properties"]["items"]["items"]["properties"]["key"]["$ref"],
            "#/components/schemas/LinkKey"
        );
        assert_eq!(
            schemas["SubjectRequestPage"]["properties"]["items"]["items"]["$ref"],
            "#/components/schemas/SubjectRequest"
        );
        assert_eq!(
            schemas["SubjectRequest"]["properties"]["erased"]["items"]["$ref"],
            "#/components/schemas/SubjectErasure"
        );
        assert_eq!(
            schemas["SubjectReport"]["allOf"][1]["properties"]["request"]["$ref"],
            "#/components/schemas/SubjectRequest"
        );
        for scheme in ["apiKey", "unicoWebhook"] {
            assert!(
                doc["components"]["securitySchemes"][scheme].is_object(),
                "{scheme}"
            );
        }
        let create = &doc["paths"]["/v1/onboardings"]["post"];
        let headers: Vec<&str> = create["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(headers, ["Idempotency-Key", "Prefer"]);
        assert!(create["responses"]["202"]["headers"]["Location"].is_object());
        assert!(create["responses"]["200"]["headers"]["Preference-Applied"].is_object());
        assert!(create["responses"]["503"]["headers"]["Retry-After"].is_object());
    }

    #[test]
    fn the_reviews_callbacks_policies_and_search_log_are_derived() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        let reference = |name: &str| format!("#/components/schemas/{name}");
        for (page, item) in [
            ("ReviewPage", "ReviewCase"),
            ("CallbackPage", "Callback"),
            ("PolicyPage", "PolicyVersionSummary"),
        ] {
            assert_eq!(
                schemas[page]["properties"]["items"]["items"]["$ref"],
                reference(item),
                "{page}"
            );
            assert!(
                schemas[page]["required"]
                    .as_array()
                    .unwrap()
                    .contains(&"next_cursor".into()),
                "{page}"
            );
        }
        // The case and the version as most answers show them, and with what one adds.
        for (name, base, field, held) in [
            (
                "ReviewCaseExplained",
                "ReviewCase",
                "decision",
                "Explanation",
            ),
            (
                "PolicyVersion",
                "PolicyVersionSummary",
                "document",
                "PolicyDocument",
            ),
        ] {
            let schema = &schemas[name];
            assert_eq!(schema["allOf"][0]["$ref"], reference(base), "{name}");
            assert_eq!(
                schema["allOf"][1]["properties"][field]["$ref"],
                reference(held),
                "{name}"
            );
        }
        let case = &schemas["ReviewCase"]["properties"];
        assert_eq!(
            case["status"]["enum"],
            serde_json::json!(["open", "claimed", "resolved"])
        );
        assert!(case["resolution"]["oneOf"].is_array());
        assert!(
            schemas["Callback"]["properties"]["type"]["enum"]
                .as_array()
                .unwrap()
                .contains(&"review.resolved".into())
        );
        let search = &schemas["AuditSearchPage"]["properties"]["items"]["items"];
        assert_eq!(search["properties"]["filters"]["type"], "object");
        for (report, field) in [("ReplayResult", "by_transition"), ("ShadowReport", "pairs")] {
            assert!(schemas[report]["properties"][field].is_object(), "{report}");
        }
        let paths = &doc["paths"];
        for (path, method, status, name) in [
            ("/v1/reviews/{id}", "get", "200", "ReviewCaseExplained"),
            ("/v1/reviews/{id}/claim", "post", "200", "ReviewCase"),
            ("/v1/callbacks/{id}/retry", "post", "200", "Callback"),
            ("/v1/policies/{version}", "get", "200", "PolicyVersion"),
            ("/v1/decisions/replay", "post", "200", "ReplayResult"),
            ("/v1/audit-searches", "get", "200", "AuditSearchPage"),
        ] {
            assert_eq!(
                paths[path][method]["responses"][status]["content"]["application/json"]["schema"]["$ref"],
                reference(name),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn every_json_answer_of_the_api_names_a_schema_derived_from_a_type() {
        // Only the operations' own answers (health, this document) may be a bare object.
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT.as_str()).unwrap();
        let mut bare = Vec::new();
        let mut named = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                if operation["tags"][0] == "operations" {
                    continue;
                }
                for (status, response) in operation["responses"].as_object().unwrap() {
                    let schema = &response["content"]["application/json"]["schema"];
                    if !status.starts_with('2') || schema.is_null() {
                        continue;
                    }
                    match schema["$ref"].as_str() {
                        Some(_) => named += 1,
                        None => bare.push(format!("{method} {path} {status}: {schema}")),
                    }
                }
            }
        }
        assert!(bare.is_empty(), "answers without a named schema: {bare:#?}");
        assert!(named >= 40, "{named}");
    }
}
