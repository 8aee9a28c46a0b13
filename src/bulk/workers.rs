//! How many workers bulk scoring runs. Each opens an ONNX Runtime session of its own (measured
//! ~46 MB each on the default model: 16 workers took 795 MB), so their number is bounded by the
//! memory the process may use as well as by its cores: `--workers 100000` reached 4.3 GB of RSS.

use std::path::Path;

/// Past the cores, more workers only wait for them; a few per core still hide the writer's and
/// the reader's pauses.
const MAX_PER_CORE: usize = 4;

/// A cgroup without a limit reports a number near `i64::MAX`.
const UNLIMITED_BYTES: u64 = 1 << 60;

#[derive(Debug, PartialEq)]
pub struct Count {
    pub workers: usize,
    /// Why fewer workers than asked run, when they do.
    pub warning: Option<String>,
}

/// `asked` 0 means as many as the cores. At most `MAX_PER_CORE` per core, and as many sessions of
/// `per_worker_mb` as `memory_mb` holds; always at least one.
pub fn count(asked: usize, cores: usize, memory_mb: Option<f64>, per_worker_mb: f64) -> Count {
    let cores = cores.max(1);
    let by_memory = match memory_mb {
        Some(memory) if per_worker_mb > 0.0 => (memory / per_worker_mb).floor().max(1.0) as usize,
        _ => usize::MAX,
    };
    let cap = by_memory.min(cores * MAX_PER_CORE);
    let workers = if asked == 0 { cores.min(cap) } else { asked.min(cap) };
    let warning = (asked > workers).then(|| {
        let reason = match cap == by_memory {
            true => format!(
                "the memory limit ({:.0} MB at ~{per_worker_mb:.0} MB per worker)",
                memory_mb.unwrap_or(0.0)
            ),
            false => format!("{MAX_PER_CORE} per core on {cores} cores"),
        };
        format!("--workers {asked} is more than {reason} allows; running {workers}")
    });
    Count { workers, warning }
}

/// MiB this process may use: its cgroup's memory limit (v1 or v2, the lowest on its path), else
/// the machine's memory.
pub fn memory_limit_mb() -> Option<f64> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let limit =
        cgroup_limit_bytes(&cgroups, Path::new("/sys/fs/cgroup"), |p| std::fs::read_to_string(p).ok());
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| mem_total_bytes(&m));
    let bytes = match (limit, total) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    Some(bytes as f64 / (1024.0 * 1024.0))
}

/// The lowest memory limit on the process's cgroup path (`/proc/self/cgroup`), read by `read`
/// under `root`. In a container that path is often the host's and not mounted: the limit at the
/// mount's top is read too.
fn cgroup_limit_bytes(cgroups: &str, root: &Path, read: impl Fn(&Path) -> Option<String>) -> Option<u64> {
    let mut limits = Vec::new();
    for line in cgroups.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let (dir, file) = match controllers {
            "" => (root.to_path_buf(), "memory.max"),
            c if c.split(',').any(|c| c == "memory") => (root.join("memory"), "memory.limit_in_bytes"),
            _ => continue,
        };
        let mut at = dir.join(path.trim_start_matches('/'));
        loop {
            let value = read(&at.join(file));
            limits.extend(value.and_then(|v| v.trim().parse::<u64>().ok()));
            if at == dir || !at.pop() {
                break;
            }
        }
    }
    limits.into_iter().filter(|&b| b < UNLIMITED_BYTES).min()
}

fn mem_total_bytes(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line["MemTotal:".len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_fit_the_memory_and_a_few_per_core() {
        let capped = count(0, 16, Some(200.0), 46.0);
        assert_eq!(capped.workers, 4, "200 MB holds 4 sessions of 46 MB");
        assert_eq!(capped.warning, None, "the default is chosen, not asked for");
        assert_eq!(count(0, 2, None, 46.0).workers, 2);
        assert_eq!(count(3, 2, Some(4096.0), 46.0), Count { workers: 3, warning: None });
        assert_eq!(count(0, 2, Some(10.0), 46.0).workers, 1, "always one");
        let many = count(100_000, 2, Some(4096.0), 0.02);
        assert_eq!(many.workers, 8);
        assert!(many.warning.unwrap().contains("--workers 100000 is more than 4 per core on 2 cores"));
        let short = count(16, 16, Some(500.0), 46.0);
        assert_eq!(short.workers, 10);
        assert!(short.warning.unwrap().contains("the memory limit (500 MB at ~46 MB per worker)"));
    }

    #[test]
    fn the_cgroup_limit_is_the_lowest_on_the_processs_path() {
        let files = |p: &Path| match p.to_str().unwrap() {
            "/cg/memory/a/b/memory.limit_in_bytes" => Some("9223372036854771712\n".to_string()),
            "/cg/memory/a/memory.limit_in_bytes" => Some("536870912\n".to_string()),
            "/cg/memory/memory.limit_in_bytes" => Some("9223372036854771712\n".to_string()),
            "/cg/x/memory.max" => Some("max\n".to_string()),
            "/cg/memory.max" => Some("1073741824\n".to_string()),
            _ => None,
        };
        let v1 = "12:cpu,cpuacct:/a/b\n4:memory:/a/b\n";
        assert_eq!(cgroup_limit_bytes(v1, Path::new("/cg"), files), Some(512 << 20));
        assert_eq!(cgroup_limit_bytes("0::/x\n", Path::new("/cg"), files), Some(1 << 30));
        assert_eq!(cgroup_limit_bytes("0::/y\n", Path::new("/cg"), |_| None), None);
        assert_eq!(mem_total_bytes("MemTotal:       2048 kB\nMemFree: 1 kB\n"), Some(2 << 20));
    }
}
