//! The slow end-to-end binary: floods, kill -9, logrotate, the real 60 s rate window.

// Test harness and the DingTalk stand-in shared by every test binary.
mod support;
