//! Running a step: the kind says which part of the flow does the work. A step that leads to
//! another one the writer holds (CreateProcess approved, so register the device) runs that one
//! next, in the same task, so the synchronous path never waits for a poll.

use tracing::Instrument;

use crate::domain::transitions::StepKind;
use crate::onboarding::applied::{Applied, Carried};
use crate::onboarding::error::FlowError;
use crate::onboarding::services::{Flow, Services};
use crate::onboarding::{biometrics, callbacks, device, validation};
use crate::store::steps::{self, Step, Subject};

/// Runs `held` steps on this replica at once, in the background: they are leased to this
/// replica already, and shutdown waits for them up to its grace. Past the replica's bound they
/// are handed to the runners instead, through the queue.
/// `carried` goes to the first of them: rows its writer's transaction stored, which that step
/// would otherwise read back (dropped when the step is handed over).
pub fn spawn(
    flow: &Flow,
    held: Vec<Step>,
    mut carried: Option<Carried>,
) -> Vec<tokio::task::JoinHandle<()>> {
    held.into_iter()
        .map(|step| {
            let task_flow = flow.clone();
            let carried = carried.take();
            match flow.inline_permits.clone().try_acquire_owned() {
                Ok(permit) => flow.inline.spawn(async move {
                    run_carrying(&task_flow, step, carried).await;
                    drop(permit);
                }),
                // Busy: the step goes back to the queue, due now, for any replica's runner.
                Err(_) => flow.inline.spawn(async move {
                    crate::metrics::step_handed_over();
                    if let Err(e) = steps::release(&task_flow.db, &step).await {
                        tracing::warn!(error = %e, "could not hand a step to the runners; it runs when its lease ends");
                    }
                }),
            }
        })
        .collect()
}

/// Runs `step` and whatever it hands on. A failure on veredito's side backs the step off (see
/// `failed`); a provider's failure is the step's own business.
pub async fn run(flow: &Services, step: Step) {
    run_carrying(flow, step, None).await
}

/// `run`, with what the step's writer already holds of the rows it works on.
async fn run_carrying(flow: &Services, step: Step, carried: Option<Carried>) {
    let mut queue = vec![step];
    // What the last step's transaction wrote that the next one would otherwise read back.
    let mut carried = carried;
    while let Some(step) = queue.pop() {
        let span = tracing::info_span!(
            "step",
            otel.name = %format_args!("step {}", step.kind),
            otel.kind = "consumer",
            kind = %step.kind,
            attempt = step.attempts,
            onboarding_id = tracing::field::Empty,
            device_validation_id = tracing::field::Empty,
        );
        crate::telemetry::continue_from(&span, step.traceparent.as_deref());
        match step.subject {
            Subject::Onboarding(id) => span.record("onboarding_id", tracing::field::display(id)),
            Subject::Validation(id) => {
                span.record("device_validation_id", tracing::field::display(id))
            }
            Subject::Callback(_) => &span,
        };
        // A decision this step makes wakes the waiters here, with its answer, before the notice
        // of it does.
        let _working = match step.subject {
            Subject::Onboarding(id) => Some(flow.wake.waiters.working_on(id)),
            _ => None,
        };
        // The claim is renewed while the step runs; a claim that cannot be kept stops the run
        // before another runner may take the step.
        let holding = flow.leases.hold(&step);
        let ran = tokio::select! {
            ran = run_one(flow, &step, carried.take()).instrument(span.clone()) => ran,
            () = holding.lost() => {
                crate::metrics::step_lease_lost(step.kind.as_str());
                tracing::warn!(parent: &span, kind = %step.kind, "the step's claim could not be renewed; stopped so that no other runner runs it at the same time");
                continue;
            }
        };
        drop(holding);
        match ran {
            Ok(mut applied) => {
                if applied.decided {
                    if let Subject::Onboarding(id) = step.subject {
                        flow.wake.decided_as(id, applied.view.take());
                    }
                }
                queue.extend(applied.steps);
                carried = applied.carried;
            }
            Err(error) => failed(flow, &step, &error).instrument(span).await,
        }
    }
}

/// A step failed on veredito's side: it backs off, and after `jobs.step_max_failures` in a row
/// it ends `failed`, for an operator to look at and retry.
async fn failed(flow: &Services, step: &Step, error: &FlowError) {
    crate::metrics::step_failed(step.kind.as_str());
    let max = flow.settings.jobs.step_max_failures;
    match steps::fail(&flow.db, step, error.class(), |n| flow.step_retry(n), max).await {
        Ok(steps::Failed::Retried(wait)) => {
            tracing::warn!(kind = %step.kind, error = %error, retry_in_ms = wait.as_millis() as u64, "step failed; it runs again after a backoff");
        }
        Ok(steps::Failed::GaveUp) => {
            crate::metrics::step_gave_up(step.kind.as_str());
            tracing::error!(kind = %step.kind, error = %error, failures = max, "step failed too many times in a row; it stays failed until an operator retries it (veredito retry-steps)");
        }
        Err(e) => {
            tracing::warn!(kind = %step.kind, error = %error, record_error = %e, "step failed and its failure could not be recorded; it runs again when its claim runs out");
        }
    }
}

async fn run_one(
    flow: &Services,
    step: &Step,
    carried: Option<Carried>,
) -> Result<Applied, FlowError> {
    match (step.kind, step.subject) {
        (StepKind::CreateProcess, Subject::Onboarding(id)) => {
            biometrics::create_process(flow, step, id, Carried::received(carried, id)).await
        }
        (StepKind::ReadProcess, Subject::Onboarding(id)) => {
            biometrics::read_process(flow, step, id, Carried::process(carried, id)).await
        }
        (StepKind::RegisterDevice, Subject::Onboarding(id)) => {
            device::register(flow, step, id, Carried::registration(carried, id)).await
        }
        (StepKind::ReadDevice, Subject::Onboarding(id)) => {
            device::register(flow, step, id, None).await
        }
        (StepKind::OpenFinanceSignal, Subject::Onboarding(id)) => {
            device::send_risk_signal(flow, step, id).await
        }
        (StepKind::DeliverCallback, Subject::Callback(id)) => {
            callbacks::deliver(flow, step, id).await
        }
        (StepKind::SendValidation | StepKind::ReadValidation, Subject::Validation(id)) => {
            validation::advance(flow, step, id).await
        }
        (kind, subject) => {
            tracing::error!(%kind, ?subject, "a step of this kind cannot work on this subject; dropped");
            steps::complete(&flow.db, step).await?;
            Ok(Applied::default())
        }
    }
}
