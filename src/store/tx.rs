//! A write transaction that keeps its append-only rows until it commits: the timeline events,
//! the provider calls, the finished steps, the notifications a state change leaves behind and
//! the unico webhook that set it off are sent in one statement just before COMMIT, instead of one round trip each. Everything
//! else goes through the connection at once, as in any transaction (`Tx` dereferences to it).
//!
//! Nothing kept here is read back in the same transaction: the timeline and the call log are
//! read by later requests, a finished step by later claims, and a notification is delivered at
//! commit in any case. A step is queued only after a pending step of the same kind for the same
//! subject is finished, so `steps::queue` flushes the finished steps first when one would
//! collide with the new one.

use std::ops::{Deref, DerefMut};

use serde_json::Value;
use sqlx::{PgConnection, Postgres};
use uuid::Uuid;

use crate::domain::transitions::StepKind;
use crate::providers::CallRecord;
use crate::store::steps::{Step, Subject};
use crate::store::webhooks::NewWebhook;

pub struct Tx {
    inner: sqlx::Transaction<'static, Postgres>,
    events: Vec<(Uuid, &'static str, Value)>,
    calls: Vec<CallRecord>,
    done: Vec<(i64, StepKind, Subject)>,
    notices: Vec<(&'static str, String)>,
    webhooks: WebhookColumns,
}

/// The unico notifications kept, column by column, as `unnest` takes them.
#[derive(Default)]
struct WebhookColumns {
    authenticated: Vec<bool>,
    process_id: Vec<Option<String>>,
    state: Vec<Option<String>>,
    payload: Vec<Option<Value>>,
    known_process: Vec<bool>,
}

impl Deref for Tx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.inner
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.inner
    }
}

/// The statement that writes what a transaction kept: data-modifying CTEs run once each, to
/// completion, whether or not the query reads them.
const FLUSH: &str = "
WITH calls AS (
    INSERT INTO provider_calls (onboarding_id, device_validation_id, provider, operation, method,
                                path, http_status, latency_ms, request, response, error)
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::int4[], $8::int4[], $9::jsonb[], $10::jsonb[], $11::text[])
), events AS (
    INSERT INTO onboarding_events (onboarding_id, kind, detail)
    SELECT * FROM unnest($12::uuid[], $13::text[], $14::jsonb[])
), done AS (
    UPDATE steps SET status = 'done', finished_at = now(), claimed_until = NULL
     WHERE id = $15::int8 AND status <> 'done'
), hooks AS (
    INSERT INTO unico_webhooks (authenticated, process_id, state, payload, known_process)
    SELECT * FROM unnest($18::bool[], $19::text[], $20::text[], $21::jsonb[], $22::bool[])
)
SELECT pg_notify(channel, payload) FROM unnest($16::text[], $17::text[]) AS n(channel, payload)";

/// The provider calls kept, column by column, as `unnest` takes them.
#[derive(Default)]
struct CallColumns {
    onboarding: Vec<Option<Uuid>>,
    validation: Vec<Option<Uuid>>,
    provider: Vec<&'static str>,
    operation: Vec<&'static str>,
    method: Vec<&'static str>,
    path: Vec<String>,
    status: Vec<Option<i32>>,
    latency: Vec<i32>,
    request: Vec<Option<Value>>,
    response: Vec<Option<Value>>,
    error: Vec<Option<String>>,
}

impl Tx {
    pub(crate) fn new(inner: sqlx::Transaction<'static, Postgres>) -> Tx {
        Tx {
            inner,
            events: Vec::new(),
            calls: Vec::new(),
            done: Vec::new(),
            notices: Vec::new(),
            webhooks: WebhookColumns::default(),
        }
    }

    /// A timeline entry of the onboarding, written at commit in the order recorded.
    pub fn event(&mut self, onboarding_id: Uuid, kind: &'static str, detail: Value) {
        self.events.push((onboarding_id, kind, detail));
    }

    /// The provider calls a step made, written at commit in the order they were made.
    pub fn calls(&mut self, calls: Vec<CallRecord>) {
        self.calls.extend(calls);
    }

    /// The step ran to its end; marked done at commit.
    pub fn step_done(&mut self, step: &Step) {
        self.done.push((step.id, step.kind, step.subject));
    }

    /// A unico notification, recorded at commit (nothing reads it back in the same transaction).
    pub fn webhook(&mut self, hook: NewWebhook<'_>) {
        let kept = &mut self.webhooks;
        kept.authenticated.push(hook.authenticated);
        kept.process_id.push(hook.process_id.map(str::to_owned));
        kept.state.push(hook.state.map(str::to_owned));
        kept.payload.push(hook.payload);
        kept.known_process.push(hook.known_process);
    }

    /// A NOTIFY sent when the transaction commits (PostgreSQL folds repeats of the same one).
    pub fn notify(&mut self, channel: &'static str, payload: String) {
        if !self
            .notices
            .iter()
            .any(|(c, p)| *c == channel && *p == payload)
        {
            self.notices.push((channel, payload));
        }
    }

    /// Whether a step of `kind` for `subject` is kept to be marked done at commit.
    pub(crate) fn finishing(&self, kind: StepKind, subject: Subject) -> bool {
        self.done.iter().any(|&(_, k, s)| k == kind && s == subject)
    }

    /// Sends what is kept, in one statement (none when nothing is).
    pub async fn flush(&mut self) -> Result<(), sqlx::Error> {
        if self.events.is_empty()
            && self.calls.is_empty()
            && self.done.is_empty()
            && self.notices.is_empty()
            && self.webhooks.authenticated.is_empty()
        {
            return Ok(());
        }
        let mut c = CallColumns::default();
        for call in std::mem::take(&mut self.calls) {
            c.onboarding.push(call.context.onboarding_id);
            c.validation.push(call.context.device_validation_id);
            c.provider.push(call.provider);
            c.operation.push(call.operation);
            c.method.push(call.method);
            c.path.push(call.path);
            c.status.push(call.http_status.map(i32::from));
            c.latency
                .push(i32::try_from(call.latency_ms).unwrap_or(i32::MAX));
            c.request.push(call.request);
            c.response.push(call.response);
            c.error.push(call.error);
        }
        let (mut event_ids, mut event_kinds, mut event_details) =
            (Vec::new(), Vec::new(), Vec::new());
        for (id, kind, detail) in std::mem::take(&mut self.events) {
            event_ids.push(id);
            event_kinds.push(kind);
            event_details.push(detail);
        }
        // One step per transaction is the rule; any other is finished by a statement of its own,
        // since PostgreSQL plans `id = ANY($1)` on a young table as a scan of it, where `id = $1`
        // is always a look-up in the primary key.
        let mut done = std::mem::take(&mut self.done).into_iter().map(|d| d.0);
        let first_done = done.next();
        for id in done {
            crate::store::steps::complete_id(&mut *self.inner, id).await?;
        }
        let (channels, payloads): (Vec<&str>, Vec<String>) =
            std::mem::take(&mut self.notices).into_iter().unzip();
        let hooks = std::mem::take(&mut self.webhooks);
        sqlx::query(FLUSH)
            .bind(c.onboarding)
            .bind(c.validation)
            .bind(c.provider)
            .bind(c.operation)
            .bind(c.method)
            .bind(c.path)
            .bind(c.status)
            .bind(c.latency)
            .bind(c.request)
            .bind(c.response)
            .bind(c.error)
            .bind(event_ids)
            .bind(event_kinds)
            .bind(event_details)
            .bind(first_done)
            .bind(channels)
            .bind(payloads)
            .bind(hooks.authenticated)
            .bind(hooks.process_id)
            .bind(hooks.state)
            .bind(hooks.payload)
            .bind(hooks.known_process)
            .execute(&mut *self.inner)
            .await?;
        Ok(())
    }

    /// Writes what is kept, then commits.
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        self.flush().await?;
        self.inner.commit().await
    }
}
