//! Runs jobs over the DAG: each node starts when its dependencies succeeded, up to
//! `threads` at once; a failure skips the node's descendants while independent branches
//! go on, or stops everything with `fail_fast`.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use tokio::task::JoinSet;

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
pub async fn run_jobs<T, E, F, Fut>(
    jobs: Vec<Job>,
    threads: usize,
    fail_fast: bool,
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
    let mut running: JoinSet<(String, Result<T, E>)> = JoinSet::new();
    let mut stopped = false;
    let threads = threads.max(1);
    loop {
        // Start (or skip) whatever is ready, in the given order.
        let mut i = 0;
        while i < pending.len() {
            let id = &pending[i];
            let my_deps = &deps[id];
            let failed_dep = my_deps.iter().find(|d| done.get(*d) == Some(&false));
            let ready = my_deps.iter().all(|d| done.contains_key(d));
            if stopped || failed_dep.is_some() {
                let reason = match failed_dep {
                    Some(d) => format!("upstream `{d}` did not succeed"),
                    None => "the run stopped after a failure (--fail-fast)".to_string(),
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
                running.spawn(async move { (id, fut.await) });
                continue;
            }
            i += 1;
        }
        let Some(joined) = running.join_next().await else { break };
        let (id, result) = joined.unwrap_or_else(|e| ("<task>".into(), Err(E::from(format!("task failed: {e}")))));
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
        let results =
            run_jobs(jobs, 1, true, |id| async move { if id == "a" { Err("boom".into()) } else { Ok(()) } }, |_, _| {})
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
}
