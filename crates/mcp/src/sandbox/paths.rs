//! Which host paths a sandbox shows, and how: the system directories, then the trees a
//! command needs (its program's installation, its virtualenv and the interpreter behind it,
//! the files named in its arguments, its working directory), read-only, laid out so that
//! the paths as written (with `..`, through symbolic links) resolve inside as they do
//! outside. Paths under a hidden root (the data directory) are never shown, except the
//! bundle directory the process belongs to.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Component, Path, PathBuf};

/// System directories shown read-only (those that exist).
const SYSTEM_DIRS: [&str; 2] = ["/usr", "/etc"];
/// Top-level directories that are links into `/usr` on merged-/usr systems, shown as the
/// same links (or read-only when they are real directories).
const SYSTEM_LINKS: [&str; 6] = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];
/// How many symbolic links one path may go through.
const MAX_LINKS: usize = 16;

/// One step of the sandbox's file-system layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mount {
    /// A host directory or file, read-only, at the same path.
    ReadOnly(PathBuf),
    /// A host directory, writable, at `dest`.
    Writable { source: PathBuf, dest: PathBuf },
    /// An empty directory (a step of a path that is not shown, e.g. before a `..`).
    Dir(PathBuf),
    /// A symbolic link, as on the host.
    Symlink { target: PathBuf, link: PathBuf },
    /// An empty, private file system over a hidden directory that a shown tree contains.
    Hide(PathBuf),
}

impl Mount {
    fn dest(&self) -> &Path {
        match self {
            Mount::ReadOnly(path) | Mount::Dir(path) | Mount::Hide(path) => path,
            Mount::Writable { dest, .. } => dest,
            Mount::Symlink { link, .. } => link,
        }
    }
}

/// The layout being built for one process.
#[derive(Debug, Default)]
pub(crate) struct Layout {
    /// Shown trees (host path → writable).
    trees: BTreeMap<PathBuf, bool>,
    /// Writable host directories shown elsewhere (destination → source).
    placed: BTreeMap<PathBuf, PathBuf>,
    dirs: BTreeSet<PathBuf>,
    links: BTreeMap<PathBuf, PathBuf>,
    /// Never shown (with everything below).
    hidden: Vec<PathBuf>,
    /// Shown although hidden: the process's own bundle directory.
    allowed: Vec<PathBuf>,
}

impl Layout {
    /// A layout with the system directories, hiding `hidden` (absolute, canonical).
    pub(crate) fn new(hidden: &[PathBuf]) -> Self {
        let mut layout = Self {
            hidden: hidden.to_vec(),
            ..Self::default()
        };
        for dir in SYSTEM_DIRS {
            let dir = Path::new(dir);
            if dir.is_dir() {
                layout.trees.insert(dir.to_path_buf(), false);
            }
        }
        for top in SYSTEM_LINKS {
            let top = Path::new(top);
            match fs::symlink_metadata(top) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    if let Ok(target) = fs::read_link(top) {
                        layout.links.insert(top.to_path_buf(), target);
                    }
                }
                Ok(meta) if meta.is_dir() => {
                    layout.trees.insert(top.to_path_buf(), false);
                }
                _ => {}
            }
        }
        layout
    }

    /// Shows `dir` (the process's bundle) even though it lies under a hidden root.
    pub(crate) fn allow(&mut self, dir: &Path) {
        if let Ok(dir) = fs::canonicalize(dir) {
            self.allowed.push(dir);
        }
    }

    /// Shows a host directory, writable, at `dest` (the private work directories).
    pub(crate) fn place(&mut self, source: &Path, dest: &Path) {
        self.placed.insert(dest.to_path_buf(), source.to_path_buf());
    }

    /// Shows the program of a command: a path (absolute, or relative to `cwd`) with its
    /// installation (`X` for `X/bin/prog`, else its directory), the same for the file a
    /// link points to (a virtualenv's `python`), and the interpreter of a virtualenv. A
    /// bare name is looked up in `PATH` inside the sandbox and shows nothing.
    pub(crate) fn program(&mut self, program: &str, cwd: Option<&Path>) {
        if !program.contains('/') {
            return;
        }
        let path = match cwd {
            Some(cwd) => cwd.join(program),
            None => PathBuf::from(program),
        };
        if !path.is_absolute() {
            return;
        }
        if let (Some(parent), Some(name)) = (path.parent(), path.file_name())
            && let Some(dir) = self.reach(parent)
        {
            self.tree(&installation(&dir.join(name)), false);
        }
        if let Ok(real) = fs::canonicalize(&path) {
            self.tree(&installation(&real), false);
        }
        self.reach(&path);
    }

    /// Shows what an argument names when it is an absolute path that exists: a directory,
    /// or a file's directory (a script's siblings are often imported).
    pub(crate) fn argument(&mut self, argument: &str) {
        let path = Path::new(argument);
        if !path.is_absolute() || fs::symlink_metadata(path).is_err() {
            return;
        }
        let Some(real) = self.reach(path) else {
            return;
        };
        if real.is_dir() {
            self.tree(&real, false);
        } else if let Some(dir) = real.parent() {
            self.tree(dir, false);
        }
    }

    /// Shows a directory (a working directory, a bundle, an operator's extra path).
    pub(crate) fn directory(&mut self, dir: &Path, writable: bool) {
        if let Some(real) = self.reach(dir) {
            self.tree(&real, writable);
        }
    }

    /// Shows a tree (a canonical host path), and the interpreter of a virtualenv at its root.
    fn tree(&mut self, path: &Path, writable: bool) {
        if self.is_hidden(path) || path == Path::new("/") {
            return;
        }
        let entry = self.trees.entry(path.to_path_buf()).or_insert(writable);
        *entry |= writable;
        if let Some(home) = venv_home(path)
            && let Some(home) = self.reach(&home)
        {
            self.tree(&installation(&home.join("python")), false);
        }
    }

    fn is_hidden(&self, path: &Path) -> bool {
        self.hidden.iter().any(|hidden| path.starts_with(hidden))
            && !self.allowed.iter().any(|allowed| path.starts_with(allowed))
    }

    /// Makes `path` resolve inside as it does outside (steps before a `..` exist, symbolic
    /// links on the way are recreated) and returns where it leads on the host.
    fn reach(&mut self, path: &Path) -> Option<PathBuf> {
        let mut budget = MAX_LINKS;
        self.reach_within(path, &mut budget)
    }

    fn reach_within(&mut self, path: &Path, budget: &mut usize) -> Option<PathBuf> {
        let mut current = PathBuf::from("/");
        for component in path.components() {
            match component {
                Component::RootDir | Component::Prefix(_) => current = PathBuf::from("/"),
                Component::CurDir => {}
                Component::ParentDir => {
                    if current != Path::new("/") {
                        self.dirs.insert(current.clone());
                        current.pop();
                    }
                }
                Component::Normal(name) => {
                    let next = current.join(name);
                    let meta = fs::symlink_metadata(&next).ok()?;
                    if !meta.file_type().is_symlink() {
                        current = next;
                        continue;
                    }
                    *budget = budget.checked_sub(1)?;
                    let target = fs::read_link(&next).ok()?;
                    self.links.insert(next, target.clone());
                    let absolute = if target.is_absolute() {
                        target
                    } else {
                        current.join(target)
                    };
                    current = self.reach_within(&absolute, budget)?;
                }
            }
        }
        Some(current)
    }

    /// The mounts in the order they must be made: parents before what they contain, every
    /// step the sandbox itself creates listed (so that it is traversable), hidden roots
    /// covered where a shown tree contains them.
    pub(crate) fn mounts(&self) -> Vec<Mount> {
        let hides: Vec<&PathBuf> = self
            .hidden
            .iter()
            .filter(|hidden| self.trees.keys().any(|tree| hidden.starts_with(tree)))
            .collect();
        let mut mounts: Vec<Mount> = Vec::new();
        for (path, writable) in &self.trees {
            // Inside another tree of the same kind, with nothing hidden between: already there.
            if self.cover(path, Some(path), &hides) == Some(Cover::Tree(*writable)) {
                continue;
            }
            mounts.push(if *writable {
                Mount::Writable {
                    source: path.clone(),
                    dest: path.clone(),
                }
            } else {
                Mount::ReadOnly(path.clone())
            });
        }
        for (dest, source) in &self.placed {
            mounts.push(Mount::Writable {
                source: source.clone(),
                dest: dest.clone(),
            });
        }
        mounts.extend(hides.iter().map(|hidden| Mount::Hide((*hidden).clone())));
        // Inside a shown host tree a path exists already; elsewhere (the sandbox's own root,
        // a hidden root, a placed work directory) the sandbox creates it.
        let shown = |path: &Path| matches!(self.cover(path, None, &hides), Some(Cover::Tree(_)));
        for (link, target) in &self.links {
            if !shown(link) {
                mounts.push(Mount::Symlink {
                    target: target.clone(),
                    link: link.clone(),
                });
            }
        }
        for dir in &self.dirs {
            if !shown(dir) {
                mounts.push(Mount::Dir(dir.clone()));
            }
        }
        // Steps of every destination that the sandbox creates: listed so that they get
        // traversable permissions, not bwrap's default 0700 (the environment's user is not
        // the one that creates them).
        let mut steps: BTreeSet<PathBuf> = BTreeSet::new();
        for mount in &mounts {
            for ancestor in mount.dest().ancestors().skip(1) {
                if ancestor != Path::new("/")
                    && !shown(ancestor)
                    && !self.links.contains_key(ancestor)
                    && !mounts.iter().any(|m| m.dest() == ancestor)
                {
                    steps.insert(ancestor.to_path_buf());
                }
            }
        }
        mounts.extend(steps.into_iter().map(Mount::Dir));
        // Parents first; at the same depth, trees, then the hidden roots they contain, then
        // what the sandbox places or creates.
        mounts.sort_by_key(|mount| {
            let rank = match mount {
                Mount::ReadOnly(_) => 0,
                Mount::Hide(_) => 1,
                Mount::Writable { .. } | Mount::Dir(_) | Mount::Symlink { .. } => 2,
            };
            (
                mount.dest().components().count(),
                rank,
                mount.dest().to_path_buf(),
            )
        });
        mounts
    }

    /// What shows `path` in the sandbox: the deepest tree, placed directory or hidden root
    /// that contains it (leaving out the tree `skip`).
    fn cover(&self, path: &Path, skip: Option<&Path>, hides: &[&PathBuf]) -> Option<Cover> {
        let trees = self
            .trees
            .iter()
            .filter(|(tree, _)| Some(tree.as_path()) != skip)
            .map(|(tree, writable)| (tree.as_path(), Cover::Tree(*writable)));
        let placed = self
            .placed
            .keys()
            .map(|dest| (dest.as_path(), Cover::Placed));
        let hidden = hides.iter().map(|hidden| (hidden.as_path(), Cover::Hide));
        trees
            .chain(placed)
            .chain(hidden)
            .filter(|(root, _)| path.starts_with(root))
            .max_by_key(|(root, _)| root.components().count())
            .map(|(_, cover)| cover)
    }
}

/// What the deepest mount containing a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cover {
    Tree(bool),
    Placed,
    Hide,
}

/// The installation a program belongs to: `X` for `X/bin/prog`, else its directory.
fn installation(program: &Path) -> PathBuf {
    let dir = program.parent().unwrap_or(program);
    if dir.file_name().is_some_and(|name| name == "bin") {
        dir.parent().unwrap_or(dir).to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// The `home` of a virtualenv rooted at `dir` (where its base interpreter lives).
fn venv_home(dir: &Path) -> Option<PathBuf> {
    let config = fs::read_to_string(dir.join("pyvenv.cfg")).ok()?;
    config.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "home").then(|| PathBuf::from(value.trim()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn a_virtualenv_program_shows_the_venv_and_its_interpreter() {
        let root = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(root.path()).unwrap();
        let base = root.join("pythons/3.11");
        write(&base.join("bin/python3.11"), "binary");
        let venv = root.join("project/.venv");
        write(
            &venv.join("pyvenv.cfg"),
            &format!("home = {}\nversion = 3.11\n", base.join("bin").display()),
        );
        fs::create_dir_all(venv.join("bin")).unwrap();
        std::os::unix::fs::symlink(base.join("bin/python3.11"), venv.join("bin/python")).unwrap();
        write(&root.join("tools/run.sh"), "#!/bin/sh");
        let mut layout = Layout::new(&[]);
        layout.program(".venv/bin/python", Some(&root.join("project")));
        layout.program(&root.join("tools/run.sh").display().to_string(), None);
        let mounts = layout.mounts();
        // A program outside a `bin` directory shows its own directory, not its parent.
        assert!(
            mounts.contains(&Mount::ReadOnly(root.join("tools"))),
            "{mounts:?}"
        );
        assert!(
            !mounts.contains(&Mount::ReadOnly(root.clone())),
            "{mounts:?}"
        );
        assert!(
            mounts.contains(&Mount::ReadOnly(venv.clone())),
            "{mounts:?}"
        );
        assert!(mounts.contains(&Mount::ReadOnly(base)), "{mounts:?}");
        assert!(mounts.contains(&Mount::ReadOnly(PathBuf::from("/usr"))));
        // The steps the sandbox creates are listed, parents first.
        let position = |wanted: &Path| mounts.iter().position(|m| m.dest() == wanted).unwrap();
        assert!(position(&root.join("project")) < position(&venv));
    }

    #[test]
    fn dot_dot_and_links_resolve_as_written_and_hidden_roots_stay_hidden() {
        let root = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(root.path()).unwrap();
        write(&root.join("code/fixtures/env.py"), "print()");
        fs::create_dir_all(root.join("code/cli")).unwrap();
        std::os::unix::fs::symlink(root.join("code"), root.join("link")).unwrap();
        let data = root.join("data");
        write(&data.join("rollout.db"), "secret");
        write(&data.join("envs/p/n/h/env.py"), "print()");

        let mut layout = Layout::new(std::slice::from_ref(&data));
        layout.argument(&format!("{}/link/cli/../fixtures/env.py", root.display()));
        layout.argument(&data.join("rollout.db").display().to_string());
        let mounts = layout.mounts();
        assert!(mounts.contains(&Mount::ReadOnly(root.join("code/fixtures"))));
        assert!(mounts.contains(&Mount::Dir(root.join("code/cli"))));
        assert!(mounts.contains(&Mount::Symlink {
            target: root.join("code"),
            link: root.join("link")
        }));
        assert!(
            !mounts.iter().any(|m| m.dest().starts_with(&data)),
            "{mounts:?}"
        );

        // The bundle is shown; a tree containing the data directory gets it hidden.
        let mut layout = Layout::new(std::slice::from_ref(&data));
        layout.allow(&data.join("envs/p/n/h"));
        layout.directory(&data.join("envs/p/n/h"), false);
        layout.directory(&root, false);
        let mounts = layout.mounts();
        let position = |wanted: &Mount| mounts.iter().position(|m| m == wanted).unwrap();
        let hide = position(&Mount::Hide(data.clone()));
        assert!(position(&Mount::ReadOnly(root.clone())) < hide);
        assert!(hide < position(&Mount::ReadOnly(data.join("envs/p/n/h"))));
    }
}
