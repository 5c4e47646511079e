//! The set of containers: finding one by name or id prefix, creating and removing records.
use std::fs;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::record::{Config, Container, Status};

/// Every container, newest first (docker's `ps` order).
pub fn list(root: &Path) -> Result<Vec<Container>, Error> {
    let dir = root.join("containers");
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read", &dir, e)),
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        if name.to_string_lossy().starts_with('.') {
            // What a killed `rm` was removing (a live one holds the directory locked).
            if let Some(id) = name.to_string_lossy().strip_prefix(".removing-") {
                reclaim_removal(root, id, &e.path());
            }
            continue;
        }
        // A record half-written by a killed `create` has no config.json, and its
        // `.creating` is no longer locked: taken away here, with the name pointing at it,
        // by the next command that looks (issue 19). One still being made is left alone.
        let path = e.path();
        match Container::load(&path) {
            // One a monitor took over meanwhile is alive: listed.
            Ok(c) if start_abandoned(&c) => {
                if !reclaim_abandoned_start(root, &c) {
                    out.push(c);
                }
            }
            Ok(c) => out.push(c),
            Err(_) if !path.join("config.json").exists() && abandoned(&path) => {
                reclaim_half_made(root, &name.to_string_lossy(), &path);
            }
            Err(_) => {}
        }
    }
    // Newest first, by time (the text has a varying number of fractional digits).
    out.sort_by_key(|c| std::cmp::Reverse(c.created()));
    Ok(out)
}

/// Finds a container by exact name, full id, or unique id prefix (docker's rules).
pub fn find(root: &Path, what: &str) -> Result<Container, Error> {
    let what = what.strip_prefix('/').unwrap_or(what);
    if let Ok(id) = fs::read_to_string(name_file(root, what))
        && let Ok(c) = Container::load(&Container::dir_of(root, id.trim()))
        && c.config.name == what
    {
        return Ok(c);
    }
    if what.is_empty() || !what.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::NoSuchContainer(what.to_string()));
    }
    let matches: Vec<Container> = list(root)?
        .into_iter()
        .filter(|c| c.id().starts_with(what))
        .collect();
    match matches.len() {
        0 => Err(Error::NoSuchContainer(what.to_string())),
        1 => Ok(matches.into_iter().next().expect("one match")),
        _ => Err(Error::Usage(format!(
            "multiple containers found with provided prefix: {what}"
        ))),
    }
}

/// A new random id: 32 bytes from the kernel's random pool, in hex.
pub fn new_id() -> String {
    let mut bytes = [0u8; 32];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut bytes);
    }
    hex::encode(bytes)
}

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "clever", "eager", "fervent", "gentle", "happy", "jolly", "keen", "lucid",
    "merry", "nifty", "patient", "quirky", "relaxed", "serene", "sharp", "stoic", "tender",
    "vivid", "wizardly", "zealous",
];
const NAMES: &[&str] = &[
    "bell", "curie", "darwin", "euler", "faraday", "galois", "hopper", "hypatia", "jemison",
    "kepler", "lovelace", "meitner", "noether", "pascal", "ritchie", "shannon", "thompson",
    "turing", "wing", "yonath",
];

/// A docker-style random name: `adjective_scientist`.
pub fn random_name(id: &str) -> String {
    let n = u64::from_str_radix(&id[..12], 16).unwrap_or(0);
    format!(
        "{}_{}",
        ADJECTIVES[(n % ADJECTIVES.len() as u64) as usize],
        NAMES[((n / 97) % NAMES.len() as u64) as usize]
    )
}

/// The file that says who has `name`: `names/NAME`, or for a name too long to be a file
/// name (docker takes any length; a file name stops at 255 bytes), `names/~SHA256`.
pub fn name_file(root: &Path, name: &str) -> std::path::PathBuf {
    use sha2::Digest;
    let dir = root.join("names");
    if name.len() <= 200 {
        dir.join(name)
    } else {
        dir.join(format!(
            "~{}",
            hex::encode(sha2::Sha256::digest(name.as_bytes()))
        ))
    }
}

/// Takes `name` for `id`. `names/NAME` (holding the id) appears by link(2) of a file
/// already written, which fails if the name exists: atomic, and never seen empty, so of
/// two concurrent `run --name web`, exactly one wins. A name whose owner is gone (a killed
/// `rm`) or is called something else now (a killed `rename`) is taken over under
/// `names/.lock`, so that two takeovers cannot both win either.
fn take_name(root: &Path, name: &str, id: &str, locked: bool) -> Result<(), Error> {
    let dir = root.join("names");
    fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
    let path = name_file(root, name);
    let tmp = dir.join(format!(".{id}.tmp"));
    if let Err(e) = fs::write(&tmp, id) {
        // A full disk leaves an empty file behind: ours, so ours to remove.
        let _ = fs::remove_file(&tmp);
        return Err(Error::io("write", &tmp, e));
    }
    let linked = fs::hard_link(&tmp, &path);
    let result = match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let _lock = if locked {
                None
            } else {
                Some(names_lock(root)?)
            };
            let owner = fs::read_to_string(&path).unwrap_or_default();
            let owner = owner.trim();
            if owner != id && name_held_by(root, owner, name) {
                Err(Error::Conflict(format!(
                    "Conflict. The container name \"/{name}\" is already in use by container \"{owner}\". You have to remove (or rename) that container to be able to reuse that name."
                )))
            } else {
                fs::rename(&tmp, &path).map_err(|e| Error::io("rename", &path, e))
            }
        }
        Err(e) => Err(Error::io("link", &path, e)),
    };
    // The temp name is ours alone; a failure to remove it is said, not left to pile up.
    if let Err(e) = remove_file(&tmp) {
        warn(e);
    }
    result
}

/// Removes a file that may be gone already.
fn remove_file(path: &Path) -> Result<(), Error> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", path, e)),
        _ => Ok(()),
    }
}

/// Removes a directory tree that may be gone already.
fn remove_dir_all(path: &Path) -> Result<(), Error> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", path, e)),
        _ => Ok(()),
    }
}

/// Says what a cleanup after a successful step could not do: the step stands, the user
/// learns what is left over (and `system prune` takes it).
fn warn(e: Error) {
    // With its causes, as `main` prints errors.
    crate::warn(&format!("Warning: {}", crate::with_causes(&e)));
}

/// `names/.lock`, held until dropped: for taking over a stale name, and around a rename.
fn names_lock(root: &Path) -> Result<fs::File, Error> {
    let path = root.join("names").join(".lock");
    let lock = crate::record::lock_file(&path)?;
    lock.lock().map_err(|e| Error::io("lock", &path, e))?;
    Ok(lock)
}

/// Whether container `owner` still holds `name`: its record exists and is called that, or
/// is still being made: no config.json yet, and its `create` alive (it holds `.creating`
/// locked; a killed one's lock is gone with it, and so is its claim on the name).
fn name_held_by(root: &Path, owner: &str, name: &str) -> bool {
    let dir = Container::dir_of(root, owner);
    if owner.is_empty() || !dir.is_dir() {
        return false;
    }
    match Container::load(&dir) {
        Ok(o) => o.config.name == name && !start_abandoned(&o),
        Err(_) if dir.join("config.json").exists() => false,
        Err(_) => being_created(&dir),
    }
}

/// A `--rm` container not started yet: `.starting` in its directory, locked by the
/// command that made it (the `.creating` lock, renamed, so there is no moment without
/// one). `run` keeps it until the monitor has the container; `create --rm` lets it go at
/// once (dropping it removes the file). A `run --rm` killed in between leaves the file
/// unlocked, and the next command that lists containers removes the container: `--rm`
/// asked for it to be gone, and nobody will start it (issue 19).
#[derive(Debug)]
pub struct Starting(Option<(PathBuf, fs::File)>);

impl Drop for Starting {
    fn drop(&mut self) {
        if let Some((path, _lock)) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}

/// Whether `c` is a `run --rm` container whose `run` was killed before its monitor took
/// it over: still created, `.starting` left unlocked, and no monitor.
fn start_abandoned(c: &Container) -> bool {
    claim_dropped(c) && !c.monitor_alive()
}

/// A `--rm` container still created, whose `.starting` nobody holds (or its `.creating`:
/// killed after config.json was written, before the marker was renamed).
fn claim_dropped(c: &Container) -> bool {
    let unheld = |marker: &str| fs::File::open(c.path(marker)).is_ok_and(|f| f.try_lock().is_ok());
    c.config.host.auto_remove
        && (unheld(".starting") || unheld(".creating"))
        && c.state().is_ok_and(|s| s.status == Status::Created)
}

/// Removes a container [`start_abandoned`] found, holding its `monitor.lock` so that no
/// monitor starts it meanwhile (one that got there first keeps it). Returns whether it is
/// gone: false when a monitor has it after all (then it is alive, and listed).
fn reclaim_abandoned_start(root: &Path, c: &Container) -> bool {
    let Ok(lock) = crate::record::lock_file(&c.path("monitor.lock")) else {
        return false;
    };
    // Ours, the lock: no monitor has it. Checked again under it (one may have just let
    // go after starting the container).
    if lock.try_lock().is_err() || !claim_dropped(c) {
        return false;
    }
    match remove(root, c, true) {
        Ok(()) | Err(Error::NoSuchContainer(_)) => true,
        Err(e) => {
            warn(e);
            false
        }
    }
}

/// Creates a container's record: its name, its directory with the writable layer, the
/// init layer and `config.json` (written last: a record is complete when it has one).
pub fn create(
    root: &Path,
    config: Config,
    init: &ch04_unionfs_layers::init::InitLayer,
) -> Result<(Container, Starting), Error> {
    let dir = Container::dir_of(root, &config.id);
    // The directory first, with `.creating` locked until the record is complete: while
    // the name points at it, a concurrent `take_name` sees a record being made, not a
    // stale name (and sees a stale one if this process dies).
    fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
    let creating_path = dir.join(".creating");
    let creating = fs::File::create(&creating_path)
        .and_then(|f| f.lock().map(|()| f))
        .map_err(|e| Error::io("lock", &creating_path, e))?;
    if let Err(e) = take_name(root, &config.name, &config.id, false) {
        return Err(e.and_cleanup(remove_dir_all(&dir)));
    }
    let made = (|| {
        for d in ["upper", "work", "merged", "init"] {
            let p = dir.join(d);
            fs::create_dir_all(&p).map_err(|e| Error::io("create", &p, e))?;
        }
        // What the container writes is root's alone to reach (a setuid file it made
        // must not be runnable from the host by anyone; see cmd::close_store): the
        // directory is 0700. Under --userns-remap it is 0711: the container's root, an
        // ordinary uid outside, passes through it to mount its root filesystem on
        // `merged`. (Not `upper` itself: its mode is the container's `/`.)
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = if config.id_maps.is_some() {
                0o711
            } else {
                0o700
            };
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode))
                .map_err(|e| Error::io(&format!("chmod {mode:o}"), &dir, e))?;
        }
        init.write(&dir.join("init"))
            .map_err(|e| Error::io("write the init layer in", &dir, e))?;
        let bytes = serde_json::to_vec_pretty(&config).expect("a config serialises");
        // A `--rm` container's record lasts one run: it need not outlive a power cut (its
        // leftovers are then debris `system prune` takes), and the fsyncs would be on every
        // `run --rm`'s start.
        let path = dir.join("config.json");
        ch05_image_pull::store::atomic_write_as(&path, &bytes, durability(&config))
            .map_err(|e| Error::io("write", &path, e))
    })();
    if let Err(e) = made {
        // The name first, and only if it is still ours (under the lock takeovers use).
        let undo = names_lock(root).and_then(|_names| {
            let name_file = name_file(root, &config.name);
            if fs::read_to_string(&name_file).is_ok_and(|id| id.trim() == config.id) {
                remove_file(&name_file)?;
            }
            Ok(())
        });
        return Err(e.and_cleanup(undo.and_then(|()| remove_dir_all(&dir))));
    }
    let starting = if config.host.auto_remove {
        let path = dir.join(".starting");
        fs::rename(&creating_path, &path).map_err(|e| Error::io("rename", &creating_path, e))?;
        Starting(Some((path, creating)))
    } else {
        drop(creating);
        if let Err(e) = remove_file(&creating_path) {
            warn(e);
        }
        Starting(None)
    };
    Ok((Container { dir, config }, starting))
}

/// Renames a container: the new name is taken first (atomically, as at create: of two
/// renames to one name, one wins), then the record says it, then the old name is let go.
pub fn rename(root: &Path, c: &Container, new: &str) -> Result<(), Error> {
    let _guard = c.lock_state()?;
    let c = &c.reload()?;
    // Checked again under the lock: a concurrent rename may have done it already.
    if c.config.name == new {
        return Err(Error::Conflict(
            "Renaming a container with the same name as its current name".into(),
        ));
    }
    // Until the record says the new name, a takeover of it must wait: it would see a
    // container called something else and take the name.
    fs::create_dir_all(root.join("names")).map_err(|e| Error::io("create", root, e))?;
    let _names = names_lock(root)?;
    take_name(root, new, c.id(), true)?;
    let mut config = c.config.clone();
    config.name = new.to_string();
    if let Err(e) = c.save_config(&config) {
        return Err(e.and_cleanup(remove_file(&name_file(root, new))));
    }
    let old = name_file(root, &c.config.name);
    if fs::read_to_string(&old).is_ok_and(|id| id.trim() == c.id())
        && let Err(e) = remove_file(&old)
    {
        warn(e);
    }
    Ok(())
}

/// Removes a container that is not running: its name, its pin on the image, its directory
/// (and with `volumes`, its anonymous volumes). Anything its monitor left (a cgroup) goes
/// too.
pub fn remove(root: &Path, c: &Container, volumes: bool) -> Result<(), Error> {
    let state = c.live_state()?;
    if matches!(state.status, Status::Running | Status::Paused) {
        return Err(Error::Conflict(format!(
            "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
            c.id()
        )));
    }
    release_cgroup(&state.cgroup)?;
    // Its address, if its monitor died before giving it back (kill -9).
    if crate::runtime::network_to_join(&c.config.host).is_some() {
        crate::runtime::disconnect(root, c.id())?;
    }
    // The record leaves the listing first, in one rename, with the directory locked
    // (flock on the directory itself, which moves with it) for as long as we remove it:
    // a `.removing-ID` nobody holds is a killed `rm`'s, which the next listing finishes
    // (`reclaim_removal`). Of two `rm`s, the second waits for the lock, then finds
    // nothing to rename.
    let held = fs::File::open(&c.dir).and_then(|d| d.lock().map(|()| d));
    let trash = root
        .join("containers")
        .join(format!(".removing-{}", c.id()));
    let renamed = match held {
        Ok(_) => fs::rename(&c.dir, &trash),
        Err(e) => Err(e),
    };
    match renamed {
        Ok(()) => {}
        // Another `rm` got there first: it removed the container, not we.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NoSuchContainer(c.config.name.clone()));
        }
        Err(e) => return Err(Error::io("rename", &c.dir, e)),
    }
    // Then its name (a name left behind would keep the next container from taking it),
    // its pin on the image, and its files.
    let name_file = name_file(root, &c.config.name);
    if fs::read_to_string(&name_file).is_ok_and(|id| id.trim() == c.id()) {
        remove_file(&name_file)?;
    }
    if let Ok(store) = crate::store(root)
        && let Ok(digest) = c.config.image_manifest.parse()
        && let Err(e) = store.unpin(c.id(), &digest)
    {
        // The image stays pinned until `system prune`; the container goes.
        warn(Error::from(e));
    }
    fs::remove_dir_all(&trash).map_err(|e| Error::io("remove", &trash, e))?;
    if volumes {
        for v in &c.config.anonymous_volumes {
            // Still mounted by another container (`--volumes-from`): kept, as docker does.
            let users = volume_users(root, v)?;
            if users.is_empty()
                && let Err(e) = crate::volumes::remove(root, v, &users)
            {
                warn(e);
            }
        }
    }
    Ok(())
}

/// How durably a container's record is written: a `--rm` one's lasts a single run.
pub fn durability(config: &Config) -> ch05_image_pull::store::Durability {
    if config.host.auto_remove {
        ch05_image_pull::store::Durability::Volatile
    } else {
        ch05_image_pull::store::Durability::Durable
    }
}

/// The names of the containers that mount volume `name`: a question about containers, so
/// it is asked here (the volume store below knows nothing of containers).
pub fn volume_users(root: &Path, name: &str) -> Result<Vec<String>, Error> {
    Ok(list(root)?
        .into_iter()
        .filter(|c| {
            c.config
                .mounts
                .iter()
                .any(|m| m.kind == crate::record::MountType::Volume && m.source == name)
        })
        .map(|c| c.config.name)
        .collect())
}

/// Removes a cgroup a dead monitor left behind (killing anything still in it): the explicit
/// removal of a cgroup this process did not create.
pub fn release_cgroup(dirs: &[crate::record::CgroupDir]) -> Result<(), Error> {
    if dirs.is_empty() {
        return Ok(());
    }
    let sys = ch04_unionfs_layers::sys::Kernel::new(false);
    let dirs = crate::record::cgroup_dirs(dirs);
    ch02_cgroups::CgroupHandle::open(&sys as &dyn ch01_namespaces::Sys, dirs).remove()?;
    Ok(())
}

/// The container directories that are not complete records (a `create` killed half-way,
/// a `rm` killed half-way): `system prune` removes them.
pub fn debris(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(root.join("containers")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".removing-"))
                || (!p.join("config.json").exists() && !being_created(p))
        })
        .collect()
}

/// Whether `dir`, which has no config.json, is a record a killed `create` (or `rm`) left:
/// its `.creating` unlocked, or none at all, and older than a few seconds (a live `create`
/// makes the directory, the file and its lock microseconds apart; the age keeps a look in
/// between from taking its directory).
fn abandoned(dir: &Path) -> bool {
    let marker = dir.join(".creating");
    let stamp = if marker.exists() {
        marker
    } else {
        dir.to_path_buf()
    };
    old(&stamp, 5) && !being_created(dir)
}

/// Whether `path` was last changed more than `secs` seconds ago: no live command is at it.
fn old(path: &Path, secs: u64) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| {
            t.elapsed()
                .is_ok_and(|age| age > std::time::Duration::from_secs(secs))
        })
}

/// Finishes what a killed `rm` left in `dir` (`.removing-ID`), unless a live `rm` holds it:
/// the names still pointing at ID, its pin, its files.
fn reclaim_removal(root: &Path, id: &str, dir: &Path) {
    let Ok(held) = fs::File::open(dir) else {
        return;
    };
    if held.try_lock().is_err() {
        return;
    }
    if let Ok(store) = crate::store(root)
        && let Err(e) = store.unpin_all(id)
    {
        warn(Error::from(e));
    }
    reclaim_half_made(root, id, dir);
}

/// Removes what a killed `create` left: the names that point at its directory (under the
/// names' lock, and only if they still do), then the directory. As best it can: a failure
/// leaves it for the next look, said on stderr.
fn reclaim_half_made(root: &Path, id: &str, dir: &Path) {
    let names = root.join("names");
    let freed = names_lock(root).and_then(|_lock| {
        for e in fs::read_dir(&names).into_iter().flatten().flatten() {
            let is_name = !e.file_name().to_string_lossy().starts_with('.');
            if is_name && fs::read_to_string(e.path()).is_ok_and(|owner| owner.trim() == id) {
                remove_file(&e.path())?;
            }
        }
        // Checked again under the lock: a create that took it meanwhile keeps it.
        if being_created(dir) {
            return Ok(());
        }
        remove_dir_all(dir)
    });
    if let Err(e) = freed {
        warn(e);
    }
}

/// Whether a `create` is still writing the record in `dir` (it holds `.creating` locked).
fn being_created(dir: &Path) -> bool {
    fs::File::open(dir.join(".creating"))
        .is_ok_and(|f| matches!(f.try_lock(), Err(fs::TryLockError::WouldBlock)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::valid_name;

    #[test]
    fn a_failed_step_and_a_failed_undo_are_both_said() {
        let e = Error::Conflict("step".into()).and_cleanup(Err(Error::Usage("undo".into())));
        assert_eq!(e.to_string(), "step; and undoing it failed: undo");
        let fine = Error::Conflict("step".into()).and_cleanup(Ok(()));
        assert_eq!(fine.to_string(), "step");
    }

    #[test]
    fn names_follow_dockers_rules() {
        assert!(valid_name("web") && valid_name("db-1.prod_2") && valid_name("9lives"));
        assert!(
            !valid_name("")
                && !valid_name("x")
                && !valid_name("-x")
                && !valid_name("a b")
                && !valid_name("a/b")
        );
        let id = new_id();
        assert_eq!(id.len(), 64);
        assert!(valid_name(&random_name(&id)));
    }
}
