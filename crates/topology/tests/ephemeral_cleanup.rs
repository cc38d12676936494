//! `cleanup_all` stops every cluster of the process, so it lives in its own test binary.

use topology::ephemeral::{EphemeralOptions, EphemeralPg, cleanup_all, live_count};

fn pid_of(pg: &EphemeralPg) -> i32 {
    let pidfile =
        std::fs::read_to_string(pg.data_dir().join("postmaster.pid")).expect("postmaster.pid");
    pidfile
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("pid")
}

fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s.split_whitespace().nth(2).is_none_or(|st| st != "Z"),
        Err(_) => false,
    }
}

#[test]
fn several_at_once_and_cleanup_all() {
    let before = live_count();
    let many = EphemeralPg::start_many(3, &EphemeralOptions::default()).expect("start 3");
    let mut ports: Vec<u16> = many.iter().map(|p| p.port()).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 3);
    assert!(live_count() >= before + 3);
    let pids: Vec<i32> = many.iter().map(pid_of).collect();
    let dirs: Vec<_> = many.iter().map(|p| p.socket_dir().to_path_buf()).collect();
    assert!(pids.iter().all(|p| alive(*p)));
    let stopped = cleanup_all();
    assert!(stopped >= 3);
    for (pid, dir) in pids.iter().zip(&dirs) {
        assert!(!alive(*pid), "pid {pid} alive after cleanup_all");
        assert!(!dir.exists(), "{dir:?} exists after cleanup_all");
    }
    // Dropping the handles afterwards is harmless.
    drop(many);
}
