//! Searching decisions: every filter, and pages that neither skip nor repeat while decisions
//! arrive.

use super::*;

#[tokio::test]
async fn every_filter_narrows_the_search() {
    let h = TestApp::spawn().await;
    let long_ago = Utc::now() - chrono::Duration::days(20);
    let approved = h.seed(Spec::new(1, scored(60))).await;
    let review = h.seed(Spec::new(2, scored(10))).await;
    let rejected = h.seed(Spec::new(3, scored(-60))).await;
    let retry = h.seed(Spec::new(4, scored(0))).await;
    let rooted = h.seed(Spec::new(5, rooted(scored(60)))).await;
    let old_policy = h
        .seed(Spec {
            policy_version: Some("2025-01-01.1"),
            ..Spec::new(6, scored(60))
        })
        .await;
    let old = h
        .seed(Spec {
            decided_at: Some(long_ago),
            ..Spec::new(7, scored(60))
        })
        .await;
    // Onboarding received long ago (decided now).
    sqlx::query("UPDATE onboardings SET created_at = $2 WHERE id = $1")
        .bind(review.onboarding_id)
        .bind(long_ago)
        .execute(&h.db)
        .await
        .unwrap();
    let all = [
        &approved,
        &review,
        &rejected,
        &retry,
        &rooted,
        &old_policy,
        &old,
    ];
    assert_eq!(approved.outcome, "approved");
    assert_eq!(
        (
            review.outcome.as_str(),
            rejected.outcome.as_str(),
            retry.outcome.as_str()
        ),
        ("review", "rejected", "retry")
    );
    assert_eq!(rooted.reasons, ["device.rooted", "score.low_risk"]);

    // No filter: everything, newest first.
    let everything = h.search_ids(&[]).await;
    assert_eq!(set(&everything), set(all.iter().map(|s| s.decision_id)));
    assert_eq!(
        everything.last().unwrap(),
        &old.decision_id.to_string(),
        "oldest decision last"
    );

    let one = |s: &Seeded| vec![s.decision_id.to_string()];
    assert_eq!(
        h.search_ids(&[("outcome", "rejected")]).await,
        one(&rejected)
    );
    assert_eq!(h.search_ids(&[("outcome", "retry")]).await, one(&retry));
    assert_eq!(
        set(h.search_ids(&[("outcome", "review")]).await),
        set([review.decision_id, rooted.decision_id])
    );
    assert_eq!(
        h.search_ids(&[("reason", "device.rooted")]).await,
        one(&rooted)
    );
    assert_eq!(
        h.search_ids(&[("reason", "score.capture_error")]).await,
        one(&retry)
    );
    assert_eq!(
        set(h.search_ids(&[("reason", "score.low_risk")]).await),
        set([
            approved.decision_id,
            rooted.decision_id,
            old_policy.decision_id,
            old.decision_id
        ])
    );
    // The CPF matches with or without punctuation; a valid CPF nobody used matches nothing.
    assert_eq!(h.search_ids(&[("cpf", &cpf_from(3))]).await, one(&rejected));
    assert_eq!(
        h.search_ids(&[("cpf", &digits(&cpf_from(3)))]).await,
        one(&rejected)
    );
    assert!(h.search_ids(&[("cpf", &cpf_from(99))]).await.is_empty());
    assert_eq!(h.search_ids(&[("reference", "ref-4")]).await, one(&retry));
    assert!(
        h.search_ids(&[("reference", "ref-")]).await.is_empty(),
        "reference is exact"
    );
    assert_eq!(
        h.search_ids(&[("policy_version", "2025-01-01.1")]).await,
        one(&old_policy)
    );
    assert_eq!(
        h.search_ids(&[("policy_version", "2026-11-23.1")])
            .await
            .len(),
        6
    );

    let before_recent = rfc3339(Utc::now() - chrono::Duration::days(1));
    assert_eq!(
        h.search_ids(&[("decided_to", &before_recent)]).await,
        one(&old)
    );
    assert_eq!(
        h.search_ids(&[("decided_from", &before_recent)])
            .await
            .len(),
        6
    );
    assert_eq!(
        h.search_ids(&[("created_to", &before_recent)]).await,
        set_to_vec(&[&review, &old], &everything)
    );
    assert_eq!(
        h.search_ids(&[("created_from", &before_recent)])
            .await
            .len(),
        5
    );
    // Bounds are inclusive, to the microsecond.
    let at = rfc3339(rejected.decided_at);
    assert_eq!(
        h.search_ids(&[("decided_from", &at), ("decided_to", &at)])
            .await,
        one(&rejected)
    );
    // Filters combine.
    assert_eq!(
        h.search_ids(&[("outcome", "approved"), ("decided_from", &before_recent)])
            .await
            .len(),
        2
    );
    assert!(
        h.search_ids(&[("outcome", "approved"), ("cpf", &cpf_from(3))])
            .await
            .is_empty()
    );

    // Invalid values answer 422 naming each field.
    assert_eq!(
        h.problem_fields("/v1/decisions", &[("outcome", "maybe")])
            .await,
        ["outcome"]
    );
    assert_eq!(
        h.problem_fields("/v1/decisions", &[("reason", "score.nice")])
            .await,
        ["reason"]
    );
    assert_eq!(
        h.problem_fields("/v1/decisions", &[("cpf", "111.444.777-36")])
            .await,
        ["cpf"]
    );
    assert_eq!(
        h.problem_fields("/v1/decisions", &[("cpf", "abc")]).await,
        ["cpf"]
    );
    assert_eq!(
        h.problem_fields("/v1/decisions", &[("created_from", "yesterday")])
            .await,
        ["created_from"]
    );
    assert_eq!(
        h.problem_fields("/v1/decisions", &[("decided_to", "2026-13-01T00:00:00Z")])
            .await,
        ["decided_to"]
    );
    assert_eq!(
        h.problem_fields(
            "/v1/decisions",
            &[
                ("decided_from", "2026-02-01T00:00:00Z"),
                ("decided_to", "2026-01-01T00:00:00Z")
            ]
        )
        .await,
        ["decided_to"]
    );
    assert_eq!(
        h.problem_fields("/v1/decisions", &[("limit", "0")]).await,
        ["limit"]
    );
    assert_eq!(
        h.problem_fields("/v1/decisions", &[("limit", "501")]).await,
        ["limit"]
    );
    assert_eq!(
        h.problem_fields("/v1/decisions", &[("cursor", "not-a-cursor")])
            .await,
        ["cursor"]
    );
    assert_eq!(
        h.problem_fields("/v1/decisions", &[("outcomes", "approved")])
            .await,
        ["outcomes"]
    );
    assert_eq!(
        h.problem_fields("/v1/decisions", &[("reference", "")])
            .await,
        ["reference"]
    );
    assert_eq!(
        h.problem_fields("/v1/decisions", &[("outcome", "x"), ("limit", "x")])
            .await,
        ["outcome", "limit"],
        "every invalid field is named at once"
    );
    // A limit of 500 is accepted.
    h.get_json(AUDITOR, "/v1/decisions", &[("limit", "500")])
        .await;
    h.stop().await;
}

/// The ids of `wanted` in the order they have in `order`.
fn set_to_vec(wanted: &[&Seeded], order: &[String]) -> Vec<String> {
    let wanted = set(wanted.iter().map(|s| s.decision_id));
    order
        .iter()
        .filter(|id| wanted.contains(*id))
        .cloned()
        .collect()
}

#[tokio::test]
async fn pages_have_no_gaps_or_repeats_while_decisions_arrive() {
    let h = TestApp::spawn().await;
    let mut existing = BTreeSet::new();
    for n in 0..37 {
        existing.insert(
            h.seed(Spec::new(n, scored([60, 10, -60, 0][n as usize % 4])))
                .await
                .decision_id
                .to_string(),
        );
    }
    // Decisions keep arriving while the auditor pages, from the first page on: what is newer
    // than the first page never enters the pages that follow it.
    let writer_stop = CancellationToken::new();
    let mut writer = None;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    let mut between_pages = 0;
    loop {
        let mut query = vec![("limit", "5")];
        if let Some(c) = &cursor {
            query.push(("cursor", c));
        }
        let page = h.get_json(AUDITOR, "/v1/decisions", &query).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 5);
        seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        pages += 1;
        if writer.is_none() {
            let (db, state, stop) = (h.db.clone(), h.state.clone(), writer_stop.clone());
            writer = Some(tokio::spawn(async move {
                let mut n = 1000;
                while !stop.is_cancelled() {
                    seed(&db, &state, Spec::new(n, scored(60))).await;
                    n += 1;
                }
                n - 1000
            }));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        // Before the next page, at least one more decision is stored.
        let stored_now = |db: PgPool| async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM decisions")
                .fetch_one(&db)
                .await
                .unwrap()
        };
        let before = stored_now(h.db.clone()).await;
        let waited = tokio::time::Instant::now();
        while stored_now(h.db.clone()).await <= before {
            assert!(
                waited.elapsed() < Duration::from_secs(10),
                "the writer stalled"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        between_pages += 1;
        assert!(pages < 100, "paging does not end");
    }
    assert_eq!(
        between_pages,
        pages - 1,
        "decisions arrived between every two pages"
    );
    writer_stop.cancel();
    let inserted = writer.expect("the writer started").await.unwrap();
    assert!(inserted > 0, "decisions were written while paging");
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "no decision repeated across pages"
    );
    assert_eq!(
        unique, existing,
        "the pages hold exactly the decisions that existed at the start"
    );
    assert_eq!(pages, 8);
    h.stop().await;
}
