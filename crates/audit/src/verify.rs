//! Checking a log's chain.

use std::io::{BufRead, Read};
use std::path::Path;

use crate::{Entry, GENESIS, Head, MAX_LINE, line_hash};

/// Problems listed in a [`Report`] at most (the count goes on).
const MAX_PROBLEMS: usize = 1000;

/// What is wrong at a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// The line is no audit entry (not JSON, or other members).
    NotAnEntry(String),
    /// The line is longer than any entry can be.
    TooLong,
    /// `seq` is not the previous entry's + 1: entries were removed, inserted or reordered.
    Sequence {
        /// What it should be.
        expected: u64,
        /// What it is.
        found: u64,
    },
    /// `prev` is not the hash of the line before: that line was altered, or entries between
    /// were removed or reordered.
    BrokenLink,
    /// The file does not end with `\n` (a write cut short, or the end was edited).
    NoFinalNewline,
    /// The log does not contain the head recorded elsewhere: its end was removed or changed.
    HeadMismatch {
        /// The recorded head.
        expected: Head,
        /// The log's entry at that `seq`, if any (else its last).
        found: Head,
    },
}

impl std::fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProblemKind::NotAnEntry(why) => write!(f, "not an audit entry ({why})"),
            ProblemKind::TooLong => write!(f, "longer than {MAX_LINE} bytes: not an audit entry"),
            ProblemKind::Sequence { expected, found } => write!(
                f,
                "sequence number {found} where {expected} was due: entries were removed, inserted or reordered"
            ),
            ProblemKind::BrokenLink => write!(
                f,
                "its prev hash does not match the line before: that line was altered, or entries between were removed or reordered"
            ),
            ProblemKind::NoFinalNewline => {
                write!(
                    f,
                    "the last line has no newline: it was cut short or edited"
                )
            }
            ProblemKind::HeadMismatch { expected, found } => write!(
                f,
                "the recorded head {expected} is not in the log (it has {found} there): entries at its end were removed or changed"
            ),
        }
    }
}

/// A problem and the line (1-based) it was found at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Line number, from 1 (for [`ProblemKind::HeadMismatch`]: the line count + 1).
    pub line: u64,
    /// What is wrong.
    pub kind: ProblemKind,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.kind)
    }
}

/// The result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Lines read.
    pub lines: u64,
    /// The last entry (as found).
    pub head: Head,
    /// The problems, in file order (at most 1000 listed).
    pub problems: Vec<Problem>,
    /// Problems found in all.
    pub problem_count: u64,
}

impl Report {
    /// No problem.
    pub fn is_intact(&self) -> bool {
        self.problem_count == 0
    }

    fn push(&mut self, line: u64, kind: ProblemKind) {
        self.problem_count += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem { line, kind });
        }
    }
}

impl std::fmt::Display for Report {
    /// What `verify` commands print: the verdict, each problem by line, and the head to
    /// record.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_intact() {
            writeln!(f, "intact: {} entries, chain unbroken", self.lines)?;
        } else {
            writeln!(
                f,
                "TAMPERED OR DAMAGED: {} problem(s) in {} lines",
                self.problem_count, self.lines
            )?;
            for p in &self.problems {
                writeln!(f, "  {p}")?;
            }
            let listed = u64::try_from(self.problems.len()).unwrap_or(u64::MAX);
            if self.problem_count > listed {
                writeln!(f, "  … and {} more", self.problem_count - listed)?;
            }
        }
        write!(
            f,
            "head: {} (record it elsewhere; `verify --expect` checks a later log against it)",
            self.head
        )
    }
}

/// Reads one line of at most [`MAX_LINE`] + 1 bytes into `buf` (with its `\n` if any); a
/// longer line is skipped to its end and reported as `Err(())`. `Ok(false)` at the end.
fn next_line<R: BufRead>(r: &mut R, buf: &mut Vec<u8>) -> std::io::Result<Result<bool, ()>> {
    buf.clear();
    let limit = u64::try_from(MAX_LINE).unwrap_or(u64::MAX) + 1;
    let n = r.by_ref().take(limit).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(Ok(false));
    }
    if buf.last() == Some(&b'\n') || buf.len() < MAX_LINE + 1 {
        return Ok(Ok(true));
    }
    // Too long: consume up to and including the next newline.
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(Err(()));
        }
        match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => {
                r.consume(i + 1);
                return Ok(Err(()));
            }
            None => {
                let len = chunk.len();
                r.consume(len);
            }
        }
    }
}

/// Checks a log's chain from its first line; with `expect` (a head recorded earlier), also
/// that the log still holds that entry unchanged. Reads line by line (memory bounded by
/// [`MAX_LINE`]). After a problem, checking goes on from the line that has it, so one edit is
/// reported once and later ones are found too.
pub fn verify<R: BufRead>(mut r: R, expect: Option<Head>) -> std::io::Result<Report> {
    let mut report = Report {
        lines: 0,
        head: Head::EMPTY,
        problems: Vec::new(),
        problem_count: 0,
    };
    let mut at_expected_seq: Option<Head> = None;
    let mut buf = Vec::with_capacity(1024);
    loop {
        let read = next_line(&mut r, &mut buf)?;
        let line_no = report.lines + 1;
        match read {
            Ok(false) => break,
            Err(()) => {
                report.lines += 1;
                report.push(line_no, ProblemKind::TooLong);
                continue;
            }
            Ok(true) => report.lines += 1,
        }
        let line = match buf.strip_suffix(b"\n") {
            Some(l) => l,
            None => {
                report.push(line_no, ProblemKind::NoFinalNewline);
                &buf[..]
            }
        };
        let entry: Entry = match serde_json::from_slice(line) {
            Ok(e) => e,
            Err(e) => {
                report.push(line_no, ProblemKind::NotAnEntry(e.to_string()));
                continue;
            }
        };
        let expected = report.head.seq + 1;
        if entry.seq != expected {
            report.push(
                line_no,
                ProblemKind::Sequence {
                    expected,
                    found: entry.seq,
                },
            );
        } else {
            let prev_ok = hex::decode(&entry.prev).is_ok_and(|p| {
                p.as_slice()
                    == if entry.seq == 1 {
                        &GENESIS[..]
                    } else {
                        &report.head.hash[..]
                    }
            });
            if !prev_ok {
                report.push(line_no, ProblemKind::BrokenLink);
            }
        }
        report.head = Head {
            seq: entry.seq,
            hash: line_hash(line),
        };
        if expect.is_some_and(|h| h.seq == entry.seq) {
            at_expected_seq = Some(report.head);
        }
    }
    if let Some(expected) = expect {
        let found = at_expected_seq.unwrap_or(report.head);
        if expected.seq > 0 && found != expected {
            report.push(
                report.lines + 1,
                ProblemKind::HeadMismatch { expected, found },
            );
        }
    }
    Ok(report)
}

/// [`verify`] on a file.
pub fn verify_file(path: &Path, expect: Option<Head>) -> std::io::Result<Report> {
    let f = std::fs::File::open(path)?;
    verify(std::io::BufReader::new(f), expect)
}
