//! Runs jobs over the DAG: each node starts when its dependencies succeeded, up to
//! `threads` at once; a failure skips the node's descendants while independent branches
//! go on, or stops everything with `fail_fast` or an [`Interrupt`].

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::history::Signal;

/// How long running jobs may take to end after an interrupt before they are stopped.
const GRACE: Duration = Duration::from_secs(2);

/// Set once when a run is interrupted: nothing new starts, and running jobs get
/// [`GRACE`] to end (the engine cancels their statements) before they are stopped.
#[derive(Clone, Debug)]
pub struct Interrupt(Arc<watch::Sender<Option<Signal>>>);

impl Default for Interrupt {
    fn default() -> Interrupt {
        Interrupt(Arc::new(watch::Sender::new(None)))
    }
}

impl Interrupt {
    /// Interrupts the run; the first signal is the one kept.
    pub fn trigger(&self, signal: Signal) {
        self.0.send_if_modified(|s| s.is_none() && s.replace(signal).is_none());
    }

    /// The signal that interrupted the run, if one did.
    pub fn signal(&self) -> Option<Signal> {
        *self.0.borrow()
    }

    async fn wait(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(Option::is_some).await;
    }
}

/// How one job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus<T, E = String> {
    Done(T),
    Failed(E),
    /// Not run: a dependency failed or was skipped, or the run stopped (`fail_fast`).
    Skipped(String),
}

/// A node to run and the nodes it waits for (only nodes in the same run).
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub deps: BTreeSet<String>,
}

/// Runs `jobs` in dependency order (the order given breaks ties) and reports each result
/// through `on_done` as it finishes. Returns every job's status, in completion order.
/// After `interrupt`, jobs not started are skipped, and jobs still running after the
/// grace period are stopped and fail.
pub async fn run_jobs<T, E, F, Fut>(
    jobs: Vec<Job>,
    threads: usize,
    fail_fast: bool,
    interrupt: &Interrupt,
    work: F,
    mut on_done: impl FnMut(&str, &JobStatus<T, E>),
) -> Vec<(String, JobStatus<T, E>)>
where
    T: Send + 'static,
    E: Send + 'static + From<String>,
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
{
    let order: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
    let deps: BTreeMap<String, BTreeSet<String>> = jobs.into_iter().map(|j| (j.id, j.deps)).collect();
    let mut pending: Vec<String> = order;
    let mut done: BTreeMap<String, bool> = BTreeMap::new();
    let mut results = Vec::new();
    let mut running: JoinSet<Result<T, E>> = JoinSet::new();
    let mut ids: BTreeMap<tokio::task::Id, String> = BTreeMap::new();
    let mut stopped = false;
    let mut deadline: Option<tokio::time::Instant> = None;
    let threads = threads.max(1);
    loop {
        let interrupted = interrupt.signal();
        if interrupted.is_some() && deadline.is_none() {
            deadline = Some(tokio::time::Instant::now() + GRACE);
        }
        // Start (or skip) whatever is ready, in the given order.
        let mut i = 0;
        while i < pending.len() {
            let id = &pending[i];
            let my_deps = &deps[id];
            let failed_dep = my_deps.iter().find(|d| done.get(*d) == Some(&false));
            let ready = my_deps.iter().all(|d| done.contains_key(d));
            if stopped || failed_dep.is_some() || interrupted.is_some() {
                let reason = match (interrupted, failed_dep) {
                    (Some(signal), _) => format!("the run was interrupted ({})", signal.name()),
                    (None, Some(d)) => format!("upstream `{d}` did not succeed"),
                    (None, None) => "the run stopped after a failure (--fail-fast)".to_string(),
                };
                let id = pending.remove(i);
                let status = JobStatus::Skipped(reason);
                on_done(&id, &status);
                done.insert(id.clone(), false);
                results.push((id, status));
                i = 0;
                continue;
            }
            if ready && running.len() < threads {
                let id = pending.remove(i);
                let fut = work(id.clone());
                let handle = running.spawn(fut);
                ids.insert(handle.id(), id);
                continue;
            }
            i += 1;
        }
        if running.is_empty() {
            break;
        }
        let joined = tokio::select! {
            joined = running.join_next_with_id() => joined,
            _ = interrupt.wait(), if interrupted.is_none() => continue,
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {
                running.abort_all();
                continue;
            }
        };
        let Some(joined) = joined else { break };
        let (id, result) = match joined {
            Ok((task, result)) => (ids.remove(&task).unwrap_or_default(), result),
            Err(e) => {
                let message = match interrupt.signal() {
                    Some(signal) if e.is_cancelled() => format!("interrupted ({}) while running", signal.name()),
                    _ => format!("task failed: {e}"),
                };
                (ids.remove(&e.id()).unwrap_or_default(), Err(E::from(message)))
            }
        };
        let status = match result {
            Ok(t) => JobStatus::Done(t),
            Err(e) => {
                if fail_fast {
                    stopped = true;
                }
                JobStatus::Failed(e)
            }
        };
        on_done(&id, &status);
        done.insert(id.clone(), matches!(status, JobStatus::Done(_)));
        results.push((id, status));
    }
    results
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn job(id: &str, deps: &[&str]) -> Job {
        Job { id: id.into(), deps: deps.iter().map(|d| d.to_string()).collect() }
    }

    fn statuses(results: &[(String, JobStatus<(), String>)]) -> BTreeMap<String, &'static str> {
        results
            .iter()
            .map(|(id, s)| {
                let k = match s {
                    JobStatus::Done(_) => "done",
                    JobStatus::Failed(_) => "failed",
                    JobStatus::Skipped(_) => "skipped",
                };
                (id.clone(), k)
            })
            .collect()
    }

    #[tokio::test]
    async fn a_failure_skips_descendants_and_independent_branches_go_on() {
        let jobs = vec![job("a", &[]), job("b", &["a"]), job("c", &["b"]), job("x", &[]), job("y", &["x"])];
        let results = run_jobs(
            jobs,
            2,
            false,
            &Interrupt::default(),
            |id| async move { if id == "b" { Err("boom".into()) } else { Ok(()) } },
            |_, _| {},
        )
        .await;
        let s = statuses(&results);
        assert_eq!(s["a"], "done");
        assert_eq!(s["b"], "failed");
        assert_eq!(s["c"], "skipped");
        assert_eq!(s["x"], "done");
        assert_eq!(s["y"], "done");
    }

    #[tokio::test]
    async fn fail_fast_skips_everything_not_started() {
        let jobs = vec![job("a", &[]), job("b", &["a"]), job("x", &["a"])];
        let results = run_jobs(
            jobs,
            1,
            true,
            &Interrupt::default(),
            |id| async move { if id == "a" { Err("boom".into()) } else { Ok(()) } },
            |_, _| {},
        )
        .await;
        let s = statuses(&results);
        assert_eq!((s["a"], s["b"], s["x"]), ("failed", "skipped", "skipped"));
    }

    #[tokio::test]
    async fn dependencies_finish_before_dependents_start() {
        use std::sync::Mutex;
        let log = Arc::new(Mutex::new(Vec::new()));
        let jobs = vec![job("a", &[]), job("b", &["a"]), job("c", &["a", "b"])];
        let l = log.clone();
        run_jobs(
            jobs,
            4,
            false,
            &Interrupt::default(),
            move |id| {
                let l = l.clone();
                async move {
                    l.lock().unwrap().push(format!("start {id}"));
                    tokio::task::yield_now().await;
                    l.lock().unwrap().push(format!("end {id}"));
                    Ok::<(), String>(())
                }
            },
            |_, _| {},
        )
        .await;
        let log = log.lock().unwrap().clone();
        assert_eq!(log, ["start a", "end a", "start b", "end b", "start c", "end c"]);
    }

    #[tokio::test]
    async fn an_interrupt_skips_what_did_not_start_and_stops_what_runs_after_the_grace() {
        let interrupt = Interrupt::default();
        let trigger = interrupt.clone();
        // `a` ends at once; `slow` never would; `b` waits on `a`, `c` on `slow`.
        let jobs = vec![job("a", &[]), job("slow", &[]), job("b", &["a"]), job("c", &["slow"])];
        let results = run_jobs(
            jobs,
            2,
            false,
            &interrupt,
            move |id| {
                let trigger = trigger.clone();
                async move {
                    if id == "slow" {
                        std::future::pending::<()>().await;
                    }
                    if id == "a" {
                        trigger.trigger(Signal::Interrupt);
                        trigger.trigger(Signal::Terminate);
                    }
                    Ok::<(), String>(())
                }
            },
            |_, _| {},
        )
        .await;
        let s = statuses(&results);
        assert_eq!((s["a"], s["slow"], s["b"], s["c"]), ("done", "failed", "skipped", "skipped"));
        assert_eq!(interrupt.signal(), Some(Signal::Interrupt), "the first signal is kept");
        let message = results.iter().find_map(|(id, s)| match s {
            JobStatus::Failed(m) if id == "slow" => Some(m.clone()),
            _ => None,
        });
        assert_eq!(message.as_deref(), Some("interrupted (SIGINT) while running"));
    }
}
