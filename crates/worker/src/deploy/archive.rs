//! Bundles as archives: pack a directory into a tar.gz, unpack one safely (no path leaves
//! the destination, no links out of it, caps on the size really written and on the number
//! of entries, no setuid or setgid bit), and hash a bundle's content.

use super::tree::{Tally, link_stays_inside};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use tar::EntryType;

/// Directories never packed nor hashed: version control and local build output.
const SKIPPED_DIRS: [&str; 4] = [".git", ".venv", "__pycache__", "node_modules"];

/// Packs `dir` into a tar.gz in memory, without `.git`, `.venv`, `__pycache__` and
/// `node_modules` (the server builds the bundle itself). Symbolic links are kept as links.
pub fn pack_directory(dir: &Path) -> io::Result<Vec<u8>> {
    let encoder = GzEncoder::new(Vec::new(), Compression::default());
    let mut builder = tar::Builder::new(encoder);
    builder.follow_symlinks(false);
    for relative in walk(dir)? {
        builder.append_path_with_name(dir.join(&relative), &relative)?;
    }
    builder.into_inner()?.finish()
}

/// Unpacks a tar.gz into `dest` (created if missing). Refuses absolute paths, `..`,
/// hard links, symbolic links that are absolute or contain `..`, devices, more than
/// [`super::MAX_UNPACKED_BYTES`] of content (counted from the sizes the reader really uses,
/// PAX records included) and more than [`super::MAX_ENTRIES`] entries, all checked in a
/// first pass that writes nothing. Modes keep their permission bits only. The error says
/// which entry is wrong.
pub fn unpack(archive: &[u8], dest: &Path) -> Result<(), String> {
    let mut tally = Tally::default();
    for_each_entry(archive, |_, _| Ok(()), &mut tally)?;
    fs::create_dir_all(dest).map_err(|e| format!("creating {}: {e}", dest.display()))?;
    let unpack_in = |entry: &mut tar::Entry<'_, GzDecoder<&[u8]>>, shown: &str| {
        // `unpack_in` checks again that the entry lands inside `dest`.
        match entry.unpack_in(dest) {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!("entry '{shown}' leaves the bundle")),
            Err(e) => Err(format!("unpacking '{shown}': {e}")),
        }
    };
    for_each_entry(archive, unpack_in, &mut Tally::default())
}

/// Checks every entry of `archive` (path, kind, link target, caps) and hands the good
/// ones to `visit` with their shown path.
fn for_each_entry(
    archive: &[u8],
    mut visit: impl FnMut(&mut tar::Entry<'_, GzDecoder<&[u8]>>, &str) -> Result<(), String>,
    tally: &mut Tally,
) -> Result<(), String> {
    let mut archive = tar::Archive::new(GzDecoder::new(archive));
    // Without it, the tar crate masks modes to 0o777: no setuid, setgid or sticky bit.
    archive.set_preserve_permissions(false);
    archive.set_overwrite(true);
    let entries = archive
        .entries()
        .map_err(|e| format!("not a tar.gz archive: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("not a readable tar.gz archive: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| format!("an entry has an unreadable path: {e}"))?
            .into_owned();
        let shown = path.display().to_string();
        let Some(relative) = safe_relative(&path) else {
            return Err(format!(
                "entry '{shown}' leaves the bundle (absolute path or '..')"
            ));
        };
        if relative.as_os_str().is_empty() {
            continue;
        }
        match entry.header().entry_type() {
            EntryType::Regular | EntryType::Continuous | EntryType::Directory => {}
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| format!("entry '{shown}': unreadable link target: {e}"))?
                    .ok_or_else(|| format!("entry '{shown}': a link without a target"))?;
                if !link_stays_inside(&target) {
                    return Err(format!(
                        "entry '{shown}' is a symbolic link that points outside the bundle"
                    ));
                }
            }
            // Metadata entries (pax headers, GNU long names) are handled by the reader.
            EntryType::XHeader
            | EntryType::XGlobalHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink => continue,
            other => {
                return Err(format!(
                    "entry '{shown}' is a {other:?}; bundles hold only files, directories and symbolic links"
                ));
            }
        }
        // `size()` is what the reader copies (a PAX `size` record overrides the header's).
        tally.add(entry.size())?;
        visit(&mut entry, &shown)?;
    }
    Ok(())
}

/// `path` without `.` components when it stays inside its root (no root, no prefix, and
/// no `..` that climbs above the start); `None` otherwise.
fn safe_relative(path: &Path) -> Option<PathBuf> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.iter().collect())
}

/// The directory that holds the bundle: `dir` itself, or its only subdirectory when the
/// archive was made of a folder (`tar czf env.tgz my-env/`) and `dir` has no manifest.
pub(crate) fn bundle_root(dir: &Path, manifest_file: &str) -> io::Result<PathBuf> {
    if dir.join(manifest_file).exists() {
        return Ok(dir.to_path_buf());
    }
    let entries: Vec<fs::DirEntry> = fs::read_dir(dir)?.collect::<io::Result<_>>()?;
    match entries.as_slice() {
        [only] if only.file_type()?.is_dir() => Ok(only.path()),
        _ => Ok(dir.to_path_buf()),
    }
}

/// The SHA-256 (hex) of a bundle's content: its files' relative paths, sorted, each with
/// its kind, executable bit and bytes (a link's target). Skipped directories do not count.
pub fn content_hash(dir: &Path) -> io::Result<String> {
    let mut hasher = Sha256::new();
    for relative in walk(dir)? {
        let path = dir.join(&relative);
        let meta = fs::symlink_metadata(&path)?;
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update([0]);
        if meta.file_type().is_symlink() {
            hasher.update(b"l");
            hasher.update(fs::read_link(&path)?.to_string_lossy().as_bytes());
        } else if meta.is_dir() {
            hasher.update(b"d");
        } else {
            hasher.update(if is_executable(&meta) { b"x" } else { b"f" });
            hasher.update(meta.len().to_le_bytes());
            let mut file = fs::File::open(&path)?;
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                let n = file.read(&mut buffer)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buffer[..n]);
            }
        }
        hasher.update([0]);
    }
    Ok(hex(&hasher.finalize()))
}

#[cfg(unix)]
fn is_executable(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &fs::Metadata) -> bool {
    false
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every entry under `dir` (files, directories, links; links not followed) as a relative
/// path, sorted, leaving out [`SKIPPED_DIRS`].
fn walk(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        for entry in fs::read_dir(dir.join(&relative))? {
            let entry = entry?;
            let name = entry.file_name();
            let child = relative.join(&name);
            let kind = entry.file_type()?;
            if kind.is_dir() {
                if SKIPPED_DIRS.iter().any(|skipped| name == *skipped) {
                    continue;
                }
                pending.push(child.clone());
            }
            found.push(child);
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, relative: &str, text: &str) {
        let path = dir.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// A tar.gz with one entry whose path is written raw (the tar crate's builder refuses
    /// `..`, as it should, so the header is filled by hand).
    fn archive_with_raw_entry(path: &str, kind: EntryType, link: Option<&str>) -> Vec<u8> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(if kind == EntryType::Regular { 2 } else { 0 });
        header.set_mode(0o644);
        let name = &mut header.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        if let Some(link) = link {
            header.set_link_name(link).unwrap();
        }
        header.set_cksum();
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        let data: &[u8] = if kind == EntryType::Regular {
            b"hi"
        } else {
            b""
        };
        builder.append(&header, data).unwrap();
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn a_packed_directory_unpacks_to_the_same_content_hash() {
        let source = tempfile::tempdir().unwrap();
        write(source.path(), "rollout.toml", "[run]\ncommand = [\"sh\"]\n");
        write(source.path(), "src/env.py", "print('hi')\n");
        write(source.path(), ".git/HEAD", "ref: main\n");
        write(source.path(), ".venv/bin/python", "binary\n");
        let packed = pack_directory(source.path()).unwrap();
        let dest = tempfile::tempdir().unwrap();
        unpack(&packed, dest.path()).unwrap();
        assert!(dest.path().join("src/env.py").exists());
        assert!(!dest.path().join(".git").exists());
        assert!(!dest.path().join(".venv").exists());
        assert_eq!(
            content_hash(source.path()).unwrap(),
            content_hash(dest.path()).unwrap()
        );
        write(dest.path(), "src/env.py", "print('changed')\n");
        assert_ne!(
            content_hash(source.path()).unwrap(),
            content_hash(dest.path()).unwrap()
        );
    }

    #[test]
    fn entries_that_leave_the_bundle_are_refused() {
        let dest = tempfile::tempdir().unwrap();
        let inner = dest.path().join("bundle");
        for (path, kind, link) in [
            ("../escape.txt", EntryType::Regular, None),
            ("a/../../escape.txt", EntryType::Regular, None),
            ("/tmp/escape.txt", EntryType::Regular, None),
            ("link", EntryType::Symlink, Some("/etc")),
            ("link", EntryType::Symlink, Some("../..")),
            ("hard", EntryType::Link, Some("rollout.toml")),
            ("dev", EntryType::Char, None),
        ] {
            let error = unpack(&archive_with_raw_entry(path, kind, link), &inner).unwrap_err();
            assert!(error.contains("entry"), "{path}: {error}");
        }
        assert!(!dest.path().join("escape.txt").exists());
        // A link that stays inside is fine.
        unpack(
            &archive_with_raw_entry("sub/link", EntryType::Symlink, Some("./env.py")),
            &inner,
        )
        .unwrap();
    }

    #[test]
    fn an_archive_of_dot_made_by_tar_unpacks_at_the_root() {
        let source = tempfile::tempdir().unwrap();
        write(source.path(), "rollout.toml", "[run]\ncommand = [\"sh\"]\n");
        write(source.path(), "lib/util.sh", "echo hi\n");
        let output = std::process::Command::new("tar")
            .arg("-czf")
            .arg("-")
            .arg("-C")
            .arg(source.path())
            .arg(".")
            .output()
            .unwrap();
        assert!(output.status.success());
        let dest = tempfile::tempdir().unwrap();
        unpack(&output.stdout, dest.path()).unwrap();
        assert_eq!(
            bundle_root(dest.path(), "rollout.toml").unwrap(),
            dest.path()
        );
        assert_eq!(
            content_hash(source.path()).unwrap(),
            content_hash(dest.path()).unwrap()
        );
    }

    #[test]
    fn garbage_is_not_an_archive() {
        let dest = tempfile::tempdir().unwrap();
        let error = unpack(b"not gzip at all", dest.path()).unwrap_err();
        assert!(error.contains("tar.gz"), "{error}");
    }

    #[test]
    fn a_single_top_level_folder_is_the_bundle_root() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "my-env/rollout.toml", "");
        assert_eq!(
            bundle_root(dir.path(), "rollout.toml").unwrap(),
            dir.path().join("my-env")
        );
        write(dir.path(), "rollout.toml", "");
        assert_eq!(bundle_root(dir.path(), "rollout.toml").unwrap(), dir.path());
    }
}
