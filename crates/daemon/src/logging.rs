//! The daemon's log: `tracing` events formatted with a timestamp and a
//! level, written to stderr by a thread of their own through a bounded
//! queue.
//!
//! Logging must never stop protection: a thread that logs only queues the
//! line; when the queue is full (stderr is a full pipe) or stderr is
//! closed, lines are dropped and counted, and the next line that gets
//! through says how many were lost. Write errors are ignored, so nothing
//! on the logging path can panic or block.

use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Lines waiting to be written, at most.
pub const QUEUE_LINES: usize = 1024;

enum Message {
    Line(Vec<u8>),
    /// Answered once every line queued before it was written.
    Flush(SyncSender<()>),
}

/// A [`MakeWriter`] that queues whole lines for the writer thread.
#[derive(Debug, Clone)]
pub struct LossyWriter {
    queue: SyncSender<Message>,
    dropped: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Message")
    }
}

impl LossyWriter {
    /// Starts the thread writing to `out`.
    pub fn new<W: Write + Send + 'static>(out: W) -> io::Result<LossyWriter> {
        let (queue, lines) = mpsc::sync_channel(QUEUE_LINES);
        let dropped = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&dropped);
        thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || write_lines(out, &lines, &counter))?;
        Ok(LossyWriter { queue, dropped })
    }

    /// Waits (at most `limit`) until the lines queued so far are written:
    /// at exit, so the last lines are not lost to a healthy stderr.
    pub fn flush(&self, limit: Duration) {
        let (done, wait) = mpsc::sync_channel(1);
        if self.queue.try_send(Message::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(limit);
        }
    }

    /// Lines dropped since the last one that got through.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::Relaxed)
    }

    fn send(&self, line: Vec<u8>) {
        if self.queue.try_send(Message::Line(line)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn write_lines(mut out: impl Write, lines: &Receiver<Message>, dropped: &AtomicUsize) {
    for message in lines {
        match message {
            Message::Line(line) => {
                let lost = dropped.swap(0, Ordering::Relaxed);
                if lost > 0 {
                    let note = format!("({lost} log line(s) dropped: stderr was full or closed)\n");
                    let _ = out.write_all(note.as_bytes());
                }
                let _ = out.write_all(&line);
                let _ = out.flush();
            }
            Message::Flush(done) => {
                let _ = done.try_send(());
            }
        }
    }
}

/// One event's text, queued whole when the formatter is done with it.
#[derive(Debug)]
pub struct Line<'a> {
    text: Vec<u8>,
    writer: &'a LossyWriter,
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        if !self.text.is_empty() {
            self.writer.send(std::mem::take(&mut self.text));
        }
    }
}

impl<'a> MakeWriter<'a> for LossyWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line {
            text: Vec::new(),
            writer: self,
        }
    }
}

/// A duration as the log shows it: milliseconds, two decimals.
#[derive(Debug, Clone, Copy)]
pub struct Took(pub Duration);

impl std::fmt::Display for Took {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2}ms", self.0.as_secs_f64() * 1000.0)
    }
}

/// Installs the daemon's subscriber (timestamps, levels, no colours:
/// the log is usually a file or the journal) writing to stderr. Returns
/// the writer, to flush at exit.
///
/// With `timings`, the debug-level spans around each part of an
/// operation (compile, state file writes, the kernel change and each
/// tool process) log their duration when they close (`time.busy`), for
/// finding where an operation's time goes (`bench/e2e --timings`).
pub fn init(timings: bool) -> io::Result<LossyWriter> {
    use tracing_subscriber::fmt::format::FmtSpan;
    let writer = LossyWriter::new(io::stderr())?;
    let (level, spans) = if timings {
        (tracing::Level::DEBUG, FmtSpan::CLOSE)
    } else {
        (tracing::Level::INFO, FmtSpan::NONE)
    };
    let subscriber = tracing_subscriber::fmt()
        .with_writer(writer.clone())
        .with_ansi(false)
        .with_target(false)
        .with_max_level(level)
        .with_span_events(spans)
        .finish();
    // Only fails if a subscriber is already set (a test set one): keep it.
    let _ = tracing::subscriber::set_global_default(subscriber);
    Ok(writer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A stderr whose reader never reads: every write blocks (and says
    /// so on `entered` first).
    struct Stuck {
        never: Mutex<Receiver<()>>,
        entered: mpsc::SyncSender<()>,
    }

    impl Write for Stuck {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            let _ = self.entered.try_send(());
            let _ = self.never.lock().unwrap().recv();
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A stderr whose reader went away.
    struct Broken;

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
    }

    fn log_many(writer: &LossyWriter, n: usize) {
        for i in 0..n {
            let mut line = writer.make_writer();
            writeln!(line, "line {i}").unwrap();
        }
    }

    #[test]
    fn a_stuck_stderr_drops_lines_instead_of_blocking() {
        let (_keep, never) = mpsc::channel();
        let (entered, stuck) = mpsc::sync_channel(1);
        let writer = LossyWriter::new(Stuck {
            never: Mutex::new(never),
            entered,
        })
        .unwrap();
        // The writer resets the count of dropped lines each time it takes
        // a line; wait until it is stuck in its first write, so that the
        // count below is of the flood alone, however late its thread ran.
        log_many(&writer, 1);
        stuck.recv().unwrap();
        // The writer's thread never comes back from its write: if logging
        // waited for it, this flood would never end and the test would hang
        // (no clock needed to tell). It ends, and the lines it could not
        // queue are counted as dropped.
        log_many(&writer, 10 * QUEUE_LINES);
        assert!(writer.dropped() >= 8 * QUEUE_LINES, "{}", writer.dropped());
    }

    #[test]
    fn a_broken_stderr_is_ignored_and_lines_keep_flowing() {
        let writer = LossyWriter::new(Broken).unwrap();
        log_many(&writer, 100);
        writer.flush(Duration::from_secs(5));
        log_many(&writer, 100);
        writer.flush(Duration::from_secs(5));
    }

    #[test]
    fn lines_arrive_whole_and_drops_are_counted_in_the_output() {
        #[derive(Clone)]
        struct Shared(Arc<Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let out = Shared(Arc::new(Mutex::new(Vec::new())));
        let writer = LossyWriter::new(out.clone()).unwrap();
        writer.dropped.store(3, Ordering::Relaxed);
        log_many(&writer, 2);
        writer.flush(Duration::from_secs(5));
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "(3 log line(s) dropped: stderr was full or closed)\nline 0\nline 1\n"
        );
    }
}
