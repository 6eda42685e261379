//! Logs of a workload on one of the operator's SSH hosts, read through the
//! host's ssh pool (bounded, audited commands; the component is not involved,
//! so a provider cannot see or shape them).
//!
//! The record says where: its instance id is `<host>/<deployment>` and its
//! resources name the workload (`container` / `systemd` / `process` and its
//! name). What the ssh component installed decides what is read:
//!
//! | workload  | read                                                          | cursor when following |
//! |-----------|---------------------------------------------------------------|-----------------------|
//! | container | `docker logs` (or `podman`, per its `meta.json`), both streams | the last timestamp    |
//! | systemd   | its `log` file (the unit appends stdout/stderr there) and `journalctl -u` (start, stop, crash) | byte offset; journal cursor |
//! | process   | its `log` file (the supervisor appends there)                 | byte offset           |

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::lines::split;
use super::{LogError, LogLine, LogOptions, MAX_SOURCE_BYTES, MAX_TAIL, Sink, ended};
use crate::Host;
use crate::ssh::{SshError, SshPool};
use crate::tracking::DeploymentRecord;

/// How long one read may take on the host.
const EXEC_TIMEOUT: Duration = Duration::from_secs(30);

/// Container logs with timestamps, both streams, from the engine `meta.json` names.
const CONTAINER_SCRIPT: &str = r#"m="$HOME/.bpr/deployments/$1/meta.json"
e=$(sed -n 's/.*"engine": *"\([a-z]*\)".*/\1/p' "$m" 2>/dev/null | head -n 1)
[ -n "$e" ] || e=docker
if [ -n "$4" ]; then exec "$e" logs --timestamps --tail "$3" --since "$4" "$2" 2>&1
else exec "$e" logs --timestamps --tail "$3" "$2" 2>&1; fi"#;

/// The tail of the deployment's `log` file, or what follows byte offset `$2`
/// (at most `$4` bytes), then `-- bpr offset N` (where the next read starts).
const FILE_SCRIPT: &str = r#"f="$HOME/.bpr/deployments/$1/log"; o="$2"; n="$3"; c="$4"
if [ ! -f "$f" ]; then printf '\n-- bpr offset 0\n'; exit 0; fi
s=$(($(wc -c < "$f")))
if [ -z "$o" ]; then head -c "$s" "$f" | tail -n "$n" | tail -c "$c"
else
  if [ "$o" -gt "$s" ]; then o=0; fi
  e=$((o + c)); if [ "$e" -gt "$s" ]; then e=$s; fi
  tail -c +$((o + 1)) "$f" | head -c $((e - o)); s=$e
fi
printf '\n-- bpr offset %s\n' "$s""#;

/// The unit's journal, with its cursor on the last line.
const JOURNAL_SCRIPT: &str = r#"m="$HOME/.bpr/deployments/$1/meta.json"; u="$2"; n="$3"; c="$4"
if grep -q '"user_unit": *true' "$m" 2>/dev/null; then set -- --user; else set --; fi
if [ -n "$c" ]; then exec journalctl "$@" -u "$u" --no-pager -o short-iso --show-cursor -n "$n" --after-cursor "$c" 2>&1
else exec journalctl "$@" -u "$u" --no-pager -o short-iso --show-cursor -n "$n" 2>&1; fi"#;

/// One thing read, and where the next read starts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Container {
        name: String,
        since: Option<String>,
    },
    File {
        offset: Option<u64>,
    },
    Journal {
        unit: String,
        cursor: Option<String>,
        broken: bool,
    },
}

struct Reader {
    pool: Arc<SshPool>,
    alias: String,
    deployment: String,
    label: String,
    source: Source,
}

/// Works out the sources from the record and starts one reader task.
pub(super) fn start(
    host: &Host,
    rec: &DeploymentRecord,
    opts: &LogOptions,
    sink: Sink,
) -> Result<(Vec<String>, Vec<JoinHandle<()>>), LogError> {
    let corrupt = |message: &str| LogError::Corrupt {
        id: rec.id.clone(),
        message: message.to_string(),
    };
    let (alias, deployment) = rec
        .instance_id
        .as_deref()
        .and_then(|i| i.split_once('/'))
        .ok_or_else(|| corrupt("its instance id is not `<host>/<deployment>`"))?;
    let (kind, name) = rec
        .resources
        .iter()
        .find(|r| matches!(r.kind.as_str(), "container" | "systemd" | "process"))
        .map(|r| (r.kind.as_str(), r.id.clone()))
        .ok_or_else(|| corrupt("its resources do not name a container, unit or process"))?;
    let pool = host
        .ssh_pool()
        .filter(|p| p.hosts().iter().any(|h| h.alias == alias))
        .cloned()
        .ok_or_else(|| LogError::NoSshHost {
            id: rec.id.clone(),
            host: alias.to_string(),
        })?;
    let reader = |label: String, source| Reader {
        pool: pool.clone(),
        alias: alias.to_string(),
        deployment: deployment.to_string(),
        label,
        source,
    };
    let mut readers = Vec::new();
    match kind {
        "container" => readers.push(reader(
            format!("{alias}/{name}"),
            Source::Container { name, since: None },
        )),
        "systemd" => {
            readers.push(reader(
                format!("{alias}/log"),
                Source::File { offset: None },
            ));
            readers.push(reader(
                format!("{alias}/journal"),
                Source::Journal {
                    unit: name,
                    cursor: None,
                    broken: false,
                },
            ));
        }
        _ => readers.push(reader(
            format!("{alias}/log"),
            Source::File { offset: None },
        )),
    }
    let sources = readers.iter().map(|r| r.label.clone()).collect();
    let (host, id, opts) = (host.clone(), rec.id.clone(), opts.clone());
    let task = tokio::spawn(async move {
        let mut tail = opts.tail;
        loop {
            for r in &mut readers {
                match r.fetch(tail).await {
                    Ok(lines) => {
                        for l in lines {
                            if !sink.send(Ok(l)).await {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        sink.send(Err(e)).await;
                        return;
                    }
                }
            }
            if !opts.follow {
                return;
            }
            // After the first read, everything new (bounded by the cursor reads).
            tail = MAX_TAIL;
            tokio::time::sleep(opts.poll).await;
            if ended(&host, &id) {
                sink.send(Ok(LogLine::note(format!(
                    "deployment {id} is being terminated; the log ends here"
                ))))
                .await;
                return;
            }
        }
    });
    Ok((sources, vec![task]))
}

impl Reader {
    async fn exec(
        &self,
        script: &str,
        args: &[String],
    ) -> Result<(Vec<u8>, Option<i32>), LogError> {
        let mut argv = vec![
            "sh".to_string(),
            "-c".to_string(),
            script.to_string(),
            "bpr-logs".to_string(),
        ];
        argv.extend(args.iter().cloned());
        let out = self
            .pool
            .exec(&self.alias, &argv, None, Some(EXEC_TIMEOUT))
            .await
            .map_err(|source: SshError| LogError::Ssh {
                host: self.alias.clone(),
                source,
            })?;
        Ok((out.stdout, out.exit_code))
    }

    fn failed(&self, command: String, exit: Option<i32>, out: &[u8]) -> LogError {
        let text = String::from_utf8_lossy(out);
        let message: String = text.trim().chars().take(500).collect();
        LogError::Remote {
            host: self.alias.clone(),
            command,
            exit: exit.map_or("signal".into(), |c| c.to_string()),
            message,
        }
    }

    /// The lines since the last read (the last `tail` on the first one).
    async fn fetch(&mut self, tail: u32) -> Result<Vec<LogLine>, LogError> {
        let dep = self.deployment.clone();
        match self.source.clone() {
            Source::Container { name, since } => {
                let args = [
                    dep,
                    name.clone(),
                    tail.to_string(),
                    since.clone().unwrap_or_default(),
                ];
                let (out, exit) = self.exec(CONTAINER_SCRIPT, &args).await?;
                if exit != Some(0) {
                    return Err(self.failed(format!("docker logs {name}"), exit, &out));
                }
                let (lines, last) = container_lines(&self.label, &out, since.as_deref());
                if let Some(last) = last {
                    self.source = Source::Container {
                        name,
                        since: Some(last),
                    };
                }
                Ok(lines)
            }
            Source::File { offset } => {
                let args = [
                    dep,
                    offset.map(|o| o.to_string()).unwrap_or_default(),
                    tail.to_string(),
                    MAX_SOURCE_BYTES.to_string(),
                ];
                let (out, exit) = self.exec(FILE_SCRIPT, &args).await?;
                if exit != Some(0) {
                    return Err(self.failed("tail log".into(), exit, &out));
                }
                let (lines, next) = file_lines(&self.label, &out, offset).ok_or_else(|| {
                    self.failed(
                        "tail log".into(),
                        exit,
                        b"its output lost the offset marker",
                    )
                })?;
                self.source = Source::File { offset: Some(next) };
                Ok(lines)
            }
            Source::Journal {
                unit,
                cursor,
                broken,
            } => {
                if broken {
                    return Ok(Vec::new());
                }
                let args = [
                    dep,
                    unit.clone(),
                    tail.to_string(),
                    cursor.clone().unwrap_or_default(),
                ];
                let (out, exit) = self.exec(JOURNAL_SCRIPT, &args).await?;
                if exit != Some(0) {
                    // The journal may be unreadable for this user; the log file
                    // still has the workload's output.
                    let e = self.failed(format!("journalctl -u {unit}"), exit, &out);
                    self.source = Source::Journal {
                        unit,
                        cursor,
                        broken: true,
                    };
                    return Ok(vec![LogLine::note(format!(
                        "{e}; only the log file is shown"
                    ))]);
                }
                let (lines, next) = journal_lines(&self.label, &out);
                self.source = Source::Journal {
                    unit,
                    cursor: next.or(cursor),
                    broken: false,
                };
                Ok(lines)
            }
        }
    }
}

/// `docker logs --timestamps` output: lines newer than `since`, and the
/// newest timestamp (RFC 3339 with fixed nanoseconds, so text order is time
/// order).
fn container_lines(label: &str, out: &[u8], since: Option<&str>) -> (Vec<LogLine>, Option<String>) {
    let mut last = None;
    let mut lines = Vec::new();
    for (text, truncated) in split(out) {
        let (time, line) = match text.split_once(' ') {
            Some((t, rest)) if looks_like_time(t) => (Some(t.to_string()), rest.to_string()),
            _ if looks_like_time(&text) => (Some(text.clone()), String::new()),
            _ => (None, text),
        };
        if let (Some(t), Some(s)) = (&time, since)
            && t.as_str() <= s
        {
            continue;
        }
        if time.is_some() {
            last = time.clone();
        }
        lines.push(LogLine {
            source: label.to_string(),
            time,
            line,
            truncated,
        });
    }
    (lines, last)
}

fn looks_like_time(t: &str) -> bool {
    t.len() >= 20 && t.as_bytes()[4] == b'-' && t.as_bytes()[10] == b'T' && t.ends_with('Z')
}

/// The log file's lines and the offset the next read starts at. When
/// following (`offset` given), an unfinished last line waits for the next read.
fn file_lines(label: &str, out: &[u8], offset: Option<u64>) -> Option<(Vec<LogLine>, u64)> {
    const MARK: &[u8] = b"\n-- bpr offset ";
    let at = out.windows(MARK.len()).rposition(|w| w == MARK)?;
    let end: u64 = std::str::from_utf8(&out[at + MARK.len()..])
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let mut content = &out[..at];
    let mut next = end;
    if let Some(o) = offset {
        let whole = content
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        // A partial line waits for its end, unless it fills a whole read (a
        // line longer than a read is cut, and `truncated` says so below).
        if whole > 0 {
            next = o + whole as u64;
            content = &content[..whole];
        } else if content.len() < MAX_SOURCE_BYTES {
            return Some((Vec::new(), o));
        }
    }
    let lines = split(content)
        .into_iter()
        .map(|(line, truncated)| LogLine {
            source: label.to_string(),
            time: None,
            line,
            truncated,
        })
        .collect();
    Some((lines, next))
}

/// `journalctl --show-cursor` output: its lines and the cursor after them.
fn journal_lines(label: &str, out: &[u8]) -> (Vec<LogLine>, Option<String>) {
    let mut cursor = None;
    let mut lines = Vec::new();
    for (text, truncated) in split(out) {
        if let Some(c) = text.strip_prefix("-- cursor: ") {
            cursor = Some(c.trim().to_string());
        } else if text.starts_with("-- No entries --") || text.is_empty() {
            continue;
        } else {
            lines.push(LogLine {
                source: label.to_string(),
                time: None,
                line: text,
                truncated,
            });
        }
    }
    (lines, cursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_lines_keep_only_what_is_newer_than_the_cursor_and_move_it() {
        let out = b"2026-12-06T10:00:00.000000001Z one\n2026-12-06T10:00:00.000000002Z two\n2026-12-06T10:00:01.000000000Z three\n";
        let (all, last) = container_lines("h/c", out, None);
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].line, "one");
        assert_eq!(
            all[0].time.as_deref(),
            Some("2026-12-06T10:00:00.000000001Z")
        );
        assert_eq!(last.as_deref(), Some("2026-12-06T10:00:01.000000000Z"));
        let (newer, _) = container_lines("h/c", out, Some("2026-12-06T10:00:00.000000002Z"));
        assert_eq!(
            newer.iter().map(|l| l.line.as_str()).collect::<Vec<_>>(),
            ["three"]
        );
    }

    #[test]
    fn a_followed_log_file_keeps_an_unfinished_line_for_the_next_read() {
        let (lines, next) =
            file_lines("h/log", b"a\nb\npart\n-- bpr offset 110\n", Some(100)).unwrap();
        assert_eq!(
            lines.iter().map(|l| l.line.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(next, 104);
        let (lines, next) = file_lines("h/log", b"a\nb\npart\n-- bpr offset 110\n", None).unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(next, 110);
        let (lines, next) =
            file_lines("h/log", b"unfinished\n-- bpr offset 60\n", Some(50)).unwrap();
        assert!(lines.is_empty());
        assert_eq!(next, 50);
        let (lines, next) = file_lines("h/log", b"\n-- bpr offset 0\n", None).unwrap();
        assert!(lines.is_empty());
        assert_eq!(next, 0);
        assert!(file_lines("h/log", b"no marker", None).is_none());
    }

    #[test]
    fn journal_output_gives_its_lines_and_the_cursor_after_them() {
        let out = b"2026-12-06T10:00:00+0000 h systemd[1]: Started bpr-d1.service.\n-- cursor: s=abc;i=7\n";
        let (lines, cursor) = journal_lines("h/journal", out);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].line.ends_with("Started bpr-d1.service."));
        assert_eq!(cursor.as_deref(), Some("s=abc;i=7"));
        let (lines, cursor) = journal_lines("h/journal", b"-- No entries --\n");
        assert!(lines.is_empty() && cursor.is_none());
    }

    #[test]
    fn every_script_is_valid_posix_shell() {
        for s in [CONTAINER_SCRIPT, FILE_SCRIPT, JOURNAL_SCRIPT] {
            let out = std::process::Command::new("sh")
                .arg("-n")
                .arg("-c")
                .arg(s)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{s}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
