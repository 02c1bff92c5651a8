//! The process's file-descriptor limit: raised to the hard limit at start (the soft one is
//! often 1,024, too few for thousands of RTP sockets and TCP connections), and read back
//! so the endpoint can keep a reserve for RTP sockets, recordings and the API.

/// Raises the soft RLIMIT_NOFILE to the hard one; returns the soft limit in effect.
pub fn raise_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read or write the struct we pass, which lives
    // on our stack for the length of each call.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}
