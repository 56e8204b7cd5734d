//! A thread that renders and writes what the fleet produces (events, the
//! message trace) so that the actors never wait on a pipe, a terminal or a
//! disk, and never pay one write(2) per item: items queue on a channel,
//! the thread renders each straight into a buffered writer, flushes
//! whenever the queue runs dry, then lets items gather for 5 ms (a busy
//! fleet writes in large blocks and wakes the thread 200 times a second at
//! most; a quiet one shows each item at once).
//!
//! A broken output (a closed pipe, a full disk) stops that output only and
//! says why ([`OutputThread::failures`]): output is observability, never
//! control, so the fleet goes on.

use std::io::{self, BufWriter, Write};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// How long the writer lets items gather after a write.
const BATCH_PAUSE: Duration = Duration::from_millis(5);

/// Renders one item onto an output.
pub type Render<T> = Box<dyn FnMut(&T, &mut dyn Write) -> io::Result<()> + Send>;

/// One output: where bytes go and how an item becomes bytes.
pub struct Output<T> {
    /// Buffered: flushed when the queue runs dry.
    pub writer: BufWriter<Box<dyn Write + Send>>,
    /// Renders an item onto `writer`.
    pub render: Render<T>,
}

impl<T> Output<T> {
    /// `writer` behind a 64 KiB buffer, items rendered by `render`.
    pub fn new(writer: Box<dyn Write + Send>, render: Render<T>) -> Self {
        Output {
            writer: BufWriter::with_capacity(64 * 1024, writer),
            render,
        }
    }
}

enum Job<T> {
    Item(T),
    Flush(mpsc::Sender<()>),
}

/// Where producers put items. Cheap to clone (a channel sender).
pub struct OutputThread<T> {
    tx: mpsc::Sender<Job<T>>,
    failures: Arc<Mutex<Vec<String>>>,
}

impl<T> Clone for OutputThread<T> {
    fn clone(&self) -> Self {
        OutputThread {
            tx: self.tx.clone(),
            failures: self.failures.clone(),
        }
    }
}

impl<T: Send + 'static> OutputThread<T> {
    /// Starts the thread `name` writing every item to each of `outputs`.
    pub fn spawn(name: &str, outputs: Vec<Output<T>>) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job<T>>();
        let failures = Arc::new(Mutex::new(Vec::new()));
        let seen = failures.clone();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || write_loop(rx, outputs, &seen))?;
        Ok(OutputThread { tx, failures })
    }

    /// Queues `item`. Never blocks on I/O.
    pub fn send(&self, item: T) {
        let _ = self.tx.send(Job::Item(item));
    }

    /// Why outputs stopped, if any did.
    pub fn failures(&self) -> Vec<String> {
        self.failures.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Waits (up to 5 s) until everything queued so far is written and
    /// flushed.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        if self.tx.send(Job::Flush(tx)).is_ok() {
            let _ = rx.recv_timeout(Duration::from_secs(5));
        }
    }
}

fn write_loop<T>(
    rx: mpsc::Receiver<Job<T>>,
    mut outputs: Vec<Output<T>>,
    failures: &Mutex<Vec<String>>,
) {
    let mut ok = vec![true; outputs.len()];
    let fail = |ok: &mut bool, e: io::Error| {
        *ok = false;
        if let Ok(mut f) = failures.lock() {
            f.push(e.to_string());
        }
    };
    while let Ok(first) = rx.recv() {
        let mut job = Some(first);
        let mut waiters = Vec::new();
        while let Some(j) = job.take() {
            match j {
                Job::Item(item) => {
                    for (out, ok) in outputs.iter_mut().zip(ok.iter_mut()) {
                        if *ok {
                            if let Err(e) = (out.render)(&item, &mut out.writer) {
                                fail(ok, e);
                            }
                        }
                    }
                }
                Job::Flush(done) => waiters.push(done),
            }
            job = rx.try_recv().ok();
        }
        for (out, ok) in outputs.iter_mut().zip(ok.iter_mut()) {
            if *ok {
                if let Err(e) = out.writer.flush() {
                    fail(ok, e);
                }
            }
        }
        for done in waiters {
            let _ = done.send(());
        }
        // Let the next items gather: producers enqueue without waking this
        // thread while it sleeps, so a busy fleet costs one wake-up and one
        // write per BATCH_PAUSE, not per item; an idle one blocks in recv and
        // shows its next item at once.
        std::thread::sleep(BATCH_PAUSE);
    }
    for out in &mut outputs {
        let _ = out.writer.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
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

    struct Broken;

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed pipe"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed pipe"))
        }
    }

    fn numbers() -> Render<u32> {
        Box::new(|n, w| writeln!(w, "{n}"))
    }

    #[test]
    fn items_are_written_in_order_and_flush_waits_for_them() {
        let shared = Shared::default();
        let out = OutputThread::spawn("t", vec![Output::new(Box::new(shared.clone()), numbers())])
            .unwrap();
        for n in 0..1000 {
            out.send(n);
        }
        out.flush();
        let text = String::from_utf8(shared.0.lock().unwrap().clone()).unwrap();
        let got: Vec<u32> = text.lines().map(|l| l.parse().unwrap()).collect();
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
        assert!(out.failures().is_empty());
    }

    #[test]
    fn a_broken_output_stops_alone_and_says_why() {
        let shared = Shared::default();
        let out = OutputThread::spawn(
            "t",
            vec![
                Output::new(Box::new(Broken), numbers()),
                Output::new(Box::new(shared.clone()), numbers()),
            ],
        )
        .unwrap();
        out.send(1);
        out.send(2);
        out.flush();
        assert_eq!(shared.0.lock().unwrap().as_slice(), b"1\n2\n");
        assert_eq!(out.failures(), vec!["closed pipe".to_string()]);
    }
}
