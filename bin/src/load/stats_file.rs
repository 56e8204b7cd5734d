//! `--stats FILE.csv` or `FILE.jsonl`: one row per interval, the
//! [`TimelinePoint`] fields, written as each interval ends and flushed, so
//! `tail -f` and a dashboard follow the run as it goes.
//!
//! CSV has fixed columns; the per-SBC counts (SBCs appear during the run)
//! are one column, `registered_by_sbc`, `ADDR=N` pairs separated by spaces.
//! JSON Lines is each point's JSON object, as in the summary's timeline.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::summary::TimelinePoint;

#[derive(Debug, thiserror::Error)]
pub enum StatsFileError {
    #[error("--stats {0}: the file name must end in .csv or .jsonl")]
    Extension(PathBuf),
    #[error("--stats {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Csv,
    JsonLines,
}

pub struct StatsFile {
    path: PathBuf,
    format: Format,
    out: BufWriter<File>,
}

pub const CSV_HEADER: &str = "t_ms,registered,backing_off,registers,register_rate,latency_p50_ms,latency_p99_ms,failovers,failbacks,calls_up,registered_by_sbc";

impl StatsFile {
    /// The format from the extension; checked before the run starts.
    pub fn check(path: &Path) -> Result<(), StatsFileError> {
        format_of(path).map(|_| ())
    }

    /// Creates the file (and writes the CSV header).
    pub fn create(path: &Path) -> Result<StatsFile, StatsFileError> {
        let format = format_of(path)?;
        let io = |source| StatsFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::create(path).map_err(io)?;
        let mut out = BufWriter::new(file);
        if format == Format::Csv {
            writeln!(out, "{CSV_HEADER}")
                .and_then(|_| out.flush())
                .map_err(io)?;
        }
        Ok(StatsFile {
            path: path.to_path_buf(),
            format,
            out,
        })
    }

    pub fn write(&mut self, p: &TimelinePoint) -> Result<(), StatsFileError> {
        let written = match self.format {
            Format::Csv => writeln!(self.out, "{}", csv_row(p)),
            Format::JsonLines => serde_json::to_writer(&mut self.out, p)
                .map_err(std::io::Error::from)
                .and_then(|_| self.out.write_all(b"\n")),
        };
        written
            .and_then(|_| self.out.flush())
            .map_err(|source| StatsFileError::Io {
                path: self.path.clone(),
                source,
            })
    }
}

fn format_of(path: &Path) -> Result<Format, StatsFileError> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("csv") => Ok(Format::Csv),
        Some("jsonl") => Ok(Format::JsonLines),
        _ => Err(StatsFileError::Extension(path.to_path_buf())),
    }
}

/// One CSV row in [`CSV_HEADER`]'s order.
pub fn csv_row(p: &TimelinePoint) -> String {
    let by_sbc: Vec<String> = p
        .registered_by_sbc
        .iter()
        .map(|(a, n)| format!("{a}={n}"))
        .collect();
    format!(
        "{},{},{},{},{:.1},{},{},{},{},{},{}",
        p.t_ms,
        p.registered,
        p.backing_off,
        p.registers,
        p.register_rate,
        p.latency_p50_ms,
        p.latency_p99_ms,
        p.failovers,
        p.failbacks,
        p.calls_up,
        by_sbc.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point() -> TimelinePoint {
        TimelinePoint {
            t_ms: 2000,
            registered_by_sbc: [("127.0.0.11:5060".into(), 3), ("127.0.0.12:5060".into(), 1)]
                .into_iter()
                .collect(),
            registered: 4,
            backing_off: 1,
            registers: 9,
            register_rate: 9.0,
            latency_p50_ms: 12,
            latency_p99_ms: 40,
            failovers: 1,
            failbacks: 0,
            calls_up: 2,
        }
    }

    #[test]
    fn rows_by_extension() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("s.csv");
        let mut f = StatsFile::create(&csv).unwrap();
        f.write(&point()).unwrap();
        let text = std::fs::read_to_string(&csv).unwrap();
        assert_eq!(
            text,
            format!(
                "{CSV_HEADER}\n2000,4,1,9,9.0,12,40,1,0,2,127.0.0.11:5060=3 127.0.0.12:5060=1\n"
            )
        );
        let jsonl = dir.path().join("s.JSONL");
        let mut f = StatsFile::create(&jsonl).unwrap();
        f.write(&point()).unwrap();
        f.write(&point()).unwrap();
        let text = std::fs::read_to_string(&jsonl).unwrap();
        let rows: Vec<TimelinePoint> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows, [point(), point()]);
        assert!(matches!(
            StatsFile::check(Path::new("s.txt")),
            Err(StatsFileError::Extension(_))
        ));
        assert!(StatsFile::create(&dir.path().join("no/such/dir.csv")).is_err());
    }
}
