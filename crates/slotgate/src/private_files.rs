//! Files the server and `slotgate export` write: its state, its keys and its
//! backups are for the user it runs as only, so a directory is created 0700
//! and a file 0600, whatever the umask.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::path::Path;

/// Creates `dir` (and any missing parents) that only its owner may list or
/// enter (0700). A directory that is there already is left as it is.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Options that create a file only its owner may read or write (0600); the
/// caller says how to open it (read, write, truncate).
pub fn options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Creates or replaces `path` with `contents`, 0600 (a file that was there
/// with a wider mode is narrowed), and syncs it.
pub fn write(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    let mut file: File = options().write(true).truncate(true).open(path)?;
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(contents)?;
    file.sync_all()
}
