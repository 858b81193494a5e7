//! The fast integration binary: it runs the real `dingtail` binary against real files and the
//! DingTalk stand-in on 127.0.0.1. Only `mod` lines here, each saying what belongs in it.

// Test harness and the DingTalk stand-in shared by every test binary.
mod support;
