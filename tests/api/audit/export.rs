//! The export, streamed as CSV and NDJSON, read back with a parser of its own.

use super::*;

#[tokio::test]
async fn export_streams_every_matching_decision_as_csv_and_ndjson() {
    let h = TestApp::spawn().await;
    let tricky = "ref, with \"quotes\"\nand a line";
    let special = h
        .seed(Spec {
            reference: Some(tricky.into()),
            ..Spec::new(1, scored(-60))
        })
        .await;
    let formula = h
        .seed(Spec {
            reference: Some("=HYPERLINK(\"x\")".into()),
            ..Spec::new(2, scored(10))
        })
        .await;
    // More than one export batch (500), so the stream crosses a page boundary.
    let mut all = vec![special.clone(), formula.clone()];
    let mut tasks = tokio::task::JoinSet::new();
    for n in 10..530u32 {
        let (db, state) = (h.db.clone(), h.state.clone());
        tasks.spawn(async move {
            seed(&db, &state, Spec::new(n, scored([60, 10][n as usize % 2]))).await
        });
        if tasks.len() >= 8 {
            all.push(tasks.join_next().await.unwrap().unwrap());
        }
    }
    while let Some(s) = tasks.join_next().await {
        all.push(s.unwrap());
    }

    let (content_type, csv) = h.export(AUDITOR, &[("format", "csv")]).await;
    assert_eq!(content_type, "text/csv; charset=utf-8");
    let rows = parse_csv(&csv);
    let header = &rows[0];
    assert_eq!(header[..4], ["id", "onboarding_id", "reference", "cpf"]);
    assert!(
        rows.iter().all(|r| r.len() == header.len()),
        "every row has every column"
    );
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(rows.len() - 1, all.len());
    assert_eq!(
        set(rows[1..].iter().map(|r| r[0].clone())),
        set(all.iter().map(|s| s.decision_id))
    );
    let special_row = rows
        .iter()
        .find(|r| r[0] == special.decision_id.to_string())
        .unwrap();
    assert_eq!(special_row[col("reference")], tricky);
    assert_eq!(special_row[col("outcome")], "rejected");
    assert_eq!(special_row[col("reason_codes")], "score.high_risk");
    assert_eq!(special_row[col("score")], "-60");
    assert_eq!(special_row[col("cpf")], masked(&cpf_from(1)));
    assert_eq!(special_row[col("score_reject_max")], "-40");
    let formula_row = rows
        .iter()
        .find(|r| r[0] == formula.decision_id.to_string())
        .unwrap();
    assert_eq!(
        formula_row[col("reference")],
        "'=HYPERLINK(\"x\")",
        "formulas are defused"
    );
    // Newest first, like the listing.
    let decided: Vec<DateTime<Utc>> = rows[1..]
        .iter()
        .map(|r| {
            DateTime::parse_from_rfc3339(&r[col("decided_at")])
                .unwrap()
                .to_utc()
        })
        .collect();
    assert!(decided.windows(2).all(|w| w[0] >= w[1]));

    // The same filters apply.
    let (content_type, ndjson) = h
        .export(AUDITOR, &[("format", "ndjson"), ("outcome", "review")])
        .await;
    assert_eq!(content_type, "application/x-ndjson");
    let items: Vec<Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let expected_review: BTreeSet<String> = set(all
        .iter()
        .filter(|s| s.outcome == "review")
        .map(|s| s.decision_id));
    assert_eq!(
        set(items.iter().map(|i| i["id"].as_str().unwrap())),
        expected_review
    );
    assert!(
        items
            .iter()
            .all(|i| i["outcome"] == "review" && i["cpf"].as_str().unwrap().starts_with("***."))
    );
    let formula_item = items
        .iter()
        .find(|i| i["id"] == formula.decision_id.to_string())
        .unwrap();
    assert_eq!(
        formula_item["reference"], "=HYPERLINK(\"x\")",
        "JSON keeps the value as given"
    );

    // Nothing matches: a CSV with its header only, an empty NDJSON.
    let (_, empty_csv) = h
        .export(AUDITOR, &[("format", "csv"), ("reference", "nobody")])
        .await;
    assert_eq!(parse_csv(&empty_csv).len(), 1);
    let (_, empty) = h.export(AUDITOR, &[("reference", "nobody")]).await;
    assert!(empty.is_empty());
    assert_eq!(
        h.problem_fields("/v1/decisions/export", &[("format", "xlsx")])
            .await,
        ["format"]
    );
    assert_eq!(
        h.problem_fields("/v1/decisions/export", &[("outcome", "nope")])
            .await,
        ["outcome"]
    );
    h.stop().await;
}
