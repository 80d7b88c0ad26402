//! Strategies the property tests share.

use proptest::prelude::*;
use serde_json::{Map, Value};

/// Strings as hostile input carries them: any character, NUL and long runs included.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9 ._/-]{0,40}",
        Just(String::new()),
        Just("\u{0}".to_owned()),
        Just("..".to_owned()),
        "[0-9]{1,30}",
    ]
}

/// Any JSON value, nested a few levels, with the key names the parsers look for mixed in.
pub fn json() -> impl Strategy<Value = Value> {
    let keys = prop_oneof![
        text(),
        prop::sample::select(vec![
            "id",
            "status",
            "processId",
            "state",
            "data",
            "unicoId",
            "result",
            "liveness",
            "score",
            "identityFraudsters",
            "error",
            "code",
            "description",
            "access_token",
            "expires_in",
            "token_type",
            "analysis_status",
            "reason",
            "reason_description",
            "person",
            "cpf",
            "device",
            "risk_signals",
            "account",
            "selfie",
            "name",
        ])
        .prop_map(str::to_owned),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..8)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}
