//! Transparent huge pages for the simulator's heap.
//!
//! A thousand-node run keeps a few hundred MiB of engine and connection state and touches
//! it all over: with 4 KiB pages most touches also miss the TLB, and on a virtual machine a
//! TLB miss walks two page tables. Backed by 2 MiB pages the same run is about a tenth
//! faster here (`GLIBC_TUNABLES=glibc.malloc.hugetlb=1` against none, alternating runs of
//! a 1,000-node flash crowd).
//!
//! Linux gives huge pages to a process's heap only where it asks for them (`madvise`,
//! the kernel's default policy), and glibc's malloc asks when its `glibc.malloc.hugetlb`
//! tunable is on; tunables are read once, when the program starts. So the simulator's
//! binaries restart themselves with it set, before doing anything else.

/// Restarts the running program with glibc's huge-page tunable on, unless `GLIBC_TUNABLES`
/// already says something about it (`glibc.malloc.hugetlb=0` keeps the restart away).
/// Returns only if no restart happened: the tunable was set, this is not Linux with
/// glibc, or the restart failed (then with a note on stderr; the run goes on without).
pub fn restart_with_huge_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;

        const TUNABLE: &str = "glibc.malloc.hugetlb";
        let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        if current.contains(TUNABLE) {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let value = if current.is_empty() {
            format!("{TUNABLE}=1")
        } else {
            format!("{current}:{TUNABLE}=1")
        };
        let err = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env("GLIBC_TUNABLES", value)
            .exec();
        eprintln!("note: could not restart with huge pages ({err}); running without them");
    }
}
