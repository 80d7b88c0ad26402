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

use serde_json::Value;
use sqlx::types::Json;
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
    events: Vec<(Uuid, &'static str, Value)>,
    calls: Vec<SealedCall>,
    done: Vec<(i64, StepKind, Subject)>,
    notices: Vec<(&'static str, String)>,
    /// The onboarding, the process id, unico's answer, seconds to the first poll, and whether
    /// it is final.
    new_process: Option<(Uuid, String, BiometricResult, f64, bool)>,
    finished_process: Option<(String, BiometricResult)>,
    finished_registration: Option<(Uuid, Option<DeviceRegistration>, Option<String>)>,
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
                                path, http_status, latency_ms, request, response, error,
                                answer_key_id, answer_ciphertext)
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::int4[], $8::int4[], $9::jsonb[], $10::jsonb[], $11::text[],
                         $30::text[], $31::bytea[])
), events AS (
    INSERT INTO onboarding_events (onboarding_id, kind, detail)
    SELECT * FROM unnest($12::uuid[], $13::text[], $14::jsonb[])
), done AS (
    UPDATE steps SET status = 'done', finished_at = now(), claimed_until = NULL
     WHERE id = $15::int8 AND status <> 'done'
), process_new AS (
    INSERT INTO unico_processes (process_id, onboarding_id, status, result, final, finished_at,
                                 next_poll_at)
    SELECT $19::text, $18::uuid, $20::int4, $21::jsonb, $22::bool,
           CASE WHEN $22::bool THEN now() END, now() + make_interval(secs => $23::float8)
     WHERE $18::uuid IS NOT NULL
), process_final AS (
    UPDATE unico_processes
       SET status = $25::int4, result = $26::jsonb, final = true, finished_at = now(),
           last_error = NULL
     WHERE process_id = $24::text
), registration AS (
    UPDATE device_registrations
       SET step = 'done', registration = COALESCE($28::jsonb, registration), last_error = $29::text,
           attempts = attempts + 1, finished_at = now()
     WHERE onboarding_id = $27::uuid AND step <> 'done'
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
    answer_key_id: Vec<Option<String>>,
    answer_ciphertext: Vec<Option<Vec<u8>>>,
}

impl Tx {
    pub(crate) fn new(inner: sqlx::Transaction<'static, Postgres>) -> Tx {
        Tx {
            inner,
            events: Vec::new(),
            calls: Vec::new(),
            done: Vec::new(),
            notices: Vec::new(),
            new_process: None,
            finished_process: None,
            finished_registration: None,
        }
    }

    /// A timeline entry of the onboarding, written at commit in the order recorded.
    pub fn event(&mut self, onboarding_id: Uuid, kind: &'static str, detail: Value) {
        self.events.push((onboarding_id, kind, detail));
    }

    /// The provider calls a step made, written at commit in the order they were made, what
    /// the providers said sealed under `cipher`.
    pub fn calls(&mut self, cipher: &PiiCipher, calls: Vec<CallRecord>) {
        self.calls
            .extend(calls.into_iter().map(|call| SealedCall::seal(cipher, call)));
    }

    /// The step ran to its end; marked done at commit.
    pub fn step_done(&mut self, step: &Step) {
        self.done.push((step.id, step.kind, step.subject));
    }

    /// A unico process CreateProcess answered for, stored at commit (final when `result` is),
    /// due for its first GetProcess `first_poll_in` after.
    pub async fn new_process(
        &mut self,
        onboarding_id: Uuid,
        result: &BiometricResult,
        first_poll_in: std::time::Duration,
    ) -> Result<(), sqlx::Error> {
        if self.new_process.is_some() {
            return crate::store::processes::insert(
                &mut *self.inner,
                onboarding_id,
                result,
                first_poll_in,
            )
            .await;
        }
        self.new_process = Some((
            onboarding_id,
            result.process_id.clone(),
            result.clone(),
            first_poll_in.as_secs_f64(),
            result.is_final(),
        ));
        Ok(())
    }

    /// The final answer of a unico process (or the give-up at its deadline), stored at commit;
    /// the process leaves the polling queue.
    pub async fn finish_process(
        &mut self,
        process_id: &str,
        result: &BiometricResult,
    ) -> Result<(), sqlx::Error> {
        match &mut self.new_process {
            // Stored by this transaction: it is stored final.
            Some((_, id, kept, _, final_)) if id == process_id => {
                *kept = result.clone();
                *final_ = true;
                return Ok(());
            }
            _ => {}
        }
        if self.finished_process.is_some() {
            return crate::store::processes::finish(&mut *self.inner, process_id, result).await;
        }
        self.finished_process = Some((process_id.to_owned(), result.clone()));
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
        self.finished_registration = Some((
            onboarding_id,
            registration.cloned(),
            error.map(str::to_owned),
        ));
        Ok(())
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
            && self.new_process.is_none()
            && self.finished_process.is_none()
            && self.finished_registration.is_none()
        {
            return Ok(());
        }
        let mut c = CallColumns::default();
        for sealed in std::mem::take(&mut self.calls) {
            c.answer_key_id.push(sealed.answer_key_id);
            c.answer_ciphertext.push(sealed.answer_ciphertext);
            let call = sealed.record;
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
        let new_process = self.new_process.take();
        let new_final = new_process.as_ref().map(|p| p.4);
        let new_poll_in = new_process.as_ref().map(|p| p.3);
        let (new_of, new_id, new_status, new_result) = match new_process {
            Some((of, id, r, ..)) => (Some(of), Some(id), Some(r.status), Some(Json(r))),
            None => (None, None, None, None),
        };
        let (final_id, final_status, final_result) = match self.finished_process.take() {
            Some((id, r)) => (Some(id), Some(r.status), Some(Json(r))),
            None => (None, None, None),
        };
        let (registration_of, registration, registration_error) =
            match self.finished_registration.take() {
                Some((id, registration, error)) => (Some(id), registration.map(Json), error),
                None => (None, None, None),
            };
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
            .bind(new_of)
            .bind(new_id)
            .bind(new_status)
            .bind(new_result)
            .bind(new_final)
            .bind(new_poll_in)
            .bind(final_id)
            .bind(final_status)
            .bind(final_result)
            .bind(registration_of)
            .bind(registration)
            .bind(registration_error)
            .bind(c.answer_key_id)
            .bind(c.answer_ciphertext)
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
