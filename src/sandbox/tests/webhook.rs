//! The webhook that announces a finished process, and the scenarios that send none.

use super::*;

async fn receiver() -> (String, mpsc::UnboundedReceiver<(HeaderMap, Value)>) {
    let (sender, received) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/webhooks/unico",
        post(
            move |headers: HeaderMap, axum::Json(body): axum::Json<Value>| {
                let sender = sender.clone();
                async move {
                    let _ = sender.send((headers, body));
                }
            },
        ),
    );
    (format!("{}/webhooks/unico", serve(app).await), received)
}

#[tokio::test]
async fn finished_processes_are_announced_by_webhook() {
    let (url, mut received) = receiver().await;
    let delay = Duration::from_millis(100);
    let sandbox = Sandbox::start(config(&url, delay, Duration::from_millis(50))).await;
    let token = sandbox.token().await;
    let (_, created) = sandbox.create(&token, process("90000000841")).await;
    let id = created["id"].as_str().unwrap();

    let (headers, body) = tokio::time::timeout(Duration::from_secs(5), received.recv())
        .await
        .expect("no webhook within 5 s")
        .unwrap();
    assert_eq!(
        headers.get(WEBHOOK_HEADER).and_then(|v| v.to_str().ok()),
        Some(WEBHOOK_SECRET)
    );
    assert_eq!(
        body,
        json!({"processId": id, "state": "PROCESS_STATE_FINISHED", "flow": "id"})
    );
    // By the time the webhook arrives, GetProcess has the result.
    let (_, fetched) = sandbox.get(&token, id).await;
    assert_eq!(fetched["status"], 3);
    // Exactly one delivery.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(received.try_recv().is_err());
}

#[tokio::test]
async fn silent_scenarios_send_no_webhook() {
    let (url, mut received) = receiver().await;
    let delay = Duration::from_millis(100);
    let sandbox = Sandbox::start(config(&url, delay, Duration::from_millis(50))).await;
    let token = sandbox.token().await;
    let mut ids = Vec::new();
    // 25 finishes without telling anyone, 22 never finishes, 01 is synchronous.
    for code in ["90000002542", "90000002208", "90000000175"] {
        let (status, created) = sandbox.create(&token, process(code)).await;
        assert_eq!(status, 200);
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(received.try_recv().is_err(), "a webhook was sent");
    let (_, finished) = sandbox.get(&token, &ids[0]).await;
    assert_eq!(finished["status"], 3, "polling still sees 25 finish");
    let (_, stuck) = sandbox.get(&token, &ids[1]).await;
    assert_eq!(stuck["status"], 2);
}
