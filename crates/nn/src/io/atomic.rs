//! Writing a file so that a crash leaves either the old file or the new one, never a mix.

use crate::NnError;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically: into a new temporary file in the same directory
/// (`.name.PID.N.tmp`), flushed to disk with fsync, then renamed over `path` (atomic on POSIX
/// file systems), then the directory is synced so that the rename itself is durable.
///
/// On error the temporary file is removed and `path` is untouched (unless the error is in the
/// final directory sync, after the new file is already in place).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), NnError> {
    let io = |op, path: &Path| {
        let path = path.to_path_buf();
        move |source| NnError::Io { op, path, source }
    };
    let Some(file_name) = path.file_name() else {
        let source = std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name");
        return Err(io("write", path)(source));
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp = dir.join(format!(
        ".{}.{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id(),
        NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
    ));

    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(io("create a temporary file", &temp))?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io("write", &temp))
        .and_then(|()| {
            drop(file);
            fs::rename(&temp, path).map_err(io("rename a temporary file onto", path))
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    sync_dir(&dir).map_err(io("sync the directory", &dir))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    // Directories cannot be opened for syncing here; the rename is as durable as the OS makes it.
    Ok(())
}
