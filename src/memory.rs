//! Process memory as the kernel reports it (Linux `/proc/self/status`), for logs and `/health`.

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Rss {
    /// Resident set size now (VmRSS), in MiB.
    pub rss_mb: f64,
    /// Peak resident set size (VmHWM), in MiB: what Lambda's "Max Memory Used" tracks.
    pub peak_rss_mb: f64,
}

pub fn rss() -> Option<Rss> {
    parse(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// Resident set size now, in KiB (0 where /proc is not available).
pub fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

/// Resident anonymous memory now, in KiB: what a model's session allocates (pre-packed weights,
/// buffers). Unlike RSS it does not shrink when the kernel drops pages of mapped files under a
/// memory limit, so it measures what a model costs even while memory is short.
pub fn anon_kib() -> u64 {
    status_kib("RssAnon:")
}

fn status_kib(field: &str) -> u64 {
    field_kib(&std::fs::read_to_string("/proc/self/status").unwrap_or_default(), field).unwrap_or(0)
}

/// One `Name:   1234 kB` line of /proc/self/status, in KiB.
fn field_kib(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// Hands freed heap pages back to the kernel after a model is unloaded, so that the memory the
/// budget counted as freed is freed (glibc otherwise keeps them for reuse).
pub fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns unused memory of the allocator's own arenas to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn parse(status: &str) -> Option<Rss> {
    let field = |name: &str| field_kib(status, name).map(|kib| (kib as f64 / 1024.0 * 10.0).round() / 10.0);
    Some(Rss { rss_mb: field("VmRSS:")?, peak_rss_mb: field("VmHWM:")? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_status() {
        let status = "Name:\tx\nVmHWM:\t  204800 kB\nVmRSS:\t   102400 kB\n";
        assert_eq!(parse(status), Some(Rss { rss_mb: 100.0, peak_rss_mb: 200.0 }));
        assert_eq!(parse("Name:\tx\n"), None);
    }

    #[test]
    fn reads_this_process() {
        let now = rss().expect("/proc/self/status");
        assert!(now.rss_mb > 0.0 && now.peak_rss_mb >= now.rss_mb);
        assert!(rss_kib() > 0 && anon_kib() > 0 && anon_kib() <= rss_kib());
    }
}
