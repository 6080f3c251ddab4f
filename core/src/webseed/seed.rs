//! [`WebSeed`]: one web seed's state: the jobs under way (each a run of the torrent's
//! bytes, one request per file range, redirects followed), and its failures with their
//! backoff.
//!
//! A job is given by the engine ([`WebSeed::start`]); the web seed answers with the first
//! request, each answer ([`WebSeed::on_answer`]) with the next request, the whole run's
//! bytes, or a failure. Up to [`WebSeedConfig::max_jobs`] jobs run at once, each with one
//! request at a time: a job's requests go one after the other, jobs side by side (the
//! runtime gives each request a connection of its own, reused from its pool when it has
//! one), so the server always has the next request while it sends the last byte of a job,
//! and no gap opens between jobs. Requests are never pipelined on one connection: an
//! answer that fails would leave every request behind it on that connection lost, and
//! servers and proxies handle pipelining unevenly. A failure ends every job (the server is
//! at fault, not one job); a web seed that failed waits
//! [`WebSeedConfig::backoff_min`] before its next job, doubling with each consecutive
//! failure up to [`WebSeedConfig::backoff_max`], and is dropped after
//! [`WebSeedConfig::max_failures`] failures in a row. Only a verified piece resets the
//! count ([`WebSeed::piece_verified`]): a server that answers promptly with bytes that
//! fail their hash is still failing.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::metainfo::{FileEntry, Info};
use crate::tracker::TrackerUrl;
use crate::IoError;

use super::answer::{range_request, read_answer, Answer};
use super::plan::{plan, FileRange};
use super::url::file_urls;
use super::WebSeedError;

/// A web seed's tunables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebSeedConfig {
    /// The wait after a first failure. Default 30 s.
    pub backoff_min: Duration,
    /// The longest wait. Default 30 min.
    pub backoff_max: Duration,
    /// Failures in a row after which the web seed is dropped. Default 5.
    pub max_failures: u32,
    /// Redirects followed for one request. Default 5.
    pub max_redirects: u32,
    /// The most bytes one job fetches (a run of pieces). Default 4 MiB.
    pub max_job_bytes: u64,
    /// Jobs under way at once (each on a connection of its own). Default 2: the next job
    /// is asked for while the last one's bytes come, and more would only hold more
    /// blocks back from peers without making one server faster.
    pub max_jobs: usize,
}

impl Default for WebSeedConfig {
    fn default() -> Self {
        WebSeedConfig {
            backoff_min: Duration::from_secs(30),
            backoff_max: Duration::from_secs(30 * 60),
            max_failures: 5,
            max_redirects: 5,
            max_job_bytes: 4 << 20,
            max_jobs: 2,
        }
    }
}

/// One HTTP GET for the runtime to carry out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpGet {
    /// Which request of this web seed it is: give it back with the answer. Never 0.
    pub serial: u32,
    /// Where to connect (TLS when the scheme is https).
    pub url: TrackerUrl,
    /// The whole request.
    pub request: Vec<u8>,
    /// The longest body the answer may have: a runtime may stop reading past it.
    pub max_body: u64,
}

/// What the web seed wants next.
#[derive(Debug)]
pub enum Step {
    /// Carry out this request and give its answer to [`WebSeed::on_answer`].
    Get(HttpGet),
    /// The job is done: the bytes of the run, from its first byte.
    Done {
        /// The job, as given to [`WebSeed::start`].
        job: u32,
        /// Offset of the run's first byte in the torrent.
        start: u64,
        /// Exactly the run's bytes (not verified yet).
        data: Bytes,
    },
    /// The job failed.
    Failed(Failure),
}

/// A failure of a web seed, as reported to the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Why.
    pub reason: WebSeedError,
    /// Failures in a row, this one included.
    pub failures: u32,
    /// When it may be asked again; `None` if it is dropped.
    pub retry_at: Option<Instant>,
}

#[derive(Debug)]
struct Job {
    /// The caller's name for it.
    id: u32,
    /// The serial of its request under way.
    serial: u32,
    start: u64,
    ranges: Vec<FileRange>,
    next: usize,
    /// The bytes of its ranges so far, each as it came (slices of the answers).
    parts: Vec<Bytes>,
    /// The URL of the current request (its file's, or where a redirect pointed).
    url: Option<TrackerUrl>,
    redirects: u32,
}

/// One web seed of one torrent (see the module docs).
#[derive(Debug)]
pub struct WebSeed {
    base: String,
    files: Vec<FileEntry>,
    urls: Vec<Option<TrackerUrl>>,
    config: WebSeedConfig,
    /// The jobs under way, oldest first; at most `config.max_jobs`.
    jobs: Vec<Job>,
    serial: u32,
    failures: u32,
    retry_at: Option<Instant>,
    dropped: bool,
}

impl WebSeed {
    /// A web seed for the torrent `info` at `url` (a `url-list` entry). Fails if the URL is
    /// not an `http(s)` one.
    pub fn new(url: &str, info: &Info, config: WebSeedConfig) -> Result<WebSeed, WebSeedError> {
        Ok(WebSeed {
            base: url.trim().to_string(),
            files: info.files.clone(),
            urls: file_urls(url, info)?,
            config,
            jobs: Vec::new(),
            serial: 0,
            failures: 0,
            retry_at: None,
            dropped: false,
        })
    }

    /// The URL as the torrent gives it.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Its settings.
    pub fn config(&self) -> &WebSeedConfig {
        &self.config
    }

    /// Whether it may start a job at `now`: fewer than [`WebSeedConfig::max_jobs`] under
    /// way, not dropped, not waiting.
    pub fn is_ready(&self, now: Instant) -> bool {
        !self.dropped
            && self.jobs.len() < self.config.max_jobs.max(1)
            && self.retry_at.is_none_or(|at| at <= now)
    }

    /// Whether a job is under way.
    pub fn is_busy(&self) -> bool {
        !self.jobs.is_empty()
    }

    /// How many jobs are under way.
    pub fn jobs(&self) -> usize {
        self.jobs.len()
    }

    /// Whether it failed too often and is given up.
    pub fn is_dropped(&self) -> bool {
        self.dropped
    }

    /// When it may be asked again after a failure.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at.filter(|_| !self.dropped)
    }

    /// Failures in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Starts job `id` (the caller's name for it, given back in [`Step::Done`]): fetching
    /// bytes `start..start + len` of the torrent (at most
    /// [`WebSeedConfig::max_job_bytes`], cut there otherwise). Padding files are zeros
    /// and not asked for. With [`WebSeedConfig::max_jobs`] under way already, the oldest
    /// ends: its answers are ignored.
    pub fn start(&mut self, id: u32, start: u64, len: u64) -> Step {
        let len = len.min(self.config.max_job_bytes);
        if self.jobs.len() >= self.config.max_jobs.max(1) {
            self.jobs.remove(0);
        }
        let job = Job {
            id,
            serial: 0,
            start,
            ranges: plan(&self.files, start, len),
            next: 0,
            parts: Vec::new(),
            url: None,
            redirects: 0,
        };
        self.advance(job)
    }

    /// Ends the jobs under way, if any, without a failure: their answers are ignored.
    pub fn cancel(&mut self) {
        self.jobs.clear();
    }

    /// The answer to the request `serial`: every byte the server sent for it, or why the
    /// runtime could not carry it out. `None` if it is no request under way (a late
    /// answer to a cancelled job). [`on_answer_bytes`](Self::on_answer_bytes) takes the
    /// answer without copying it.
    pub fn on_answer(
        &mut self,
        serial: u32,
        result: Result<&[u8], IoError>,
        now: Instant,
    ) -> Option<Step> {
        self.on_answer_bytes(serial, result.map(Bytes::copy_from_slice), now)
    }

    /// [`on_answer`](Self::on_answer) for an answer the caller gives away: the job's data
    /// is a slice of it.
    pub fn on_answer_bytes(
        &mut self,
        serial: u32,
        result: Result<Bytes, IoError>,
        now: Instant,
    ) -> Option<Step> {
        let at = self.jobs.iter().position(|j| j.serial == serial)?;
        let mut job = self.jobs.remove(at);
        let (Some(&range), Some(url)) = (job.ranges.get(job.next), job.url.clone()) else {
            // No request under way: nothing to answer.
            self.jobs.insert(at, job);
            return None;
        };
        let file_len = self.files.get(range.file).map_or(0, |f| f.length);
        let answer = match result {
            Err(e) => Err(WebSeedError::Transport(e)),
            Ok(raw) => read_answer(&raw, &url, &range, file_len),
        };
        let step = match answer {
            Ok(Answer::Data(bytes)) => {
                job.parts.push(bytes);
                job.next += 1;
                job.url = None;
                job.redirects = 0;
                self.advance(job)
            }
            Ok(Answer::Redirect(target)) => {
                if job.redirects >= self.config.max_redirects {
                    Step::Failed(self.fail(WebSeedError::TooManyRedirects, now))
                } else {
                    job.redirects += 1;
                    job.url = Some(target.clone());
                    self.get(job, target, range)
                }
            }
            Err(reason) => Step::Failed(self.fail(reason, now)),
        };
        Some(step)
    }

    /// Counts a failure found outside an answer (a piece from this web seed that failed its
    /// hash check), ends any job, and says when it may be asked again.
    pub fn fail(&mut self, reason: WebSeedError, now: Instant) -> Failure {
        self.jobs.clear();
        self.failures = self.failures.saturating_add(1);
        if self.failures >= self.config.max_failures {
            self.dropped = true;
            self.retry_at = None;
        } else {
            let shift = (self.failures - 1).min(20);
            let wait = self
                .config
                .backoff_min
                .saturating_mul(1 << shift)
                .min(self.config.backoff_max);
            self.retry_at = Some(now + wait);
        }
        Failure {
            reason,
            failures: self.failures,
            retry_at: self.retry_at(),
        }
    }

    /// A piece with bytes from this web seed verified: it works, its failures are forgiven.
    pub fn piece_verified(&mut self) {
        self.failures = 0;
        self.retry_at = None;
    }

    /// The next request of `job`, zeros for padding, or the end of the job.
    fn advance(&mut self, mut job: Job) -> Step {
        loop {
            let Some(&range) = job.ranges.get(job.next) else {
                // One range (the usual job, inside one file): its answer's bytes as they
                // are; several: joined once.
                let data = match job.parts.len() {
                    1 => job.parts.pop().unwrap_or_default(),
                    _ => {
                        let len = job.parts.iter().map(Bytes::len).sum();
                        let mut data = BytesMut::with_capacity(len);
                        job.parts.iter().for_each(|p| data.extend_from_slice(p));
                        data.freeze()
                    }
                };
                return Step::Done {
                    job: job.id,
                    start: job.start,
                    data,
                };
            };
            match self.urls.get(range.file).cloned().flatten() {
                None => {
                    // A padding file: zeros, never fetched.
                    job.parts.push(Bytes::from(vec![0; range.len as usize]));
                    job.next += 1;
                }
                Some(url) => {
                    job.url = Some(url.clone());
                    return self.get(job, url, range);
                }
            }
        }
    }

    /// The request for `range` of `job`, which goes back among the jobs under way.
    fn get(&mut self, mut job: Job, url: TrackerUrl, range: FileRange) -> Step {
        // 0 stays "no request under way".
        self.serial = self.serial.wrapping_add(1).max(1);
        job.serial = self.serial;
        self.jobs.push(job);
        Step::Get(HttpGet {
            serial: self.serial,
            request: range_request(&url, &range),
            url,
            max_body: range.len,
        })
    }
}
