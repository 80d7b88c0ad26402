//! A write transaction that keeps the rows nothing reads back until it commits: the timeline
//! events, the provider calls, the finished steps, the notifications a state change leaves
//! behind, the unico process stored or finished and the device registration finished are sent
//! in one statement just before COMMIT, instead of one round trip each. Everything else goes
//! through the connection at once, as in any transaction (`Tx` dereferences to it).
//!
//! Nothing kept here is read back in the same transaction: the timeline and the call log are
//! read by later requests, a finished step by later claims, a process and a registration by
//! later steps and views, and a notification is delivered at commit in any case. What must read
//! them in the transaction sends them first (`flush`): a step is queued only after a pending
//! step of the same kind for the same subject is finished, so `steps::queue` flushes the
//! finished steps first when one would collide with the new one, and a callback whose body is
//! read in the transaction flushes before it reads.

use std::ops::{Deref, DerefMut};

use base64::Engine as _;
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, Postgres};
use uuid::Uuid;

use crate::crypto::PiiCipher;
use crate::domain::evidence::{BiometricResult, DeviceRegistration};
use crate::domain::transitions::StepKind;
use crate::providers::CallRecord;
use crate::store::calls::SealedCall;
use crate::store::steps::{Step, Subject};

pub struct Tx {
    inner: sqlx::Transaction<'static, Postgres>,
    events: Vec<Event>,
    calls: Vec<Call>,
    done: Vec<(i64, StepKind, Subject)>,
    notices: Vec<Notice>,
    new_processes: Vec<NewProcess>,
    finished_process: Option<FinishedProcess>,
    finished_registration: Option<FinishedRegistration>,
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

// What a transaction keeps, each row as the statement at its commit reads it (a JSON document
// per table, each field named as the column it goes to): a handful of typed parameters, rather
// than one array per column.

#[derive(Serialize)]
struct Event {
    onboarding_id: Uuid,
    kind: &'static str,
    detail: Value,
}

#[derive(Serialize)]
struct Call {
    onboarding_id: Option<Uuid>,
    device_validation_id: Option<Uuid>,
    provider: &'static str,
    operation: &'static str,
    method: &'static str,
    path: String,
    http_status: Option<i32>,
    latency_ms: i32,
    request: Option<Value>,
    response: Option<Value>,
    error: Option<String>,
    answer_key_id: Option<String>,
    /// Base64 (JSON has no bytes); decoded by the statement.
    answer_ciphertext: Option<String>,
}

impl From<SealedCall> for Call {
    fn from(sealed: SealedCall) -> Call {
        let call = sealed.record;
        Call {
            onboarding_id: call.context.onboarding_id,
            device_validation_id: call.context.device_validation_id,
            provider: call.provider,
            operation: call.operation,
            method: call.method,
            path: call.path,
            http_status: call.http_status.map(i32::from),
            latency_ms: i32::try_from(call.latency_ms).unwrap_or(i32::MAX),
            request: call.request,
            response: call.response,
            error: call.error,
            answer_key_id: sealed.answer_key_id,
            answer_ciphertext: sealed
                .answer_ciphertext
                .map(|c| base64::engine::general_purpose::STANDARD.encode(c)),
        }
    }
}

#[derive(Serialize, PartialEq)]
struct Notice {
    channel: &'static str,
    payload: String,
}

#[derive(Serialize)]
struct NewProcess {
    process_id: String,
    onboarding_id: Uuid,
    status: i32,
    result: BiometricResult,
    #[serde(rename = "final")]
    final_: bool,
}

#[derive(Serialize)]
struct FinishedProcess {
    process_id: String,
    status: i32,
    result: BiometricResult,
}

#[derive(Serialize)]
struct FinishedRegistration {
    onboarding_id: Uuid,
    registration: Option<DeviceRegistration>,
    last_error: Option<String>,
}

/// `rows` as the JSON document the statement reads.
fn document<T: Serialize>(rows: &T) -> Result<Value, sqlx::Error> {
    serde_json::to_value(rows).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

impl Tx {
    pub(crate) fn new(inner: sqlx::Transaction<'static, Postgres>) -> Tx {
        Tx {
            inner,
            events: Vec::new(),
            calls: Vec::new(),
            done: Vec::new(),
            notices: Vec::new(),
            new_processes: Vec::new(),
            finished_process: None,
            finished_registration: None,
        }
    }

    /// A timeline entry of the onboarding, written at commit in the order recorded.
    pub fn event(&mut self, onboarding_id: Uuid, kind: &'static str, detail: Value) {
        self.events.push(Event {
            onboarding_id,
            kind,
            detail,
        });
    }

    /// The provider calls a step made, written at commit in the order they were made, what
    /// the providers said sealed under `cipher`.
    pub fn calls(&mut self, cipher: &PiiCipher, calls: Vec<CallRecord>) {
        self.calls.extend(
            calls
                .into_iter()
                .map(|call| Call::from(SealedCall::seal(cipher, call))),
        );
    }

    /// The step ran to its end; marked done at commit.
    pub fn step_done(&mut self, step: &Step) {
        self.done.push((step.id, step.kind, step.subject));
    }

    /// A unico process CreateProcess answered for, stored at commit (final when `result` is).
    pub fn new_process(&mut self, onboarding_id: Uuid, result: &BiometricResult) {
        self.new_processes.push(NewProcess {
            process_id: result.process_id.clone(),
            onboarding_id,
            status: result.status,
            result: result.clone(),
            final_: result.is_final(),
        });
    }

    /// The final answer of a unico process (or the give-up at its deadline), stored at commit;
    /// the process leaves the polling queue.
    pub async fn finish_process(
        &mut self,
        process_id: &str,
        result: &BiometricResult,
    ) -> Result<(), sqlx::Error> {
        if let Some(new) = self
            .new_processes
            .iter_mut()
            .find(|p| p.process_id == process_id)
        {
            // Stored by this transaction: it is stored final.
            new.status = result.status;
            new.result = result.clone();
            new.final_ = true;
            return Ok(());
        }
        if self.finished_process.is_some() {
            return crate::store::processes::finish(&mut *self.inner, process_id, result).await;
        }
        self.finished_process = Some(FinishedProcess {
            process_id: process_id.to_owned(),
            status: result.status,
            result: result.clone(),
        });
        Ok(())
    }

    /// The device registration of an onboarding is over: QI Tech's last answer (when there is
    /// one) and the last failure's code, stored at commit.
    pub async fn finish_registration(
        &mut self,
        onboarding_id: Uuid,
        registration: Option<&DeviceRegistration>,
        error: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        if self.finished_registration.is_some() {
            return crate::store::devices::set_registration(
                &mut *self.inner,
                onboarding_id,
                crate::store::devices::step::DONE,
                registration,
                error,
            )
            .await;
        }
        self.finished_registration = Some(FinishedRegistration {
            onboarding_id,
            registration: registration.cloned(),
            last_error: error.map(str::to_owned),
        });
        Ok(())
    }

    /// A NOTIFY sent when the transaction commits (PostgreSQL folds repeats of the same one).
    pub fn notify(&mut self, channel: &'static str, payload: String) {
        let notice = Notice { channel, payload };
        if !self.notices.contains(&notice) {
            self.notices.push(notice);
        }
    }

    /// Whether a step of `kind` for `subject` is kept to be marked done at commit.
    pub(crate) fn finishing(&self, kind: StepKind, subject: Subject) -> bool {
        self.done.iter().any(|&(_, k, s)| k == kind && s == subject)
    }

    /// Sends what is kept, in one statement (none when nothing is): data-modifying CTEs run once
    /// each, to completion, whether or not the query reads them.
    pub async fn flush(&mut self) -> Result<(), sqlx::Error> {
        if self.events.is_empty()
            && self.calls.is_empty()
            && self.done.is_empty()
            && self.notices.is_empty()
            && self.new_processes.is_empty()
            && self.finished_process.is_none()
            && self.finished_registration.is_none()
        {
            return Ok(());
        }
        // One step per transaction is the rule; any other is finished by a statement of its own,
        // since PostgreSQL plans `id = ANY($1)` on a young table as a scan of it, where `id = $1`
        // is always a look-up in the primary key.
        let mut done = std::mem::take(&mut self.done).into_iter().map(|d| d.0);
        let first_done = done.next();
        for id in done {
            crate::store::steps::complete_id(&mut *self.inner, id).await?;
        }
        let calls = document(&std::mem::take(&mut self.calls))?;
        let events = document(&std::mem::take(&mut self.events))?;
        let notices = document(&std::mem::take(&mut self.notices))?;
        let new_processes = document(&std::mem::take(&mut self.new_processes))?;
        let finished_process = self
            .finished_process
            .take()
            .as_ref()
            .map(document)
            .transpose()?;
        let finished_registration = (self.finished_registration.take().as_ref())
            .map(document)
            .transpose()?;
        crate::store::steps::finishing!(
            first_done,
            "calls AS (
                 INSERT INTO provider_calls (onboarding_id, device_validation_id, provider,
                                             operation, method, path, http_status, latency_ms,
                                             request, response, error, answer_key_id,
                                             answer_ciphertext)
                 SELECT onboarding_id, device_validation_id, provider, operation, method, path,
                        http_status, latency_ms, request, response, error, answer_key_id,
                        decode(answer_ciphertext, 'base64')
                   FROM jsonb_to_recordset($2::jsonb) AS c(
                        onboarding_id uuid, device_validation_id uuid, provider text,
                        operation text, method text, path text, http_status int4,
                        latency_ms int4, request jsonb, response jsonb, error text,
                        answer_key_id text, answer_ciphertext text)
             ), events AS (
                 INSERT INTO onboarding_events (onboarding_id, kind, detail)
                 SELECT onboarding_id, kind, detail
                   FROM jsonb_to_recordset($3::jsonb) AS e(onboarding_id uuid, kind text, detail jsonb)
             ), process_new AS (
                 INSERT INTO unico_processes (process_id, onboarding_id, status, result, final,
                                              finished_at)
                 SELECT process_id, onboarding_id, status, result, final,
                        CASE WHEN final THEN now() END
                   FROM jsonb_to_recordset($5::jsonb) AS p(
                        process_id text, onboarding_id uuid, status int4, result jsonb, final bool)
             ), process_final AS (
                 UPDATE unico_processes u
                    SET status = f.status, result = f.result, final = true, finished_at = now(),
                        last_error = NULL
                   FROM jsonb_to_record($6::jsonb) AS f(process_id text, status int4, result jsonb)
                  WHERE u.process_id = f.process_id
             ), registration AS (
                 UPDATE device_registrations r
                    SET step = 'done', registration = COALESCE(d.registration, r.registration),
                        last_error = d.last_error, attempts = r.attempts + 1, finished_at = now()
                   FROM jsonb_to_record($7::jsonb) AS d(
                        onboarding_id uuid, registration jsonb, last_error text)
                  WHERE r.onboarding_id = d.onboarding_id AND r.step <> 'done'
             )
             SELECT pg_notify(channel, payload)
               FROM jsonb_to_recordset($4::jsonb) AS n(channel text, payload text)",
            calls,
            events,
            notices,
            new_processes,
            finished_process,
            finished_registration,
        )
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
