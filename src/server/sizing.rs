//! How many workers serve clients. Its own file because the answer comes from three places
//! (configuration, a legacy environment variable, the CPUs) in an order worth testing.

/// How many workers serve clients: `--workers` / `workers` / `LEGACY_GATEWAY_WORKERS` when
/// given, else `TOKIO_WORKER_THREADS` (which meant the same before workers existed), else the
/// CPUs this process may run on (its affinity mask, as `taskset` or a container's cpuset sets
/// it, and its cgroup CPU quota).
pub fn worker_count(configured: Option<usize>) -> usize {
    choose_workers(
        configured,
        std::env::var("TOKIO_WORKER_THREADS").ok().as_deref(),
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
    )
}

fn choose_workers(
    configured: Option<usize>,
    tokio_env: Option<&str>,
    cpus: impl FnOnce() -> usize,
) -> usize {
    configured
        .or_else(|| tokio_env.and_then(|v| v.trim().parse().ok()))
        .filter(|n| *n > 0)
        .unwrap_or_else(cpus)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::choose_workers;

    #[test]
    fn the_worker_count_comes_from_config_then_tokio_then_the_cpus() {
        assert_eq!(choose_workers(Some(3), Some("5"), || 8), 3);
        assert_eq!(choose_workers(None, Some("5"), || 8), 5);
        assert_eq!(choose_workers(None, Some(" 2 "), || 8), 2);
        assert_eq!(choose_workers(None, Some("zero"), || 8), 8);
        assert_eq!(choose_workers(None, Some("0"), || 8), 8);
        assert_eq!(choose_workers(None, None, || 8), 8);
        assert_eq!(choose_workers(None, None, || 0), 1);
    }
}
