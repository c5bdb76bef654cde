//! The plugin's own memory: one malloc arena for all its threads, and, once it is configured,
//! nothing kept that only its start-up used (README "Performance").

use super::sys;

/// `mallopt(M_ARENA_MAX, 1)`: every thread allocates from the main heap. glibc otherwise gives
/// each thread that allocates an arena of its own (up to 8 per core), each with its own
/// partly used pages; the plugin's threads allocate little and rarely at the same moment.
/// Call before the runtime starts its threads. False when glibc refused it.
pub fn one_malloc_arena() -> bool {
    sys::set_malloc_arena_max(1)
}

/// What [`release_startup_memory`] gave back.
#[derive(Debug)]
pub struct Released {
    /// KiB of code and read-only data that were mapped (they stay in the page cache).
    pub unmapped_kib: u64,
}

/// Gives back what the plugin's start-up left behind: the heap's free pages (`malloc_trim`)
/// and the mappings of code and read-only data that the kernel mapped around the start-up's
/// page faults (the next use maps them again). Blocking (reads /proc/self/smaps).
pub fn release_startup_memory() -> std::io::Result<Released> {
    sys::malloc_trim();
    Ok(Released {
        unmapped_kib: sys::drop_unwritten_file_pages()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_code_still_runs_and_is_mapped_again_on_use() {
        // After dropping every unwritten file page, this test's own code, std and libc run
        // as before (they are mapped again from the file on use).
        let before: String = (0..1000).map(|i| format!("{i:x}")).collect();
        let r = release_startup_memory().expect("/proc/self/smaps");
        assert!(r.unmapped_kib > 0, "{r:?}");
        let after: String = (0..1000).map(|i| format!("{i:x}")).collect();
        assert_eq!(before, after);
        let text = std::fs::read("/proc/self/smaps").unwrap();
        assert!(!sys::file_mappings(&text[..]).unwrap().is_empty());
    }

    #[test]
    fn maps_lines_parse_as_mappings_without_page_counts() {
        let text = "\
55d0c8a00000-55d0c8b00000 r-xp 00001000 fe:01 1234 /usr/bin/x (deleted)
7f0000000000-7f0000021000 rw-p 00000000 00:00 0
7f0000100000-7f0000101000 rw-s 00000000 00:01 99 /dev/shm/y
";
        let m = sys::file_mappings(text.as_bytes()).unwrap();
        let expect = sys::FileMapping::for_test;
        assert_eq!(
            m,
            [
                expect(0x55d0c8a00000, 0x55d0c8b00000, "r-xp", 0, 0),
                expect(0x7f0000100000, 0x7f0000101000, "rw-s", 0, 0)
            ]
        );
    }

    #[test]
    fn smaps_mappings_parse_with_their_permissions_and_page_counts() {
        let text = "\
55d0c8a00000-55d0c8b00000 r-xp 00001000 fe:01 1234 /usr/bin/x
Rss:                 100 kB
Anonymous:             0 kB
Swap:                  0 kB
VmFlags: rd ex mr mw me
55d0c8b00000-55d0c8b10000 r--p 00101000 fe:01 1234 /usr/bin/x
Rss:                  64 kB
Anonymous:            64 kB
7f0000000000-7f0000021000 rw-p 00000000 00:00 0
Rss:                   8 kB
Anonymous:             8 kB
7f0000100000-7f0000101000 rw-s 00000000 00:01 99 /dev/shm/y
Rss:                   4 kB
Swap:                  garbage
";
        let m = sys::file_mappings(text.as_bytes()).unwrap();
        assert_eq!(m.len(), 2, "{m:?}");
        let expect = sys::FileMapping::for_test;
        assert_eq!(m[0], expect(0x55d0c8a00000, 0x55d0c8b00000, "r-xp", 100, 0));
        assert_eq!(m[1], expect(0x55d0c8b00000, 0x55d0c8b10000, "r--p", 64, 64));
        // The anonymous mapping is not a file's; the shared one has a field that does not
        // parse: it is left out (so never dropped).
    }
}
