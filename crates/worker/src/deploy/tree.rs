//! Rules every bundle's files obey, whether they came from an archive or a git repository:
//! no symbolic link leads outside the bundle, no device or other special file, at most
//! [`MAX_ENTRIES`] entries and [`MAX_UNPACKED_BYTES`] of content; and once in place, the
//! files belong to the server and carry plain modes (no setuid, setgid or sticky bit, no
//! write for others), so that every sandbox can read them and none can change them.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path};

/// Largest total size of the files of a bundle (a guard against gzip bombs).
pub const MAX_UNPACKED_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Most entries (files, directories, links) of a bundle (a guard against inode bombs).
pub const MAX_ENTRIES: u64 = 100_000;

/// True when a symbolic link's target stays inside the bundle whatever the other links
/// are: relative and without `..` (a `..` after a link to `.` would climb out).
pub(crate) fn link_stays_inside(target: &Path) -> bool {
    target
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// What a bundle holds so far, checked against the caps as entries are added.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    entries: u64,
    bytes: u64,
}

impl Tally {
    /// Counts one entry of `size` bytes; an error once a cap is passed.
    pub(crate) fn add(&mut self, size: u64) -> Result<(), String> {
        self.entries += 1;
        self.bytes = self.bytes.saturating_add(size);
        if self.entries > MAX_ENTRIES {
            return Err(format!(
                "the bundle has more than {MAX_ENTRIES} entries (files, directories and links)"
            ));
        }
        if self.bytes > MAX_UNPACKED_BYTES {
            return Err(format!(
                "the bundle unpacks to more than {} MiB",
                MAX_UNPACKED_BYTES / (1024 * 1024)
            ));
        }
        Ok(())
    }
}

/// Checks a tree made by another tool (a git checkout) with the rules of archives. The
/// error names the entry.
pub(crate) fn check(dir: &Path) -> Result<(), String> {
    let mut tally = Tally::default();
    let mut failure = None;
    let walked = walk(dir, &mut |path, meta| {
        if failure.is_some() {
            return Ok(());
        }
        let shown = path.strip_prefix(dir).unwrap_or(path).display().to_string();
        let kind = meta.file_type();
        let problem = if kind.is_symlink() {
            let target = fs::read_link(path)?;
            (!link_stays_inside(&target))
                .then(|| format!("'{shown}' is a symbolic link that points outside the bundle"))
        } else if kind.is_file() || kind.is_dir() {
            None
        } else {
            Some(format!(
                "'{shown}' is a special file; bundles hold only files, directories and symbolic links"
            ))
        };
        failure = problem.or_else(|| tally.add(meta.len()).err());
        Ok(())
    });
    walked.map_err(|e| format!("reading the bundle: {e}"))?;
    failure.map_or(Ok(()), Err)
}

/// Gives every entry of `dir` (and `dir` itself) to `uid:gid`, as `chown -hR` does.
pub(crate) fn give(dir: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid))?;
    walk(dir, &mut |path, _| {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
    })
}

/// Gives every entry of `dir` back to `dir`'s parent's owner (the server) with plain
/// modes: directories and executables 0755, other files 0644, links untouched.
pub(crate) fn seal(dir: &Path) -> io::Result<()> {
    let parent = dir.parent().unwrap_or(dir);
    let owner = fs::metadata(parent)?;
    let (uid, gid) = (owner.uid(), owner.gid());
    let mut fix = |path: &Path, meta: &fs::Metadata| -> io::Result<()> {
        if meta.uid() != uid || meta.gid() != gid {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
        }
        if meta.file_type().is_symlink() {
            return Ok(());
        }
        let mode = meta.permissions().mode() & 0o7777;
        let plain = if meta.is_dir() || mode & 0o111 != 0 {
            0o755
        } else {
            0o644
        };
        if mode != plain {
            fs::set_permissions(path, fs::Permissions::from_mode(plain))?;
        }
        Ok(())
    };
    fix(dir, &fs::symlink_metadata(dir)?)?;
    walk(dir, &mut fix)
}

/// Calls `visit` on every entry under `dir` (links not followed), parents first.
fn walk(
    dir: &Path,
    visit: &mut dyn FnMut(&Path, &fs::Metadata) -> io::Result<()>,
) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let meta = fs::symlink_metadata(&path)?;
        visit(&path, &meta)?;
        if meta.is_dir() {
            walk(&path, visit)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_with_an_escaping_link_or_too_many_entries_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("sub/env.py"), "x").unwrap();
        std::os::unix::fs::symlink("sub/env.py", dir.path().join("inside")).unwrap();
        check(dir.path()).unwrap();
        std::os::unix::fs::symlink("/proc/self/environ", dir.path().join("rollout.toml")).unwrap();
        let error = check(dir.path()).unwrap_err();
        assert!(
            error.contains("'rollout.toml' is a symbolic link"),
            "{error}"
        );

        let mut tally = Tally::default();
        for _ in 0..MAX_ENTRIES {
            tally.add(0).unwrap();
        }
        assert!(
            tally
                .add(0)
                .unwrap_err()
                .contains("more than 100000 entries")
        );
        let mut tally = Tally::default();
        assert!(
            tally
                .add(MAX_UNPACKED_BYTES + 1)
                .unwrap_err()
                .contains("MiB")
        );
    }

    #[test]
    fn sealing_clears_special_bits_and_write_for_others() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("bundle");
        fs::create_dir_all(bundle.join("bin")).unwrap();
        fs::write(bundle.join("bin/tool"), "x").unwrap();
        fs::write(bundle.join("data"), "x").unwrap();
        fs::set_permissions(bundle.join("bin/tool"), fs::Permissions::from_mode(0o6777)).unwrap();
        fs::set_permissions(bundle.join("data"), fs::Permissions::from_mode(0o666)).unwrap();
        fs::set_permissions(bundle.join("bin"), fs::Permissions::from_mode(0o1777)).unwrap();
        seal(&bundle).unwrap();
        let mode = |p: &str| fs::metadata(bundle.join(p)).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode("bin/tool"), 0o755);
        assert_eq!(mode("data"), 0o644);
        assert_eq!(mode("bin"), 0o755);
    }
}
