//! The `file` audit device's sink (Vault's `builtin/audit/file`): one
//! JSON line per entry appended to `file_path` (or written to stdout, or
//! discarded), the file created with `mode` (0600 by default; 0000 keeps
//! an existing file's mode). One lock per device, held for one `write`
//! of a whole line: no per-request open, no buffer that a crash could
//! lose. As Vault's, a write that fails closes the file and tries once to
//! reopen it and write again (the file may have been rotated away); a
//! file that cannot be opened is retried by the next entry, and
//! [`FileSink::reopen`] (SIGHUP) closes and reopens it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where a device's lines go.
pub enum Target {
    Stdout,
    /// Vault's `discard`: nothing is written (and nothing can fail).
    Discard,
    File {
        path: PathBuf,
        /// The file's mode; 0: leave an existing file's mode alone.
        mode: u32,
        /// The open file; None until opened, or after a failure.
        file: Mutex<Option<File>>,
    },
}

pub struct FileSink {
    target: Target,
}

impl FileSink {
    /// A sink for Vault's `file_path` (`stdout` and `discard` in any case
    /// are the special ones) with `mode` (already parsed; 0 keeps the
    /// mode). A file is opened at once: a path that cannot be written is
    /// refused when the device is enabled, not at its first request.
    pub fn open(file_path: &str, mode: u32) -> std::io::Result<FileSink> {
        let target = if file_path.eq_ignore_ascii_case("stdout") {
            Target::Stdout
        } else if file_path.eq_ignore_ascii_case("discard") {
            Target::Discard
        } else {
            let path = PathBuf::from(file_path);
            let file = open_file(&path, mode)?;
            Target::File {
                path,
                mode,
                file: Mutex::new(Some(file)),
            }
        };
        Ok(FileSink { target })
    }

    /// A sink whose file is not open (it could not be at start): its
    /// first write tries to open it.
    pub fn unopened(file_path: &str, mode: u32) -> FileSink {
        let target = if file_path.eq_ignore_ascii_case("stdout") {
            Target::Stdout
        } else if file_path.eq_ignore_ascii_case("discard") {
            Target::Discard
        } else {
            Target::File {
                path: PathBuf::from(file_path),
                mode,
                file: Mutex::new(None),
            }
        };
        FileSink { target }
    }

    /// Append one line (`line` ends with '\n').
    pub fn write_line(&self, line: &[u8]) -> std::io::Result<()> {
        match &self.target {
            Target::Discard => Ok(()),
            Target::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(line)?;
                out.flush()
            }
            Target::File { path, mode, file } => {
                let mut guard = file.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(f) = guard.as_mut() {
                    match f.write_all(line) {
                        Ok(()) => return Ok(()),
                        // Closed below; one fresh attempt follows.
                        Err(e) => {
                            tracing::warn!(path = %path.display(), error = %e, "audit file write failed; reopening it")
                        }
                    }
                }
                *guard = None;
                let mut f = open_file(path, *mode)?;
                f.write_all(line)?;
                *guard = Some(f);
                Ok(())
            }
        }
    }

    /// Close and reopen the file (log rotation: the old file was moved
    /// away). A file that cannot be opened now is retried by the next
    /// entry.
    pub fn reopen(&self) -> std::io::Result<()> {
        match &self.target {
            Target::Stdout | Target::Discard => Ok(()),
            Target::File { path, mode, file } => {
                let mut guard = file.lock().unwrap_or_else(|p| p.into_inner());
                *guard = None;
                *guard = Some(open_file(path, *mode)?);
                Ok(())
            }
        }
    }
}

/// Vault's `open`: the directories made, the file opened to append
/// (created with `mode`), and an existing file's mode set to `mode`.
fn open_file(path: &Path, mode: u32) -> std::io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let create_mode = if mode == 0 { 0o600 } else { mode };
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(create_mode)
        .open(path)?;
    // /dev/null cannot be chmodded; mode 0 keeps the file's mode.
    if mode != 0 && path != Path::new("/dev/null") {
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn temp_dir(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("warden-audit-{label}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn lines_are_appended_with_the_mode_and_a_reopen_follows_a_rotation() {
        let dir = temp_dir("file");
        let path = dir.join("sub/audit.log");
        let sink = FileSink::open(path.to_str().unwrap(), 0o640).unwrap();
        sink.write_line(b"one\n").unwrap();
        sink.write_line(b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\n");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
        // Rotated away: lines go to the old file until the reopen.
        let rotated = dir.join("audit.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        sink.write_line(b"three\n").unwrap();
        sink.reopen().unwrap();
        sink.write_line(b"four\n").unwrap();
        assert_eq!(std::fs::read_to_string(&rotated).unwrap(), "one\ntwo\nthree\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "four\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_path_that_cannot_be_opened_fails_until_it_can() {
        let dir = temp_dir("blocked");
        let path = dir.join("audit.log");
        let sink = FileSink::open(path.to_str().unwrap(), 0o600).unwrap();
        std::fs::remove_file(&path).unwrap();
        // A directory where the file was: the reopen fails, and so does
        // every write until the path is usable again (even as root).
        std::fs::create_dir(&path).unwrap();
        assert!(sink.reopen().is_err());
        assert!(sink.write_line(b"lost\n").is_err());
        std::fs::remove_dir(&path).unwrap();
        sink.write_line(b"back\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "back\n");
        assert!(
            FileSink::open(dir.to_str().unwrap(), 0o600).is_err(),
            "a directory is no file"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn discard_writes_nothing_and_never_fails() {
        let sink = FileSink::open("DISCARD", 0o600).unwrap();
        sink.write_line(b"x\n").unwrap();
        sink.reopen().unwrap();
        assert!(matches!(sink.target, Target::Discard));
        assert!(matches!(FileSink::open("Stdout", 0).unwrap().target, Target::Stdout));
    }
}
