//! How much memory this process may still use: the least of what its
//! memory cgroups (v2 `memory.max`, v1 `memory.limit_in_bytes`, each
//! ancestor's too) leave free and the system's `MemAvailable`.
//!
//! Under overcommit an allocation succeeds whatever its size and the
//! process is killed only when the pages are touched, so a large read is
//! checked against this before any page is. Each file read here is small
//! and read with a bound. Where none of these is known (macOS, Windows, a
//! system without `/proc`), nothing is refused on their account.

use std::path::{Path, PathBuf};

/// The most bytes read from one of the small files below.
const MOST_READ: u64 = 64 * 1024;

/// Bytes this process may still allocate and touch, when known.
pub fn available() -> Option<u64> {
    let system = mem_available();
    let cgroup = cgroup_available();
    match (system, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn read_small(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(MOST_READ)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// `MemAvailable` of `/proc/meminfo`, in bytes.
fn mem_available() -> Option<u64> {
    let text = read_small(Path::new("/proc/meminfo"))?;
    let line = text.lines().find(|line| line.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The least free memory of this process's memory cgroup and its
/// ancestors: limit minus usage, where the usage leaves out file pages the
/// kernel can drop (`inactive_file`).
fn cgroup_available() -> Option<u64> {
    let membership = read_small(Path::new("/proc/self/cgroup"))?;
    let mut least: Option<u64> = None;
    for line in membership.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let relative = path.trim_start_matches('/');
        let (root, files) = if controllers.is_empty() {
            (PathBuf::from("/sys/fs/cgroup"), V2)
        } else if controllers.split(',').any(|c| c == "memory") {
            (PathBuf::from("/sys/fs/cgroup/memory"), V1)
        } else {
            continue;
        };
        let mut dir = root.join(relative);
        loop {
            if let Some(free) = free_in(&dir, &files) {
                least = Some(least.map_or(free, |l| l.min(free)));
            }
            if dir == root || !dir.pop() || !dir.starts_with(&root) {
                break;
            }
        }
    }
    least
}

/// The file names of one cgroup version.
struct Files {
    limit: &'static str,
    usage: &'static str,
    inactive_file: &'static str,
}

const V2: Files = Files {
    limit: "memory.max",
    usage: "memory.current",
    inactive_file: "inactive_file",
};

const V1: Files = Files {
    limit: "memory.limit_in_bytes",
    usage: "memory.usage_in_bytes",
    inactive_file: "total_inactive_file",
};

/// What the cgroup at `dir` leaves free, if it has a limit.
fn free_in(dir: &Path, files: &Files) -> Option<u64> {
    let limit: u64 = read_small(&dir.join(files.limit))?.trim().parse().ok()?;
    // v1 writes "no limit" as a huge number (a page-rounded i64::MAX).
    if limit >= 1 << 60 {
        return None;
    }
    let usage: u64 = read_small(&dir.join(files.usage))?.trim().parse().ok()?;
    let droppable = read_small(&dir.join("memory.stat")).and_then(|stat| {
        stat.lines().find_map(|line| {
            let (name, value) = line.split_once(' ')?;
            (name == files.inactive_file).then(|| value.trim().parse::<u64>().ok())?
        })
    });
    Some(limit.saturating_sub(usage.saturating_sub(droppable.unwrap_or(0))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn linux_knows_the_memory_available() {
        let available = available().expect("/proc/meminfo is readable");
        assert!(available > 0);
        assert!(available <= mem_available().unwrap());
    }

    #[test]
    fn a_cgroup_without_a_limit_leaves_nothing_to_check() {
        let dir = std::env::temp_dir().join(format!("krepis-cgroup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("memory.max"), "max\n").unwrap();
        std::fs::write(dir.join("memory.current"), "100\n").unwrap();
        assert_eq!(free_in(&dir, &V2), None);
        std::fs::write(dir.join("memory.max"), "1000\n").unwrap();
        std::fs::write(dir.join("memory.stat"), "anon 50\ninactive_file 30\n").unwrap();
        assert_eq!(free_in(&dir, &V2), Some(930));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
