//! Delivers events on a thread of their own, so a slow or absent receiver never holds
//! up a node: the run queues each event and goes on. HTTP requests time out and are
//! retried a bounded number of times; after three events in a row could not be sent,
//! the receiver is taken as down and the rest are counted, not sent. At the end the run
//! waits at most the transport's timeout for what is still queued.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::project::openlineage::Transport;

/// How often a request that got no answer, or a 5xx or 429, is tried again.
const RETRIES: usize = 2;
/// Events in a row that could not be sent before the receiver is taken as down.
const DOWN_AFTER: usize = 3;

/// What became of the events of a run.
#[derive(Debug, Default)]
pub struct Delivery {
    pub queued: usize,
    pub delivered: usize,
    /// Why the first event that was not delivered was not.
    pub first_error: Option<String>,
}

impl Delivery {
    pub fn undelivered(&self) -> usize {
        self.queued - self.delivered
    }
}

#[derive(Default)]
struct Counts {
    queued: AtomicUsize,
    delivered: AtomicUsize,
    first_error: Mutex<Option<String>>,
}

/// The queue into the delivering thread, and what became of what it took.
pub struct Outbox {
    queue: Option<Sender<Vec<u8>>>,
    done: Mutex<Receiver<()>>,
    counts: Arc<Counts>,
    wait: Duration,
}

impl Outbox {
    /// Starts the delivering thread for `transport`.
    pub fn start(transport: Transport) -> Outbox {
        let (queue, events) = channel::<Vec<u8>>();
        let (finished, done) = channel();
        let counts = Arc::new(Counts::default());
        let wait = match &transport {
            Transport::Http { timeout, .. } => *timeout,
            _ => Duration::from_secs(5),
        };
        let thread_counts = counts.clone();
        let spawned = std::thread::Builder::new().name("openlineage".into()).spawn(move || {
            deliver(transport, events, &thread_counts);
            let _ = finished.send(());
        });
        if let Err(e) = spawned {
            *counts.first_error.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(format!("no thread to send from: {e}"));
        }
        Outbox { queue: Some(queue), done: Mutex::new(done), counts, wait }
    }

    /// Queues one event; never blocks.
    pub fn send(&self, event: Vec<u8>) {
        self.counts.queued.fetch_add(1, Ordering::SeqCst);
        if let Some(queue) = &self.queue {
            let _ = queue.send(event);
        }
    }

    /// Waits at most the transport's timeout for the queued events, then tells what
    /// became of them (the thread is left to end on its own).
    pub fn finish(mut self) -> Delivery {
        self.queue = None;
        let done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        let timed_out = matches!(done.recv_timeout(self.wait), Err(RecvTimeoutError::Timeout));
        let mut first_error = self.counts.first_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if timed_out && first_error.is_none() {
            first_error = Some(format!("the receiver did not take them within {:.1} s", self.wait.as_secs_f64()));
        }
        Delivery {
            queued: self.counts.queued.load(Ordering::SeqCst),
            delivered: self.counts.delivered.load(Ordering::SeqCst),
            first_error,
        }
    }
}

fn deliver(transport: Transport, events: Receiver<Vec<u8>>, counts: &Counts) {
    let mut failed_in_a_row = 0;
    let mut file = None;
    for event in events {
        if failed_in_a_row >= DOWN_AFTER {
            continue;
        }
        let sent = match &transport {
            Transport::Http { url, endpoint, api_key, timeout } => {
                post(url, endpoint, api_key.as_deref(), &event, *timeout)
            }
            Transport::File { path } => append(&mut file, path, &event),
            Transport::Console => {
                let mut err = std::io::stderr().lock();
                err.write_all(&event).and_then(|_| err.write_all(b"\n")).map_err(|e| format!("stderr: {e}"))
            }
        };
        match sent {
            Ok(()) => {
                failed_in_a_row = 0;
                counts.delivered.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => {
                failed_in_a_row += 1;
                counts.first_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
            }
        }
    }
}

/// POSTs one event, retrying what may pass on a second try.
fn post(url: &str, endpoint: &str, api_key: Option<&str>, event: &[u8], timeout: Duration) -> Result<(), String> {
    let target = format!("{}/{}", url.trim_end_matches('/'), endpoint.trim_start_matches('/'));
    let bearer = api_key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(b) = &bearer {
        headers.push(("Authorization", b.as_str()));
    }
    let mut last = String::new();
    for attempt in 0..=RETRIES {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(100 * 4u64.pow(attempt as u32 - 1)));
        }
        match crate::http::post(&target, &headers, event, timeout) {
            Ok(code) if (200..300).contains(&code) => return Ok(()),
            Ok(code) if code == 429 || code >= 500 => last = format!("`{target}` answered HTTP {code}"),
            Ok(code) => return Err(format!("`{target}` answered HTTP {code}")),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn append(file: &mut Option<std::fs::File>, path: &std::path::Path, event: &[u8]) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("`{}`: {e}", path.display());
    if file.is_none() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        *file = Some(std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(fail)?);
    }
    let Some(f) = file.as_mut() else { return Ok(()) };
    // One write per line, so readers of a file being appended to see whole events.
    let mut line = Vec::with_capacity(event.len() + 1);
    line.extend_from_slice(event);
    line.push(b'\n');
    f.write_all(&line).map_err(fail)
}
