//! The host's private places: the state directory (database, artifact
//! cache) and the key that vouches for compiled artifacts. Whoever can write
//! them can swap the database or put native code in the host, so they are
//! created for this user alone (0700, key 0600) and refused when another user
//! can write them: group- or world-writable, owned by someone else, or below a
//! parent like that (a sticky parent such as `/tmp` is fine).

use std::path::Path;

/// A private place is not private (or cannot be looked at); each says which
/// (`what`: "state directory", "artifact key", ...) and what to run.
#[derive(Debug, thiserror::Error)]
pub enum NotPrivate {
    /// The path could not be resolved or read.
    #[error("{what} {path}: {source}")]
    Unreadable {
        /// What the path is.
        what: String,
        /// The path.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A directory was expected.
    #[error("{what} {path} is not a directory")]
    NotADirectory {
        /// What the path is.
        what: String,
        /// The path.
        path: String,
    },
    /// The directory belongs to another user.
    #[error(
        "{what} {path} belongs to uid {owner}, not to this user (uid {me}), who can change it at will; run `chown {me} {path}` or choose another directory"
    )]
    DirOwnedByOther {
        /// What the path is.
        what: String,
        /// The path.
        path: String,
        /// Its owner.
        owner: u32,
        /// This user.
        me: u32,
    },
    /// Other users can write the directory.
    #[error(
        "{what} {path} is writable by other users (mode {mode:04o}): they could replace the database or the compiled provider code; run `chmod go-w {path}` or choose another directory"
    )]
    DirOpen {
        /// What the path is.
        what: String,
        /// The path.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// Other users can write a parent of the directory.
    #[error(
        "{what} {path} lies in {parent}, which other users can write (mode {mode:04o}, owner uid {owner}): they could move it away and put their own in its place; run `chmod go-w {parent}` or choose another directory"
    )]
    ParentOpen {
        /// What the path is.
        what: String,
        /// The path.
        path: String,
        /// The parent at fault.
        parent: String,
        /// The parent's permission bits.
        mode: u32,
        /// The parent's owner.
        owner: u32,
    },
    /// The secret file belongs to another user.
    #[error(
        "{what} {path} belongs to uid {owner}, not to this user (uid {me}); delete it (a new one is made, and cached artifacts are recompiled)"
    )]
    FileOwnedByOther {
        /// What the file is.
        what: String,
        /// The file.
        path: String,
        /// Its owner.
        owner: u32,
        /// This user.
        me: u32,
    },
    /// Other users may read or write the secret file.
    #[error(
        "{what} {path} is open to other users (mode {mode:04o}); run `chmod 600 {path}`, or delete it to make a new one"
    )]
    FileOpen {
        /// What the file is.
        what: String,
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
}

/// Create `path` (and missing parents) readable and writable by this user
/// only. An existing directory is left as it is (see [`check_dir`]).
pub fn create(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// Whether only this user (or root) can write directory `path`; `Err` says
/// why not and what to run. `what` names it in the message.
#[cfg(unix)]
pub fn check_dir(path: &Path, what: &str) -> Result<(), NotPrivate> {
    use std::os::unix::fs::MetadataExt;
    let shown = path.display().to_string();
    let unreadable = |source| NotPrivate::Unreadable {
        what: what.into(),
        path: shown.clone(),
        source,
    };
    let real = std::fs::canonicalize(path).map_err(unreadable)?;
    let md = std::fs::metadata(&real).map_err(unreadable)?;
    if !md.is_dir() {
        return Err(NotPrivate::NotADirectory {
            what: what.into(),
            path: shown,
        });
    }
    let me = euid();
    if md.uid() != me && md.uid() != 0 {
        return Err(NotPrivate::DirOwnedByOther {
            what: what.into(),
            path: shown,
            owner: md.uid(),
            me,
        });
    }
    let mode = md.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(NotPrivate::DirOpen {
            what: what.into(),
            path: shown,
            mode,
        });
    }
    for parent in real.ancestors().skip(1) {
        let Ok(md) = std::fs::metadata(parent) else {
            continue;
        };
        let mode = md.mode() & 0o7777;
        let sticky = mode & 0o1000 != 0;
        if !sticky && (mode & 0o022 != 0 || (md.uid() != me && md.uid() != 0)) {
            return Err(NotPrivate::ParentOpen {
                what: what.into(),
                path: shown,
                parent: parent.display().to_string(),
                mode,
                owner: md.uid(),
            });
        }
    }
    Ok(())
}

/// Anyone may write anything on platforms without Unix permissions; nothing
/// to check there.
#[cfg(not(unix))]
pub fn check_dir(_path: &Path, _what: &str) -> Result<(), NotPrivate> {
    Ok(())
}

/// Whether file `path` is this user's (or root's) and closed to everyone
/// else (no group or other permission at all).
#[cfg(unix)]
pub fn check_secret_file(path: &Path, what: &str) -> Result<(), NotPrivate> {
    use std::os::unix::fs::MetadataExt;
    let shown = path.display().to_string();
    let md = std::fs::metadata(path).map_err(|source| NotPrivate::Unreadable {
        what: what.into(),
        path: shown.clone(),
        source,
    })?;
    let me = euid();
    if md.uid() != me && md.uid() != 0 {
        return Err(NotPrivate::FileOwnedByOther {
            what: what.into(),
            path: shown,
            owner: md.uid(),
            me,
        });
    }
    let mode = md.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(NotPrivate::FileOpen {
            what: what.into(),
            path: shown,
            mode,
        });
    }
    Ok(())
}

/// See [`check_dir`] for platforms without Unix permissions.
#[cfg(not(unix))]
pub fn check_secret_file(_path: &Path, _what: &str) -> Result<(), NotPrivate> {
    Ok(())
}

/// Write a new file `path` with `bytes`, readable by this user only; fails
/// with `AlreadyExists` when it exists.
pub fn create_secret_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(unix)]
#[allow(unsafe_code, reason = "geteuid; see SAFETY")]
fn euid() -> u32 {
    // SAFETY: geteuid takes no arguments, touches no memory and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_new_directory_is_private_and_passes() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/b/state");
        create(&state).unwrap();
        let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        check_dir(&state, "state directory").unwrap();
    }

    #[test]
    fn group_or_world_writable_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o777, 0o770, 0o702] {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
            let why = check_dir(dir.path(), "state directory")
                .unwrap_err()
                .to_string();
            assert!(why.contains("chmod go-w"), "{mode:o}: {why}");
        }
    }

    #[test]
    fn a_directory_below_a_writable_parent_is_refused_unless_the_parent_is_sticky() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        create(&state).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let why = check_dir(&state, "state directory")
            .unwrap_err()
            .to_string();
        assert!(why.contains("lies in"), "{why}");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        check_dir(&state, "state directory").unwrap();
    }

    #[test]
    fn a_secret_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        create_secret_file(&key, b"k").unwrap();
        check_secret_file(&key, "artifact key").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let why = check_secret_file(&key, "artifact key")
            .unwrap_err()
            .to_string();
        assert!(why.contains("chmod 600"), "{why}");
        assert_eq!(
            create_secret_file(&key, b"k").unwrap_err().kind(),
            std::io::ErrorKind::AlreadyExists
        );
    }
}
