//! A JSON-lines file written off the caller's thread.
//!
//! `write` appends the line to an in-memory buffer under a mutex and returns: it never
//! touches the disk. A background thread takes the whole buffer (a pointer swap) and appends
//! it to the file every `flush_interval`, as soon as `max_buffered` lines are waiting, on
//! `flush`, and on `close`/drop.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Default)]
struct State {
    buf: String,
    lines: usize,
    /// Flush requests made / served: `flush` waits until `served` reaches its request.
    requested: u64,
    served: u64,
    closing: bool,
    /// The first write error of the background thread, reported to the next caller.
    error: Option<String>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the writer thread.
    wake: Condvar,
    /// Signals served flush requests.
    done: Condvar,
    max_buffered: usize,
    interval: Duration,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave `State` inconsistent (plain fields),
        // so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An append-only JSON-lines file with a background writer.
pub struct JsonlSink {
    path: PathBuf,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl JsonlSink {
    /// Open `path` for appending (created if missing) and start the writer thread.
    pub fn open(path: &Path, flush_interval: Duration, max_buffered: usize) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            done: Condvar::new(),
            max_buffered: max_buffered.max(1),
            interval: flush_interval,
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("torchkiln-jsonl".to_string())
            .spawn(move || writer_loop(&worker, file))?;
        Ok(JsonlSink { path: path.to_path_buf(), shared, thread: Mutex::new(Some(thread)) })
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether [`JsonlSink::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closing
    }

    /// Queue one line (a newline is appended). Never waits on the disk.
    pub fn write(&self, line: &str) -> io::Result<()> {
        let mut st = self.shared.lock();
        if st.closing {
            return Err(io::Error::other("the sink is closed"));
        }
        if let Some(e) = st.error.take() {
            return Err(io::Error::other(e));
        }
        st.buf.push_str(line);
        st.buf.push('\n');
        st.lines += 1;
        if st.lines >= self.shared.max_buffered {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// Write everything queued so far and wait until it is in the file.
    pub fn flush(&self) -> io::Result<()> {
        let mut st = self.shared.lock();
        if st.closing {
            return match st.error.take() {
                Some(e) => Err(io::Error::other(e)),
                None => Ok(()),
            };
        }
        st.requested += 1;
        let ticket = st.requested;
        self.shared.wake.notify_one();
        while st.served < ticket && !st.closing {
            st = self.shared.done.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        match st.error.take() {
            Some(e) => Err(io::Error::other(e)),
            None => Ok(()),
        }
    }

    /// Flush, stop the writer and close the file. Idempotent.
    pub fn close(&self) -> io::Result<()> {
        {
            let mut st = self.shared.lock();
            st.closing = true;
            self.shared.wake.notify_one();
        }
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
        match self.shared.lock().error.take() {
            Some(e) => Err(io::Error::other(e)),
            None => Ok(()),
        }
    }
}

impl Drop for JsonlSink {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

fn writer_loop(shared: &Shared, mut file: File) {
    loop {
        let (chunk, ticket, closing) = {
            let mut st = shared.lock();
            if st.lines < shared.max_buffered && st.served >= st.requested && !st.closing {
                st = shared.wake.wait_timeout(st, shared.interval).unwrap_or_else(|p| p.into_inner()).0;
            }
            st.lines = 0;
            (std::mem::take(&mut st.buf), st.requested, st.closing)
        };
        let result =
            if chunk.is_empty() { Ok(()) } else { file.write_all(chunk.as_bytes()).and_then(|_| file.flush()) };
        {
            let mut st = shared.lock();
            if let Err(e) = result
                && st.error.is_none()
            {
                st.error = Some(format!("writing log lines failed: {e}"));
            }
            st.served = st.served.max(ticket);
            shared.done.notify_all();
            if closing && st.buf.is_empty() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("kiln-sink-{name}-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn flush_and_close_write_everything_in_order() {
        let p = tmp("order");
        let s = JsonlSink::open(&p, Duration::from_secs(3600), 1_000_000).unwrap();
        for i in 0..500 {
            s.write(&format!("{{\"i\": {i}}}")).unwrap();
        }
        s.flush().unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count(), 500);
        assert_eq!(text.lines().nth(499), Some("{\"i\": 499}"));
        s.write("{\"last\": true}").unwrap();
        s.close().unwrap();
        s.close().unwrap();
        assert!(s.write("{}").is_err());
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().last(), Some("{\"last\": true}"));
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn background_flush_on_interval_and_on_full_buffer() {
        let p = tmp("bg");
        let s = JsonlSink::open(&p, Duration::from_millis(20), 1_000_000).unwrap();
        s.write("{\"a\": 1}").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(&p).unwrap_or_default().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{\"a\": 1}\n");
        drop(s);

        let p2 = tmp("full");
        let s = JsonlSink::open(&p2, Duration::from_secs(3600), 3).unwrap();
        for i in 0..3 {
            s.write(&i.to_string()).unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(&p2).unwrap_or_default().lines().count() < 3
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(std::fs::read_to_string(&p2).unwrap(), "0\n1\n2\n");
        drop(s);
        let _ = std::fs::remove_file(&p);
        let _ = std::fs::remove_file(&p2);
    }

    #[test]
    fn appends_to_an_existing_file() {
        let p = tmp("append");
        std::fs::write(&p, "old\n").unwrap();
        let s = JsonlSink::open(&p, Duration::from_secs(1), 10).unwrap();
        s.write("new").unwrap();
        s.close().unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old\nnew\n");
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn the_longest_interval_is_no_panic() {
        let p = tmp("maxdur");
        let s = JsonlSink::open(&p, Duration::MAX, 10).unwrap();
        s.write("x").unwrap();
        s.flush().unwrap();
        s.close().unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "x\n");
        let _ = std::fs::remove_file(&p);
    }
}
