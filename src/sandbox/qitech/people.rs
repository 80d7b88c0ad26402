//! The device manager's accounts and persons, each checked as QI Tech's documentation writes it.

use std::sync::Arc;

use super::{
    Qitech, authorised, body_object, dated, optional_text, problem, punctuated_document, text,
};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub(super) async fn create_account(
    State(q): State<Arc<Qitech>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authorised(&q, &headers) {
        return r;
    }
    let run = || -> Result<Response, Response> {
        let body = body_object(&body)?;
        let account_id = text(&body, "account_id")?;
        let account_type = text(&body, "account_type")?;
        if account_type != "natural_person" && account_type != "legal_person" {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "account_type must be natural_person or legal_person",
            ));
        }
        dated(&body, "registration_date")?;
        if !matches!(body.get("account_data"), None | Some(Value::Object(_))) {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "account_data must be an object",
            ));
        }
        if !q.books().accounts.insert(account_id.to_owned()) {
            return Err(problem(
                StatusCode::CONFLICT,
                "conflict",
                "account_id already registered",
            ));
        }
        Ok((StatusCode::CREATED, axum::Json(Value::Object(body.clone()))).into_response())
    };
    run().unwrap_or_else(|r| r)
}

pub(super) async fn get_account(
    State(q): State<Arc<Qitech>>,
    headers: HeaderMap,
    Path(account_id): Path<String>,
) -> Response {
    if let Err(r) = authorised(&q, &headers) {
        return r;
    }
    if q.books().accounts.contains(&account_id) {
        axum::Json(json!({ "account_id": account_id })).into_response()
    } else {
        problem(StatusCode::NOT_FOUND, "not_found", "unknown account")
    }
}

pub(super) async fn create_person(
    State(q): State<Arc<Qitech>>,
    headers: HeaderMap,
    Path(account_id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = authorised(&q, &headers) {
        return r;
    }
    let run = || -> Result<Response, Response> {
        let body = body_object(&body)?;
        let person_id = text(&body, "person_id")?;
        dated(&body, "registration_date")?;
        let document = optional_text(&body, "document_number")?;
        if document.is_some_and(|d| !punctuated_document(d)) {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "document_number must be a punctuated CPF or CNPJ",
            ));
        }
        if let Some(data) = body.get("person_data") {
            let Value::Object(data) = data else {
                return Err(problem(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "person_data must be an object",
                ));
            };
            optional_text(data, "name")?;
            optional_text(data, "email")?;
            match data.get("phone") {
                None | Some(Value::Null) => {}
                Some(Value::Object(phone)) => {
                    for part in ["number", "international_dial_code", "area_code"] {
                        if !matches!(phone.get(part), Some(Value::String(_))) {
                            return Err(problem(
                                StatusCode::BAD_REQUEST,
                                "bad_request",
                                format!("person_data.phone.{part} must be a string"),
                            ));
                        }
                    }
                }
                Some(_) => {
                    return Err(problem(
                        StatusCode::BAD_REQUEST,
                        "bad_request",
                        "person_data.phone must be an object",
                    ));
                }
            }
        }
        let mut books = q.books();
        if !books.accounts.contains(&account_id) {
            return Err(problem(
                StatusCode::NOT_FOUND,
                "not_found",
                "unknown account",
            ));
        }
        let key = (account_id.clone(), person_id.to_owned());
        if books.persons.contains_key(&key) {
            return Err(problem(
                StatusCode::CONFLICT,
                "conflict",
                "person_id already registered",
            ));
        }
        books.persons.insert(key, document.map(str::to_owned));
        Ok((StatusCode::CREATED, axum::Json(Value::Object(body.clone()))).into_response())
    };
    run().unwrap_or_else(|r| r)
}

pub(super) async fn get_person(
    State(q): State<Arc<Qitech>>,
    headers: HeaderMap,
    Path((account_id, person_id)): Path<(String, String)>,
) -> Response {
    if let Err(r) = authorised(&q, &headers) {
        return r;
    }
    if q.books()
        .persons
        .contains_key(&(account_id, person_id.clone()))
    {
        axum::Json(json!({ "person_id": person_id })).into_response()
    } else {
        problem(StatusCode::NOT_FOUND, "not_found", "unknown person")
    }
}
