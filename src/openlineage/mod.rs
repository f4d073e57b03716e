//! OpenLineage events for a run: a START and a COMPLETE, FAIL or ABORT event for the
//! invocation (the job `<project>.<command>`) and for every model, seed, snapshot and
//! test it runs, each node's run naming the invocation's as its parent
//! (docs/operations.md). `event.rs` builds the events from the compiled project and the
//! results; `transport.rs` delivers them off the run's threads, so a receiver that is
//! down or slow changes neither the run's result nor, beyond a bounded wait at the end,
//! its duration.

mod event;
mod transport;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use self::event::{Context, EventType, JobRun};
use self::transport::Outbox;
use crate::compile::CompiledProject;
use crate::diagnostics::{Code, Diagnostic};
use crate::engine::DatasetNames;
use crate::history::{NodeResult, RunSummary, Status};
use crate::project::openlineage::OpenLineageConfig;

/// Emits one invocation's events.
pub struct Emitter {
    compiled: Arc<CompiledProject>,
    names: DatasetNames,
    namespace: String,
    parent: JobRun,
    /// The run id of each node that started.
    runs: Mutex<HashMap<String, String>>,
    outbox: Outbox,
}

/// A new run id: a UUID v7 (time-ordered, as the spec recommends).
fn run_id() -> String {
    let millis = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let random = uuid::Uuid::new_v4();
    let mut bytes = [0u8; 10];
    bytes.copy_from_slice(&random.as_bytes()[..10]);
    uuid::Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid().to_string()
}

impl Emitter {
    /// Starts the invocation's run (its START event is queued at once).
    pub fn start(config: &OpenLineageConfig, compiled: Arc<CompiledProject>, command: &str) -> Emitter {
        let parent = JobRun {
            namespace: config.namespace.clone(),
            name: format!("{}.{command}", compiled.project.name()),
            run_id: run_id(),
        };
        let names = DatasetNames::of(&compiled.project.target);
        let emitter = Emitter {
            compiled,
            names,
            namespace: config.namespace.clone(),
            parent,
            runs: Mutex::default(),
            outbox: Outbox::start(config.transport.clone()),
        };
        emitter.queue(&event::invocation(&emitter.parent, EventType::Start, chrono::Utc::now(), None));
        emitter
    }

    fn context(&self) -> Context<'_> {
        Context { compiled: &self.compiled, names: &self.names, parent: &self.parent }
    }

    fn queue(&self, event: &serde_json::Value) {
        self.outbox.send(serde_json::to_vec(event).unwrap_or_default());
    }

    fn job_run(&self, id: &str) -> (JobRun, bool) {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        let started = runs.contains_key(id);
        let run_id = runs.entry(id.to_string()).or_insert_with(run_id).clone();
        (JobRun { namespace: self.namespace.clone(), name: id.to_string(), run_id }, started)
    }

    /// A node begins: its START event.
    pub fn began(&self, id: &str) {
        let (run, _) = self.job_run(id);
        self.queue(&self.context().node_event(id, &run, EventType::Start, chrono::Utc::now(), None));
    }

    /// A node or test ended: its terminal event, after a START dated when it began for
    /// results that had none (audits run inside their model's job; skipped nodes).
    pub fn finished(&self, result: &NodeResult) {
        let id = &result.line.unique_id;
        let (run, started) = self.job_run(id);
        let context = self.context();
        if !started {
            let at = result.test.as_ref().map_or(result.started_at, |t| t.started_at);
            self.queue(&context.node_event(id, &run, EventType::Start, at, None));
        }
        let kind = match result.line.status {
            Status::Success | Status::Pass | Status::Warn | Status::Reused => EventType::Complete,
            Status::Error | Status::Fail => EventType::Fail,
            Status::Skipped => EventType::Abort,
        };
        self.queue(&context.node_event(id, &run, kind, chrono::Utc::now(), Some(result)));
    }

    /// Ends the invocation's run and waits (bounded) for delivery; a warning when some
    /// events could not be delivered.
    pub fn end(self, summary: Option<&RunSummary>, error: Option<&str>) -> Option<Diagnostic> {
        let failed = summary.is_none_or(RunSummary::failed) || error.is_some();
        let signal = summary.and_then(|s| s.interrupted);
        let kind = match (signal, failed) {
            (Some(_), _) => EventType::Abort,
            (None, true) => EventType::Fail,
            (None, false) => EventType::Complete,
        };
        let stopped = signal.map(|s| format!("interrupted by {}", s.name()));
        let error = stopped.as_deref().or(error).or(failed.then_some("a node or test failed"));
        self.queue(&event::invocation(&self.parent, kind, chrono::Utc::now(), error));
        let delivery = self.outbox.finish();
        (delivery.undelivered() > 0).then(|| {
            Diagnostic::warning(
                Code::OpenLineageUndelivered,
                format!(
                    "{} of {} OpenLineage events were not delivered: {}",
                    delivery.undelivered(),
                    delivery.queued,
                    delivery.first_error.unwrap_or_else(|| "unknown".into())
                ),
            )
            .with_note("the run's result does not depend on them")
        })
    }
}
