//! A child's peak RSS, shared by the benchmarks that report one (`#[path]`-included).

/// Waits for `child`, with its peak RSS: the high-water mark of its memory (`VmHWM`),
/// polled until it exits. (`wait4`'s `ru_maxrss` would count the forked copy of the
/// benchmark process, stand-in page cache included, from before the child's `exec`.)
pub fn wait_rss(mut child: std::process::Child) -> (std::process::ExitStatus, u64) {
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    loop {
        if let Some(status) = child.try_wait().expect("wait for data") {
            return (status, peak);
        }
        let hwm = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("VmHWM:"))?.to_string();
                line.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .unwrap_or(0);
        peak = peak.max(hwm * 1024);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
